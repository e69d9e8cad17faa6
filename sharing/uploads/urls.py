from django.urls import path

from sharing.uploads import views

app_name = "uploads"

urlpatterns = [
    path("", views.upload_home, name="home"),
    path("files/", views.send_files, name="send"),
    path("<str:token>", views.open_upload, name="open"),
]
