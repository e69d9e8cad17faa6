"""Liveness and readiness for load balancers and the container's HEALTHCHECK.

/healthz answers as long as the process serves requests. /readyz also checks what a request
needs (database, broker, object storage, cache, keys) and names what is missing; neither ever
shows patient data, settings values or error text.
"""

from __future__ import annotations

import json
import logging
import os

from django.conf import settings
from django.core.files.storage import FileSystemStorage, storages
from django.db import connection
from django.http import HttpResponse

logger = logging.getLogger(__name__)


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _broker() -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return
    from portal.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


def _storage() -> None:
    storage = storages["vault"]
    if isinstance(storage, FileSystemStorage):
        location = storage.location
        os.makedirs(location, mode=0o700, exist_ok=True)  # as the first stored object would
        if not os.access(location, os.W_OK | os.X_OK):
            raise OSError("vault folder not writable")
        return
    storage.bucket.meta.client.head_bucket(Bucket=storage.bucket_name)


def _cache() -> None:
    from django.core.cache import cache

    cache.get("portal-readyz")


def _keys() -> None:
    if settings.PORTAL_CURRENT_KEY_ID not in settings.PORTAL_KEYS:
        raise KeyError("current key missing")


CHECKS = {
    "database": _database,
    "broker": _broker,
    "storage": _storage,
    "cache": _cache,
    "keys": _keys,
}


def readiness() -> tuple[bool, dict[str, str]]:
    """Run every check; return whether all passed and 'ok' or 'unavailable' per check."""
    results = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; the log says why
            logger.warning("readiness: %s unavailable (%s)", name, type(exc).__name__)
            results[name] = "unavailable"
        else:
            results[name] = "ok"
    return all(v == "ok" for v in results.values()), results


def healthz() -> HttpResponse:
    return _answer(200, {"status": "ok"})


def readyz() -> HttpResponse:
    ready, checks = readiness()
    return _answer(200 if ready else 503, {"status": "ok" if ready else "unavailable", **checks})


def _answer(status: int, body: dict[str, str]) -> HttpResponse:
    response = HttpResponse(json.dumps(body), status=status, content_type="application/json")
    response["Cache-Control"] = "no-store"
    return response
