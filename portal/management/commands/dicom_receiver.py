"""Run the DICOM receiver until stopped (C-ECHO and C-STORE from the practices' devices)."""

from __future__ import annotations

import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from portal.dicomnet import recovery
from portal.dicomnet.receiver import Receiver, freeze_startup_heap
from portal.models import DicomNode


class Command(BaseCommand):
    help = "Receive studies over DICOM for every practice with an AE title; stop with Ctrl+C."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default=settings.PORTAL_DICOM_HOST)
        parser.add_argument("--port", type=int, default=settings.PORTAL_DICOM_PORT)

    def handle(self, *args, host: str, port: int, **options) -> None:
        tls_nodes = [
            n
            for n in DicomNode.objects.select_related("practice").exclude(tls_port=None)
            if n.tls_certificate and n.tls_private_key
        ]
        # What an earlier run acknowledged but did not file (killed, power cut): filed before
        # devices can send again, so a re-sent study meets its first copy as a duplicate.
        filed = recovery.recover(at_start=True)
        if filed:
            self.stdout.write(f"Filed {filed} instances received before an interruption")
        freeze_startup_heap()
        receiver = Receiver()
        receiver.start(host, port, tls_nodes)
        titles = ", ".join(DicomNode.objects.values_list("ae_title", flat=True)) or "none yet"
        self.stdout.write(f"DICOM receiver on {host}:{port} (called AE titles: {titles})")
        for node in tls_nodes:
            self.stdout.write(f"DICOM TLS for {node.ae_title} on {host}:{node.tls_port}")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            receiver.stop()
            self.stdout.write("DICOM receiver stopped")
