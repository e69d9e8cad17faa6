from __future__ import annotations

from django.db import models


class SentForm(models.Model):
    """A form that issues a link, as sent once: the same form sent again issues nothing.

    Kept in the database (not the cache) so that every web process and node sees it, and so
    that it commits or rolls back with the link it issued (portal.workspace.once).
    """

    digest = models.CharField(max_length=64, unique=True)  # SHA-256 of the user and form key
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"form sent {self.created_at:%Y-%m-%d %H:%M}"
