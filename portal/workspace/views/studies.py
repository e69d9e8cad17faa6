"""Patient and study pages, and issuing a share link from a study."""

from __future__ import annotations

import uuid

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_POST

import audit
from audit.models import Action
from portal.access import deny as scope_denied
from portal.access import fetch_or_404
from portal.dicomnet.context import dicomnet_context
from portal.models import Patient, Role
from portal.workspace import once
from portal.workspace.decorators import staff_required
from portal.workspace.forms import PatientRecordForm, ShareForm
from sharing import services
from sharing.link_list import annotate_for_list, with_extend_limits
from sharing.models import ShareLink


@require_GET
@staff_required
def patient_detail(request: HttpRequest, code) -> HttpResponse:
    """Show one patient's studies and attachments."""
    scope = request.scope
    patient = fetch_or_404(request, scope, scope.patients(), code=code)
    audit.record(
        Action.VIEW_STUDY,
        request=request,
        patient=patient,
        obj=patient,
        detail={"page": "patient"},
        **scope.audit_kwargs(),
    )
    return _patient_page(request, patient)


@require_POST
@staff_required
def file_attachment(request: HttpRequest, code) -> HttpResponse:
    """File a photo or report uploaded without a study under one of the patient's studies."""
    scope = request.scope
    attachment = fetch_or_404(
        request, scope, scope.attachments().select_related("patient"), code=code
    )
    study = (
        scope.studies()
        .filter(code=_uuid(request.POST.get("study", "")), patient_id=attachment.patient_id)
        .first()
    )
    if study is None:
        messages.error(request, "Choose one of this patient's studies.")
        return redirect("portal:patient", code=attachment.patient.code)
    attachment.study = study
    attachment.save(update_fields=["study"])
    audit.record(
        Action.PATIENT_CHANGE,
        request=request,
        patient=attachment.patient,
        obj=attachment,
        detail={"fields": ["attachment_study"]},
        **scope.audit_kwargs(),
    )
    messages.success(request, "Filed under the study: it can be shared with it now.")
    return redirect("portal:patient", code=attachment.patient.code)


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _record_form(request: HttpRequest, patient, data=None) -> PatientRecordForm:
    scope = request.scope
    hygienists = User.objects.filter(
        staffmember__practice=scope.practice, staffmember__role=Role.HYGIENIST
    ).order_by("username")
    initial = {
        "birth_date": patient.birth_date,
        "assigned_staff": [str(pk) for pk in patient.assigned_staff.values_list("pk", flat=True)],
    }
    return PatientRecordForm(
        data,
        initial=initial,
        hygienists=hygienists,
        can_assign=scope.can_manage_practice,
        birth_date_on_file=patient.birth_date,
    )


def _patient_page(request: HttpRequest, patient, form=None, status: int = 200) -> HttpResponse:
    scope = request.scope
    studies = scope.studies().filter(patient=patient).prefetch_related("series")
    attachments = scope.attachments().filter(patient=patient)
    context = {
        "patient": patient,
        "studies": studies,
        "attachments": attachments,
        "scope": scope,
        "record_form": form or _record_form(request, patient),
        "issue_key": once.new_key(),
    }
    return render(request, "portal/patient_detail.html", context, status=status)


@require_POST
@staff_required
def patient_record(request: HttpRequest, code) -> HttpResponse:
    """Correct the birth date and, for practice admins, the hygienists assigned."""
    scope = request.scope
    patient = fetch_or_404(request, scope, scope.patients(), code=code)
    if not scope.can_edit_patient:
        raise scope_denied(request, scope, "patient")
    form = _record_form(request, patient, request.POST)
    if not form.is_valid():
        return _patient_page(request, patient, form, status=400)
    changed = []
    with transaction.atomic():
        # Another member may have saved a date since this form was read: decide on fresh data.
        # FOR NO KEY UPDATE: audit events that refer to the patient can still be inserted.
        on_file = Patient.objects.select_for_update(no_key=True).get(pk=patient.pk).birth_date
        if on_file != form.birth_date_on_file:
            form.add_error("birth_date", "Someone else just saved a date of birth; check it.")
            patient.birth_date = on_file
            return _patient_page(request, patient, form, status=409)
        born = form.cleaned_data["birth_date"]
        if born != patient.birth_date:
            corrected = patient.birth_date is not None
            patient.birth_date = born
            patient.save(update_fields=["birth_date"])
            changed.append("birth_date")
            if corrected:
                links = ShareLink.objects.filter(
                    patient=patient,
                    recipient_kind=ShareLink.Recipient.PATIENT,
                    revoked_at__isnull=True,
                    locked_at__isnull=True,
                    expires_at__gt=timezone.now(),
                ).count()
                if links:
                    messages.warning(
                        request,
                        f"{links} open patient link{'s' if links != 1 else ''} now ask"
                        f"{'' if links != 1 else 's'} for the corrected date of birth.",
                    )
        if "assigned_staff" in form.cleaned_data:
            wanted = {int(pk) for pk in form.cleaned_data["assigned_staff"]}
            hygienists = {int(pk) for pk, _ in form.fields["assigned_staff"].choices}
            current = set(patient.assigned_staff.values_list("pk", flat=True))
            # Only hygienists are offered; assignments of other users are left as they are.
            if wanted != current & hygienists:
                patient.assigned_staff.remove(*(current & hygienists - wanted))
                patient.assigned_staff.add(*(wanted - current))
                changed.append("assigned_staff")
        if changed:
            audit.record(
                Action.PATIENT_CHANGE,
                request=request,
                patient=patient,
                obj=patient,
                detail={"fields": changed},
                **scope.audit_kwargs(),
            )
    messages.success(request, "Record saved." if changed else "Nothing changed.")
    return redirect("portal:patient", code=patient.code)


def _shareable_attachments(scope, study):  # noqa: ANN001, ANN202
    """Return the study's photos and reports and the patient's ones filed under no study."""
    return scope.attachments().filter(
        Q(study=study) | Q(study__isnull=True), patient_id=study.patient_id
    )


def _study_context(request: HttpRequest, study, form: ShareForm | None = None) -> dict:
    scope = request.scope
    series = scope.series().filter(study=study).order_by("number", "created_at")
    attachments = scope.attachments().filter(study=study)
    if form is None:
        kind = request.GET.get("for", "")
        initial = {"recipient_kind": kind} if kind in ShareLink.Recipient.values else {}
        if request.GET.get("copy") == "deidentified":  # a new link for a de-identified one
            initial["deidentified"] = True
        form = ShareForm(
            study=study,
            series=series,
            attachments=_shareable_attachments(scope, study),
            initial=initial,
        )
    shares = annotate_for_list(
        ShareLink.objects.filter(Q(study=study) | Q(source_study=study), practice=scope.practice)
    )
    return {
        "study": study,
        "patient": study.patient,
        "series_list": series,
        "attachments": attachments,
        "shares": with_extend_limits(shares),
        "form": form,
        "scope": scope,
        **dicomnet_context(scope, study),
    }


@require_GET
@staff_required
def study_detail(request: HttpRequest, code) -> HttpResponse:
    """Show a study's series and attachments, its links, and the form to share it."""
    scope = request.scope
    study = fetch_or_404(request, scope, scope.studies().select_related("patient"), code=code)
    audit.record(
        Action.VIEW_STUDY,
        request=request,
        patient=study.patient,
        obj=study,
        detail={"page": "study"},
        **scope.audit_kwargs(),
    )
    return render(request, "portal/study_detail.html", _study_context(request, study))


@sensitive_post_parameters("password")
@require_POST
@staff_required
def issue_share(request: HttpRequest, code) -> HttpResponse:
    """Issue a link and show it once; the token goes straight into this response, never stored."""
    scope = request.scope
    study = fetch_or_404(request, scope, scope.studies().select_related("patient"), code=code)
    series = scope.series().filter(study=study)
    attachments = _shareable_attachments(scope, study)
    form = ShareForm(request.POST, study=study, series=series, attachments=attachments)
    if not form.is_valid():
        return render(
            request, "portal/study_detail.html", _study_context(request, study, form), status=400
        )
    data = form.cleaned_data
    try:
        # The form's key commits with the link, or neither does.
        with transaction.atomic():
            if not once.first_time(request, data["issue_key"]):
                return once.already_issued(request, "/shares/", f"/studies/{study.code}/")
            issued = services.issue_link(
                study=study,
                created_by=request.user,
                recipient_kind=data["recipient_kind"],
                recipient_email=data["recipient_email"],
                recipient_name=data["recipient_name"],
                series=list(series.filter(code__in=data["series"])),
                attachments=list(attachments.filter(code__in=data["attachments"])),
                expires_in_days=data["expires_in_days"],
                password=data["password"] or None,
                allow_download=data["allow_download"],
                max_downloads=data["max_downloads"],
                notify_recipient=data["notify_recipient"],
                deidentified=data.get("deidentified", False),
                request=request,
            )
    except ValidationError as exc:
        form.add_error(None, exc)
        return render(
            request, "portal/study_detail.html", _study_context(request, study, form), status=400
        )
    emailed, email_error = False, ""
    if data["send_email"]:
        emailed, email_error = _send_email(request, issued)
    url = settings.PORTAL_BASE_URL.rstrip("/") + issued.path

    response = render(
        request,
        "portal/share_issued.html",
        {
            "issued": issued,
            "share": issued.share,
            "referrer": issued.share.recipient_kind == "referrer",
            "study": study,
            "practice": scope.practice,
            "url": url,
            "qr_svg": segno.make(url, error="m").svg_inline(
                scale=4, dark="#000", light="#fff", title="QR code of the link"
            ),
            "password": issued.password,
            "emailed": emailed,
            "email_error": email_error,
        },
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _send_email(request: HttpRequest, issued) -> tuple[bool, str]:
    send = getattr(services, "send_link_email", None)
    if send is None:
        return False, "Email is not available yet on this portal; print the handout instead."
    try:
        send(issued, request=request)
    except (OSError, ValidationError) as exc:
        messages.error(request, "The email could not be sent.")
        return False, f"The email could not be sent ({exc.__class__.__name__})."
    return True, ""
