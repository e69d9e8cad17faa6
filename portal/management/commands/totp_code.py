"""Print a demo user's current authenticator code, for a laptop without a phone."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice


class Command(BaseCommand):
    help = "Print the current TOTP code of a user's authenticator (laptop mode only)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")

    def handle(self, *args, **options) -> None:
        if not settings.LOCAL:
            raise CommandError("Only available in laptop mode (PORTAL_MODE=local).")
        username = options["username"]
        if not User.objects.filter(username=username).exists():
            raise CommandError(f"No user is called {username!r}.")
        device = TOTPDevice.objects.filter(user__username=username, confirmed=True).first()
        if device is None:
            raise CommandError("That user has no confirmed authenticator.")
        totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
        self.stdout.write(f"{totp.token():0{device.digits}d}")
