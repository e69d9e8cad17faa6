"""Database sessions, loaded without the ORM compiler (every request reads its session)."""

from __future__ import annotations

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone


class SessionStore(DatabaseSessionStore):
    """Django's database session store; only the per-request read is done differently."""

    def _get_session_from_db(self) -> Session | None:
        from portal.access import fetch_row

        session = (
            fetch_row(self.model, "session_key", self.session_key) if self.session_key else None
        )
        if session is None or session.expire_date <= timezone.now():
            self._session_key = None
            return None
        return session
