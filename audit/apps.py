from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Access history"

    def ready(self) -> None:
        """Record admin edits of settings-like records (django-auditlog), never secrets."""
        from auditlog.registry import auditlog
        from django.contrib.auth import get_user_model

        from portal.models import BusinessAssociateAgreement, Practice, RetentionPolicy, StaffMember
        from sharing.models import ShareLink

        auditlog.register(get_user_model(), exclude_fields=["password", "last_login"])
        auditlog.register(Practice)
        auditlog.register(StaffMember)
        auditlog.register(BusinessAssociateAgreement)
        auditlog.register(RetentionPolicy)
        auditlog.register(ShareLink, exclude_fields=["token_hash", "password_hash"])
