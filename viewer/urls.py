from django.urls import path

from viewer import views

app_name = "viewer"

urlpatterns = [
    path("studies/<uuid:code>/", views.view_study, name="study"),
    path("series/<uuid:code>/manifest.json", views.series_manifest, name="manifest"),
    path("series/<uuid:code>/thumbnail.jpg", views.series_thumbnail, name="series-thumbnail"),
    path("series/<uuid:code>/<str:plane>/<int:index>.jpg", views.series_slice, name="slice"),
    path(
        "series/<uuid:code>/<str:plane>/<int:index>.png",
        views.series_slice,
        {"fmt": "png"},
        name="slice-png",
    ),
    path(
        "attachments/<uuid:code>/thumbnail.jpg",
        views.attachment_thumbnail,
        name="attachment-thumbnail",
    ),
    path("attachments/<uuid:code>/file", views.attachment_file, name="attachment-file"),
]
