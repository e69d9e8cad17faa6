"""Bring a deployment up to date before the web processes start: migrations and storage.

The compose file runs it once per `up` (idempotent): database migrations, then the bucket
(or vault folder) that encrypted objects go to.
"""

from __future__ import annotations

import os

from django.core.files.storage import FileSystemStorage, storages
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Apply migrations and create the object storage bucket or folder if missing."

    def handle(self, *args, **options) -> None:
        call_command("migrate", interactive=False, verbosity=options["verbosity"])
        storage = storages["vault"]
        if isinstance(storage, FileSystemStorage):
            os.makedirs(storage.location, mode=0o700, exist_ok=True)
            self.stdout.write(f"vault folder ready: {storage.location}")
            return
        client = storage.bucket.meta.client
        try:
            client.head_bucket(Bucket=storage.bucket_name)
        except client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                raise
            client.create_bucket(Bucket=storage.bucket_name)
            self.stdout.write(f"bucket created: {storage.bucket_name}")
        else:
            self.stdout.write(f"bucket ready: {storage.bucket_name}")
