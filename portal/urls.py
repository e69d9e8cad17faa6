from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.decorators.http import require_GET
from django_otp.admin import OTPAdminSite


@require_GET
def robots_txt(request: HttpRequest) -> HttpResponse:
    return HttpResponse("User-agent: *\nDisallow: /\n", content_type="text/plain")


class PortalAdminSite(OTPAdminSite):
    """The admin, too, requires the second factor; its sign-in is the staff sign-in."""

    def autocomplete_view(self, request: HttpRequest) -> HttpResponse:
        from portal.admin.scope import record_autocomplete_reads

        response = super().autocomplete_view(request)
        record_autocomplete_reads(self, request, response)
        return response


admin.site.__class__ = PortalAdminSite


def admin_login(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated and request.user.is_verified():
        # Signed in fully but not admin staff: sending them to sign in again would loop.
        raise PermissionDenied
    return redirect_to_login(request.GET.get("next", "/admin/"))


urlpatterns = [
    path("admin/login/", admin_login),
    path("robots.txt", robots_txt),
    path("admin/", admin.site.urls),
    path("webauthn/", include("portal.workspace.passkeys")),
    path("s/", include("sharing.urls")),
    path("dicomweb/", include("sharing.dicomweb.urls")),
    path("u/", include("sharing.uploads.urls")),
    path("received/", include("sharing.uploads.staff_urls")),
    path("shares/", include("sharing.staff_urls")),
    path("viewer/", include("viewer.urls")),
    path("", include("portal.dicomnet.urls")),
    path("", include("portal.workspace.urls")),
]

handler400 = "portal.errors.bad_request"
handler403 = "portal.errors.permission_denied"
handler404 = "portal.errors.page_not_found"
handler500 = "portal.errors.server_error"
