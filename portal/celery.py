"""Celery application; tasks run eagerly on a laptop and on a worker in production."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import beat_init, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The practice domain keeps its jobs beside the code they run, not in one portal.tasks.
app.autodiscover_tasks(["portal.compliance", "portal.workspace", "portal.dicomnet"])


@worker_init.connect
@beat_init.connect
def _refuse_misconfigured(**kwargs) -> None:
    from portal.deployment import refuse_to_start_if_misconfigured

    refuse_to_start_if_misconfigured()
