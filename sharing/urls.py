from django.urls import path

from sharing import downloads, link_requests, views
from sharing.dicomweb import recipient

app_name = "sharing"

urlpatterns = [
    path("", views.verify_recipient, name="verify"),
    path("code/", views.send_code, name="send-code"),
    path("home/", views.recipient_home, name="home"),
    path("end/", views.end_session, name="end"),
    path("request/", link_requests.request_link, name="request"),
    path("download/share.zip", downloads.download_share, name="download"),
    path("download/pictures.zip", downloads.export_share, name="export"),
    path("download/series/<uuid:code>.zip", downloads.download_series, name="download-series"),
    path(
        "download/series/<uuid:code>/pictures.zip",
        downloads.export_series,
        name="export-series",
    ),
    path(
        "download/attachments/<uuid:code>",
        downloads.download_attachment,
        name="download-attachment",
    ),
    path("download/instances/<uuid:code>", downloads.download_instance, name="download-instance"),
    path("software/", recipient.software_access, name="software"),
    path("software/tokens/", recipient.create_software_token, name="software-create"),
    path(
        "software/tokens/<uuid:code>/revoke/",
        recipient.revoke_software_token,
        name="software-revoke",
    ),
    path("<str:token>", views.open_share, name="open"),
]
