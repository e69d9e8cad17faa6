from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Practice"

    def ready(self) -> None:
        from portal import checks  # noqa: F401  (checks registers itself)
        from portal.workspace import otp_keys

        otp_keys.install()
