from django.urls import path

from viewer import dental_views, picture_downloads, session_views, slice_views, views

app_name = "viewer"

urlpatterns = [
    path("session/", session_views.check_session, name="session"),
    path("studies/<uuid:code>/", views.view_study, name="study"),
    path("series/<uuid:code>/manifest.json", views.series_manifest, name="manifest"),
    path("series/<uuid:code>/document", views.series_document, name="series-document"),
    path("series/<uuid:code>/video.mp4", views.series_video, name="series-video"),
    path("series/<uuid:code>/thumbnail.jpg", views.series_thumbnail, name="series-thumbnail"),
    path("series/<uuid:code>/tags/<int:index>.json", views.series_tags, name="tags"),
    path("series/<uuid:code>/<str:plane>/<int:index>.jpg", slice_views.series_slice, name="slice"),
    path(
        "series/<uuid:code>/<str:plane>/<int:index>.png",
        slice_views.series_slice,
        {"fmt": "png"},
        name="slice-png",
    ),
    path(
        "series/<uuid:code>/<str:plane>/<int:index>/picture.jpg",
        picture_downloads.export_slice_picture,
        {"fmt": "jpeg"},
        name="slice-picture",
    ),
    path(
        "series/<uuid:code>/<str:plane>/<int:index>/picture.png",
        picture_downloads.export_slice_picture,
        {"fmt": "png"},
        name="slice-picture-png",
    ),
    path("series/<uuid:code>/dental/arch.json", dental_views.dental_arch, name="dental-arch"),
    path("series/<uuid:code>/dental/path.json", dental_views.dental_path, name="dental-path"),
    path(
        "series/<uuid:code>/dental/<str:kind>.jpg", dental_views.dental_image, name="dental-image"
    ),
    path(
        "series/<uuid:code>/dental/<str:kind>.png",
        dental_views.dental_image,
        {"fmt": "png"},
        name="dental-image-png",
    ),
    path(
        "series/<uuid:code>/dental/export/<str:kind>.jpg",
        dental_views.export_dental_picture,
        {"fmt": "jpeg"},
        name="dental-export",
    ),
    path(
        "series/<uuid:code>/dental/export/<str:kind>.png",
        dental_views.export_dental_picture,
        {"fmt": "png"},
        name="dental-export-png",
    ),
    path(
        "attachments/<uuid:code>/thumbnail.jpg",
        views.attachment_thumbnail,
        name="attachment-thumbnail",
    ),
    path("attachments/<uuid:code>/file", views.attachment_file, name="attachment-file"),
]
