from django.urls import path

from portal.workspace import tus
from portal.workspace.views import auth, deidentified, pending, practice, search, studies, upload

app_name = "portal"

urlpatterns = [
    path("", search.search, name="home"),
    path("login/", auth.login, name="login"),
    path("login/verify/", auth.verify, name="verify"),
    path("login/unlock/", auth.request_unlock, name="unlock-request"),
    path("login/unlock/<str:token>/", auth.unlock, name="unlock"),
    path("login/enroll/", auth.enroll, name="enroll"),
    path("login/set-password/<uidb64>/<token>/", auth.set_password, name="set-password"),
    path("account/", auth.account, name="account"),
    path("account/passkeys/<int:pk>/remove/", auth.remove_passkey, name="passkey-remove"),
    path("logout/", auth.logout, name="logout"),
    path("patients/<uuid:code>/", studies.patient_detail, name="patient"),
    path("patients/<uuid:code>/record/", studies.patient_record, name="patient-record"),
    path("attachments/<uuid:code>/study/", studies.file_attachment, name="attachment-study"),
    path("studies/<uuid:code>/", studies.study_detail, name="study"),
    path("studies/<uuid:code>/share/", studies.issue_share, name="issue-share"),
    path(
        "studies/<uuid:code>/deidentified.zip",
        deidentified.deidentified_study,
        name="study-deidentified",
    ),
    path("upload/", upload.upload_page, name="upload"),
    path("pending/", pending.pending_list, name="pending"),
    path("pending/<uuid:code>/attach/", pending.attach_pending, name="pending-attach"),
    path("upload/batches/", upload.create_batch, name="upload-batch"),
    path("upload/batches/<uuid:code>/", upload.batch_status, name="upload-status"),
    path("upload/batches/<uuid:code>/finish/", upload.finish_batch, name="upload-finish"),
    path("upload/tus/", tus.create_upload, name="tus-create"),
    path("upload/tus/<uuid:code>", tus.upload_detail, name="tus-upload"),
    path("practice/settings/", practice.practice_settings, name="practice-settings"),
    path("practice/staff/", practice.staff_list, name="staff-list"),
    path("practice/staff/new/", practice.add_staff, name="staff-add"),
    path("practice/staff/<str:username>/role/", practice.change_role, name="staff-role"),
    path("practice/staff/<str:username>/active/", practice.set_active, name="staff-active"),
    path(
        "practice/staff/<str:username>/lift-pause/",
        practice.lift_sign_in_pause,
        name="staff-lift-pause",
    ),
    path(
        "practice/staff/<str:username>/password-link/",
        practice.send_password_link,
        name="staff-password-link",
    ),
    path(
        "practice/staff/<str:username>/reset-authenticator/",
        practice.reset_authenticator,
        name="staff-reset-otp",
    ),
]
