from django.urls import path

from sharing import staff_views

app_name = "shares"

urlpatterns = [
    path("", staff_views.list_shares, name="list"),
    path("<uuid:code>/revoke/", staff_views.revoke_share, name="revoke"),
    path("<uuid:code>/unlock/", staff_views.unlock_share, name="unlock"),
    path("<uuid:code>/extend/", staff_views.extend_share, name="extend"),
    path("requests/<uuid:code>/done/", staff_views.settle_request, name="request-done"),
]
