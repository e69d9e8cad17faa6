from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Practice"

    def ready(self) -> None:
        from portal import checks  # noqa: F401  (checks registers itself)
        from portal.workspace import otp_keys

        otp_keys.install()
        quiet_pydicom()


def quiet_pydicom() -> None:
    """pydicom's warnings about values their VR cannot hold quote the value, which can be
    patient data, into logs and stderr; the portal checks what it needs itself."""
    from pydicom import config

    config.settings.reading_validation_mode = config.IGNORE
