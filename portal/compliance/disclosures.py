"""Accounting of disclosures (HIPAA 164.528): who received a patient's images, and what then.

Every share link of the patient (to whom, why, when, what it covered, who issued it) with
each use of it by its recipient (opened, verified, viewed, downloaded, from which address),
and the disclosures staff recorded as made outside the portal (paper, CD), for a period of
up to six years, worded for the patient.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time

from django.db.models import Q
from django.utils import timezone

from audit.models import AccessEvent, Action, Outcome
from portal.compliance.rules import add_years
from portal.models import Disclosure, Patient

MAX_YEARS = 6
RECIPIENT_USES = {
    Action.SHARE_OPEN: "opened the link",
    Action.SHARE_VERIFY: "confirmed who they are",
    Action.VIEW_STUDY: "viewed the images",
    Action.VIEW_SERIES: "viewed a series",
    Action.VIEW_ATTACHMENT: "viewed a photo or document",
    Action.DOWNLOAD: "downloaded a copy",
}


@dataclass
class Use:
    at: datetime
    what: str
    address: str


@dataclass
class Entry:
    on: date
    recipient: str
    purpose: str
    what: str
    how: str
    by: str
    uses: list[Use] = field(default_factory=list)


def period(start: date | None, end: date | None, today: date | None = None) -> tuple[date, date]:
    """Return the period asked for, no longer than six years back from today."""
    today = today or timezone.localdate()
    earliest = add_years(today, -MAX_YEARS)
    end = min(end or today, today)
    start = max(start or earliest, earliest)
    return min(start, end), end


def _who(user) -> str:
    return (user.get_full_name() or user.get_username()) if user else "the practice"


def _shared(share) -> str:
    study = share.source_study or share.study
    label = f"{study.description or 'Imaging study'}"
    if study.study_date:
        label += f" of {study.study_date:%-d %B %Y}"
    if share.source_study_id is not None:
        return f"{label}: a de-identified copy (no name, ID, birth date or UIDs)"
    if share.whole_study:
        return f"{label}: the whole study"
    series = list(share.series.all())
    attachments = list(share.attachments.all())
    if not series and not attachments:
        return f"{label}: chosen items, since deleted"
    parts = [f"{s.modality} {s.description or 'series'}".strip() for s in series]
    parts += [a.title or a.get_kind_display() for a in attachments]
    return f"{label}: " + ", ".join(parts)


def _uses(share_code) -> list[Use]:
    events = AccessEvent.objects.filter(
        share_code=share_code, action__in=list(RECIPIENT_USES), outcome=Outcome.OK
    ).order_by("seq")
    uses = []
    for event in events:
        if event.action == Action.DOWNLOAD and event.detail.get("phase") != "start":
            continue
        uses.append(Use(event.created_at, RECIPIENT_USES[event.action], event.ip_address or ""))
    return uses


def account(patient: Patient, start: date, end: date) -> list[Entry]:
    """Return the patient's disclosures in [start, end], oldest first."""
    from sharing.models import ShareLink

    tz = timezone.get_current_timezone()
    since = datetime.combine(start, time.min, tz)
    until = datetime.combine(end, time.max, tz)
    entries = []
    shares = (
        ShareLink.objects.filter(
            Q(patient=patient) | Q(source_patient=patient), created_at__range=(since, until)
        )
        .select_related("study", "source_study", "created_by")
        .order_by("created_at")
    )
    for share in shares:
        if share.recipient_kind == ShareLink.Recipient.PATIENT:
            recipient = "You (the patient)"
            purpose = "Your own copy, at your request"
        else:
            recipient = "Referring clinician " + (share.recipient_name or "").strip()
            purpose = "Referral for your care"
            if share.source_study_id is not None:
                recipient = "Clinician or teacher " + (share.recipient_name or "").strip()
                purpose = "Teaching or a second opinion, de-identified"
        if share.recipient_email:
            recipient += f" <{share.recipient_email}>"
        entries.append(
            Entry(
                on=timezone.localdate(share.created_at),
                recipient=recipient.strip(),
                purpose=purpose,
                what=_shared(share),
                how="Secure link in the image portal",
                by=_who(share.created_by),
                uses=_uses(share.code),
            )  # fmt: skip
        )
    outside = Disclosure.objects.filter(patient=patient, disclosed_on__range=(start, end))
    for item in outside.select_related("recorded_by"):
        recipient = item.recipient + (
            f", {item.recipient_address}" if item.recipient_address else ""
        )
        entries.append(
            Entry(
                on=item.disclosed_on,
                recipient=recipient,
                purpose=item.purpose,
                what=item.what,
                how=item.get_medium_display(),
                by=_who(item.recorded_by),
            )  # fmt: skip
        )
    entries.extend(_dicom_sends(patient, since, until))
    return sorted(entries, key=lambda e: e.on)


def _dicom_sends(patient: Patient, since: datetime, until: datetime) -> list[Entry]:
    """Studies staff sent onward to another system by DICOM (portal.dicomnet.send)."""
    events = AccessEvent.objects.filter(
        patient=patient,
        action=Action.DICOM_SEND,
        detail__phase="finished",
        created_at__range=(since, until),
    ).select_related("user")
    entries = []
    for event in events.order_by("seq"):
        d = event.detail
        if not d.get("sent"):
            continue
        entries.append(
            Entry(
                on=timezone.localdate(event.created_at),
                recipient=f"{d.get('destination', '')} (DICOM {d.get('ae_title', '')} "
                f"at {d.get('host', '')}:{d.get('port', '')})",
                purpose="Sent by the practice to another system",
                what=f"{d.get('sent')} of {d.get('instances')} images of a study",
                how="DICOM transfer" + (" over TLS" if d.get("tls") else ""),
                by=_who(event.user),
            )  # fmt: skip
        )
    return entries


def _cell(value: str) -> str:
    """Keep a spreadsheet from reading a cell as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_rows(entries: list[Entry]) -> Iterator[str]:
    """Yield the account as CSV lines: one per disclosure, then one per use of it."""
    writer = csv.writer(_Echo())
    yield writer.writerow(
        ["date", "recipient", "purpose", "what", "how", "issued by", "use", "use time", "from"]
    )
    for e in entries:
        base = [e.on.isoformat(), e.recipient, e.purpose, e.what, e.how, e.by]
        yield writer.writerow([_cell(v) for v in base] + ["", "", ""])
        for use in e.uses:
            at = timezone.localtime(use.at).isoformat(timespec="seconds")
            yield writer.writerow([_cell(v) for v in base] + [use.what, at, use.address])
