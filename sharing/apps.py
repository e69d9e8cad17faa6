from django.apps import AppConfig


class SharingConfig(AppConfig):
    name = "sharing"
    verbose_name = "Share links"

    def ready(self) -> None:
        from sharing import logfilter

        logfilter.install()
