from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Practice"

    def ready(self) -> None:
        from portal import checks, sessions  # noqa: F401  (checks registers itself)

        sessions.connect_axes()
