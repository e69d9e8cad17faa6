"""Sessions: kept in the database, read through a shared cache when there is one.

Every request reads its session; with Redis configured (PORTAL_SESSION_CACHE, on whenever
REDIS_URL is set) the read costs a cache lookup instead of a database round trip. The database
stays the record: a cache that is down or empty only costs speed. Writes go to the database
first, then replace the cached copy; a deletion removes both. Cached copies live at most
CACHE_SECONDS, which bounds how long a copy could outlive a deletion the cache missed
(a Redis outage at the moment of a sign-out).

Without a shared cache (a laptop's in-process cache) nothing is cached: another process could
otherwise keep serving a session that was ended.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.utils import timezone

from portal.rows import fetch_row

logger = logging.getLogger(__name__)

CACHE_SECONDS = 60
KEY_PREFIX = "portal.session:"


def _cache():  # noqa: ANN202 - Django's cache handler
    if not getattr(settings, "PORTAL_SESSION_CACHE", False):
        return None
    return caches[settings.SESSION_CACHE_ALIAS]


def forget_cached(session_keys: list[str]) -> None:
    """Drop cached copies of sessions deleted from the database in bulk."""
    cache = _cache()
    if cache is None or not session_keys:
        return
    try:
        cache.delete_many([KEY_PREFIX + key for key in session_keys])
    except Exception as exc:  # noqa: BLE001 - a cache outage must not stop a sign-out
        logger.warning("session cache: could not drop %d copies (%s)", len(session_keys), exc)


class SessionStore(DatabaseSessionStore):
    """Django's database session store, read without the ORM compiler and through the cache."""

    @property
    def _cache_key(self) -> str:
        return KEY_PREFIX + (self.session_key or "")

    def _get_session_from_db(self) -> Session | None:
        session = (
            fetch_row(self.model, "session_key", self.session_key) if self.session_key else None
        )
        if session is None or session.expire_date <= timezone.now():
            self._session_key = None
            return None
        return session

    def load(self) -> dict[str, Any]:
        cache = _cache()
        if cache is not None and self.session_key:
            try:
                cached = cache.get(self._cache_key)
            except Exception as exc:  # noqa: BLE001 - fall back to the database
                logger.warning("session cache unavailable (%s); reading the database", exc)
                cached = None
            if cached is not None and cached[0] > timezone.now().timestamp():
                return cached[1]
        session = self._get_session_from_db()
        if session is None:
            return {}
        data = self.decode(session.session_data)
        self._keep(data, session.expire_date.timestamp())
        return data

    def _keep(self, data: dict[str, Any], expires: float) -> None:
        cache = _cache()
        if cache is None:
            return
        seconds = min(CACHE_SECONDS, int(expires - timezone.now().timestamp()))
        if seconds <= 0:
            return
        try:
            cache.set(self._cache_key, (expires, data), seconds)
        except Exception as exc:  # noqa: BLE001 - the database copy is the record
            logger.warning("session cache: could not keep a copy (%s)", exc)

    def save(self, must_create: bool = False) -> None:
        super().save(must_create=must_create)
        if self.session_key:
            expires = self.get_expiry_date().timestamp()
            data = self._get_session(no_load=must_create)
            if _cache() is not None:
                forget_cached([self.session_key])  # no stale copy, even if the set fails
                self._keep(data, expires)

    def delete(self, session_key: str | None = None) -> None:
        key = session_key or self.session_key
        super().delete(session_key)
        if key:
            forget_cached([key])
