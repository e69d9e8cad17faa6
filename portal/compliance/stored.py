"""What a study keeps in the vault: the objects crypto-shredding must destroy."""

from __future__ import annotations

import audit
from audit.models import Action
from portal import vault
from portal.models import Attachment, Instance, StoredObject, Study


def objects_of(study: Study) -> list[StoredObject]:
    """Return the study's live stored objects: files, thumbnails, volumes, prepared ZIPs."""
    ids = set(Instance.objects.filter(series__study=study).values_list("blob_id", flat=True))
    for thumb_id, volume_id in study.series.values_list("thumbnail_id", "volume_id"):
        ids |= {thumb_id, volume_id} - {None}
    for blob_id, thumb_id in Attachment.objects.filter(study=study).values_list(
        "blob_id", "thumbnail_id"
    ):
        ids.add(blob_id)
        if thumb_id:
            ids.add(thumb_id)
    from sharing.models import DownloadPlan

    ids |= set(DownloadPlan.objects.filter(study=study).values_list("blob_id", flat=True))
    return list(StoredObject.objects.filter(pk__in=ids, wrapped_key__isnull=False))


def shred_recorded(record: Study | Attachment, objects: list[StoredObject], reason: str) -> int:
    """Crypto-shred a record's objects and leave the PHI-free audit event that says so, last
    (the audit head comes last in the lock order); return how many were shredded."""
    for obj in objects:
        vault.shred(obj)
    audit.record(
        Action.SHRED,
        practice=record.practice,
        patient=record.patient,
        obj=record,
        detail={"objects": len(objects), "reason": reason},
    )
    return len(objects)
