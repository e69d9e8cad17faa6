"""Whether a viewer's sign-in still holds: asked when an image is refused.

A refused image may mean the link was withdrawn or expired, or the session idled out; the
viewer then goes where the reason is said. The answer reads no patient data and records
nothing: asking a page that shows the study instead would record a view nobody made.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from portal.access import scope_for


@never_cache
@require_GET
def session_state(request: HttpRequest) -> HttpResponse:
    """204 while the recipient's or staff member's sign-in holds, 401 once it does not."""
    return HttpResponse(status=204 if scope_for(request) is not None else 401)
