"""Send onward: a study to a configured destination by C-STORE, one result per instance.

The stored originals go out byte for byte: each data set is read from the vault and put on
the wire as it is (no decoding and re-encoding), in its own transfer syntax. Every transfer
is audited as a disclosure, with the destination, the instances and the outcome.
"""

from __future__ import annotations

import io
import logging
import ssl
import time

from django.db.models import F
from django.utils import timezone
from pynetdicom import AE
from pynetdicom.dimse_primitives import C_STORE

import audit
from audit.models import Action, Outcome
from portal import vault
from portal.dicomnet.destinations import refusal
from portal.models import Instance, Transfer, TransferItem

logger = logging.getLogger(__name__)
LONG_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"SQ", b"UC", b"UN", b"UR", b"UT"}
MAX_CONTEXTS = 128
CALLING_AE = "PORTAL"


def dataset_offset(data: bytes) -> int:
    """Return where the data set starts in a Part 10 file: after preamble and group 0002."""
    pos = 132
    while pos + 8 <= len(data) and data[pos : pos + 2] == b"\x02\x00":
        vr = data[pos + 4 : pos + 6]
        if vr in LONG_VRS:
            pos += 12 + int.from_bytes(data[pos + 8 : pos + 12], "little")
        else:
            pos += 8 + int.from_bytes(data[pos + 6 : pos + 8], "little")
    return pos


def _describe(status: int, comment: str = "") -> str:
    if status == 0:
        return "stored"
    kind = (
        "warning" if status in (0x0001, 0x0107, 0x0116) or 0xB000 <= status <= 0xBFFF else "failed"
    )
    text = f"{kind} 0x{status:04X}"
    return f"{text}: {comment}"[:200] if comment else text


def store_original(assoc, instance: Instance) -> tuple[int, str]:
    """C-STORE one stored original as it is; return (status, comment)."""
    contexts = [
        cx
        for cx in assoc.accepted_contexts
        if cx.abstract_syntax == instance.sop_class_uid
        and cx.transfer_syntax[0] == instance.transfer_syntax_uid
    ]
    if not contexts:
        return 0x0122, "destination does not take this kind of image in its syntax"
    data = vault.read_bytes(instance.blob)
    req = C_STORE()
    req.MessageID = 1
    req.Priority = 2
    req.AffectedSOPClassUID = instance.sop_class_uid
    req.AffectedSOPInstanceUID = instance.sop_instance_uid
    req.DataSet = io.BytesIO(data[dataset_offset(data) :])
    # As Association.send_c_store does, minus its re-encoding of the data set: pause the
    # reactor, send, wait for the answer.
    assoc._reactor_checkpoint.clear()
    while not assoc._is_paused:
        time.sleep(0.0001)
    try:
        assoc.dimse.send_msg(req, contexts[0].context_id)
        _, rsp = assoc.dimse.get_msg(block=True)
    finally:
        assoc._reactor_checkpoint.set()
    if rsp is None:
        assoc.abort()
        return 0xA700, "no answer from the destination"
    status = getattr(rsp, "Status", None)
    comment = str(getattr(rsp, "ErrorComment", "") or "")
    return int(status if status is not None else 0xC000), comment


def _requester(transfer: Transfer, instances: list[Instance]) -> AE:
    ae = AE(ae_title=CALLING_AE)
    ae.acse_timeout = 30
    ae.dimse_timeout = 120
    ae.network_timeout = 120
    pairs: dict[str, list[str]] = {}
    for i in instances:
        syntaxes = pairs.setdefault(i.sop_class_uid, [])
        if i.transfer_syntax_uid not in syntaxes:
            syntaxes.append(i.transfer_syntax_uid)
    # One context per SOP class and syntax, so each original is accepted in its own syntax.
    for sop_class, syntaxes in pairs.items():
        for syntax in syntaxes:
            if len(ae.requested_contexts) < MAX_CONTEXTS:
                ae.add_requested_context(sop_class, [syntax])
    return ae


def _tls_args(transfer: Transfer):
    if not transfer.destination.use_tls:
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    node = getattr(transfer.practice, "dicom_node", None)
    if node is not None and node.tls_certificate and node.tls_private_key:
        context.load_cert_chain(node.tls_certificate, node.tls_private_key)
    return (context, transfer.destination.address)


def run(transfer_pk: int) -> Transfer:
    """Send (or resume sending) a transfer; safe to run twice."""
    transfer = Transfer.objects.select_related("destination", "study", "practice").get(
        pk=transfer_pk
    )
    if transfer.status in (Transfer.Status.DONE, Transfer.Status.PARTIAL, Transfer.Status.FAILED):
        return transfer
    done = set(transfer.items.values_list("instance_id", flat=True))
    instances = [
        i
        for i in Instance.objects.filter(series__study=transfer.study)
        .select_related("blob")
        .order_by("series__number", "series__created_at", "instance_number", "created_at")
        if i.pk not in done
    ]
    Transfer.objects.filter(pk=transfer.pk).update(status=Transfer.Status.SENDING)
    dest = transfer.destination
    error = ""
    refused = refusal(dest.address or "")
    if refused:
        error = refused  # saved before the rule, or the operator narrowed the networks
    elif instances:
        ae = _requester(transfer, instances)
        assoc = ae.associate(
            dest.address, dest.port, ae_title=dest.ae_title, tls_args=_tls_args(transfer)
        )
        if not assoc.is_established:
            error = (
                "the destination refused the connection"
                if assoc.is_rejected
                else ("the destination could not be reached")
            )
        else:
            try:
                for instance in instances:
                    status, comment = store_original(assoc, instance)
                    ok = status == 0 or 0xB000 <= status <= 0xBFFF or status in (1, 0x107, 0x116)
                    TransferItem.objects.create(
                        transfer=transfer,
                        instance=instance,
                        status=status,
                        outcome=_describe(status, comment),
                    )
                    field = "sent" if ok else "failed"
                    Transfer.objects.filter(pk=transfer.pk).update(**{field: F(field) + 1})
                    if not assoc.is_established:
                        error = "the destination ended the connection"
                        break
            finally:
                if assoc.is_established:
                    assoc.release()
    return _finish(transfer, error)


def _finish(transfer: Transfer, error: str) -> Transfer:
    transfer.refresh_from_db()
    if transfer.sent == transfer.total and not error:
        status = Transfer.Status.DONE
    elif transfer.sent:
        status = Transfer.Status.PARTIAL
    else:
        status = Transfer.Status.FAILED
    transfer.status, transfer.error, transfer.finished_at = status, error[:200], timezone.now()
    transfer.save(update_fields=["status", "error", "finished_at"])
    dest = transfer.destination
    audit.record(
        Action.DICOM_SEND,
        user=transfer.created_by,
        practice=transfer.practice,
        patient=transfer.study.patient,
        obj=transfer.study,
        outcome=Outcome.OK if status == Transfer.Status.DONE else Outcome.FAILED,
        detail={
            "phase": "finished",
            "transfer": str(transfer.code),
            "destination": dest.name,
            "ae_title": dest.ae_title,
            "host": dest.address,
            "port": dest.port,
            "tls": dest.use_tls,
            "instances": transfer.total,
            "sent": transfer.sent,
            "failed": transfer.failed,
            "result": status,
            "error": error,
        },
    )
    return transfer
