from django.urls import path

from sharing.uploads import staff_views

app_name = "received"

urlpatterns = [
    path("", staff_views.received_list, name="list"),
    path("patients/<uuid:code>/ask/", staff_views.ask_for_images, name="ask"),
    path("links/<uuid:code>/accept/", staff_views.accept_files, name="accept"),
    path("links/<uuid:code>/decline/", staff_views.decline_files, name="decline"),
    path("links/<uuid:code>/revoke/", staff_views.revoke_upload_link, name="revoke"),
    path("links/<uuid:code>/unlock/", staff_views.unlock_upload_link, name="unlock"),
]
