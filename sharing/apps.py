from django.apps import AppConfig


class SharingConfig(AppConfig):
    name = "sharing"
    verbose_name = "Share links"

    def ready(self) -> None:
        from portal import access
        from sharing import logfilter, session

        logfilter.install()
        access.register_share_resolver(session.resolve)
