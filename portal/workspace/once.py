"""Forms that issue a link act once: the same form sent again issues nothing more.

Each such form carries a random key. A reload of the page that showed the new link (the
browser sends the form again) or a double click arrives with the same key. The key is
recorded (portal.models.SentForm, hashed with the user) in the transaction that issues the
link: a second arrival finds it, or waits on the first and then finds it, in any web process;
if issuing fails, the key goes with the rollback and the corrected form may be sent again.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from portal.models import SentForm

FIELD = "issue_key"
# A form's key is remembered this long.
KEEP = timedelta(days=1)


def new_key() -> str:
    return secrets.token_urlsafe(16)


def first_time(request: HttpRequest, key: str) -> bool:
    """Record the form's key; False if it was sent before (no key: always True).

    Call it inside the transaction that issues the link.
    """
    if not key:
        return True
    digest = hashlib.sha256(f"{request.user.pk}:{key}".encode()).hexdigest()
    try:
        with transaction.atomic():
            SentForm.objects.create(digest=digest)
    except IntegrityError:
        return False
    SentForm.objects.filter(created_at__lt=timezone.now() - KEEP).delete()
    return True


def already_issued(request: HttpRequest, links_url: str, back_url: str) -> HttpResponse:
    """The answer to a form sent again: nothing more was issued, and the secret is not shown."""
    context = {"links_url": links_url, "back_url": back_url}
    response = render(request, "portal/already_issued.html", context, status=409)
    response.headers["Cache-Control"] = "no-store"
    return response
