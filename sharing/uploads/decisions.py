"""Staff's decisions on what an upload link brought: accepted into the patient's record, or
declined and shredded.

Accepting runs the same record-building code as any upload, under the link's patient, on
the files sealed on arrival (sharing.uploads.intake); declining shreds them. The rows stay
as the record of what came.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.models import Action
from portal import vault
from portal.ingest import sniff
from portal.ingest.pipeline import Outcome, discard
from portal.ingest.records import build
from portal.ingest.report import STORED
from sharing.models import ReceivedFile
from sharing.uploads import services
from sharing.uploads.waiting import names_another_patient, other_records


def _outcome(index: int, received: ReceivedFile) -> Outcome:
    """Rebuild what the pipeline knew of a sealed file, reading its head from the vault."""
    out = Outcome(index=index, name=received.name, status="ok", kind=received.kind)
    out.blob = received.blob
    if received.kind == sniff.DICOM:
        size = received.blob.plain_size
        want = min(size, sniff.HEAD_BYTES)
        while True:
            head = vault.read_bytes(received.blob, 0, want)
            try:
                out.header = sniff.parse_dicom(head, want >= size)
                break
            except sniff.NeedMore:
                want = min(size, want * 2)
    elif received.kind == sniff.PHOTO:
        with vault.open_blob(received.blob) as fh:
            out.photo = sniff.check_photo(fh, settings.PORTAL_MAX_IMAGE_PIXELS)
        out.content_type = out.photo.content_type
    else:
        out.content_type = "application/pdf"
    return out


def _still_pending(files: list[ReceivedFile]) -> list[ReceivedFile]:
    """Lock the files' rows and return those still waiting, read again under the lock.

    A double-clicked accept, or a decline racing an accept, read them as pending before the
    first decision committed; the second must not file, or shred, them again.
    """
    wanted = [f.pk for f in files if f.state == ReceivedFile.State.PENDING]
    locked = ReceivedFile.objects.select_for_update(of=("self",)).filter(
        pk__in=wanted, state=ReceivedFile.State.PENDING
    )
    return list(locked.select_related("blob", "link__practice", "link__patient").order_by("pk"))


@dataclass
class Accepted:
    """What an accept decided, and the files it left waiting (they name another patient)."""

    decided: list[ReceivedFile]
    held: list[ReceivedFile]


def accept(files: list[ReceivedFile], *, by, request=None) -> Accepted:
    """File the files still pending into the link's patient's record.

    A DICOM file naming another patient of the practice (that record's Patient ID, under
    another name than the link's patient's) stays waiting: a click must not file Maria's
    scan into José's record. Staff decline it, or file it from the right record.
    """
    from viewer.tasks import build_previews

    with transaction.atomic():
        pending = [f for f in _still_pending(files) if f.blob is not None]
        if not pending:
            return Accepted([], [])
        link = pending[0].link
        outcomes = [_outcome(i, f) for i, f in enumerate(pending)]
        others = set(other_records(link, [o.header.patient_id for o in outcomes if o.header]))

        def elsewhere(o: Outcome) -> bool:
            h = o.header
            return h is not None and names_another_patient(
                link, h.patient_id, h.patient_name, others
            )

        held = [f for o, f in zip(outcomes, pending, strict=True) if elsewhere(o)]
        kept = [(o, f) for o, f in zip(outcomes, pending, strict=True) if not elsewhere(o)]
        if not kept:
            return Accepted([], held)
        outcomes = [o for o, _ in kept]
        pending = [f for _, f in kept]
        for i, o in enumerate(outcomes):
            o.index = i
        plan = build(outcomes, link.practice, link.patient, request, by)
        now = timezone.now()
        for o, f in zip(outcomes, pending, strict=True):
            state, reason = plan.status.get(o.index, (STORED, ""))
            if state == STORED:
                f.state, f.reason = ReceivedFile.State.ACCEPTED, ""
            else:
                f.state = ReceivedFile.State.DECLINED
                f.reason = (reason or state)[:200]
            f.decided_by, f.decided_at = by, now
        ReceivedFile.objects.bulk_update(pending, ["state", "reason", "decided_by", "decided_at"])
        refused = [o.blob for o, f in zip(outcomes, pending, strict=True) if f.state != "accepted"]
        # Shredded only once the decision is committed: a rollback must find them intact.
        transaction.on_commit(lambda: discard(refused))
        if plan.series_pks or plan.attachment_pks:
            series, attachments = plan.series_pks, plan.attachment_pks
            transaction.on_commit(lambda: build_previews.delay(series, attachments))
    return Accepted(pending, held)


def decline(files: list[ReceivedFile], *, by, request=None) -> None:
    """Shred pending files staff do not want; the rows stay as the record of what came."""
    with transaction.atomic():
        pending = _still_pending(files)
        if not pending:
            return
        link = pending[0].link
        blobs = [f.blob for f in pending if f.blob is not None]
        now = timezone.now()
        for f in pending:
            f.state, f.decided_by, f.decided_at = ReceivedFile.State.DECLINED, by, now
            f.reason = "declined by the practice"
        ReceivedFile.objects.bulk_update(pending, ["state", "reason", "decided_by", "decided_at"])
        services.record(Action.UPLOAD, link, request, user=by, declined=len(pending))
    discard(blobs)
