"""Whether a viewer's sign-in still holds: asked when an image is refused.

A refused image may mean the link was withdrawn or expired, or the session idled out; the
viewer then goes where the reason is said. The answer reads no patient data and records
nothing: asking a page that shows the study instead would record a view nobody made.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from portal.access import scope_for, staff_member


@never_cache
@require_GET
def check_session(request: HttpRequest) -> HttpResponse:
    """204 while the sign-in the viewer was opened with holds, 401 once it does not.

    ?as=staff asks of the staff sign-in alone, else of the link's: a browser may hold both
    (a staff member trying a link), and one must not answer for the other. A staff session
    that idled out is answered by the sign-out middleware first (a redirect to sign in).
    """
    if request.GET.get("as") == "staff":
        holds = staff_member(request) is not None
    else:
        scope = scope_for(request)
        holds = scope is not None and scope.share is not None
    return HttpResponse(status=204 if holds else 401)
