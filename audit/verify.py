"""Verify the access history: every event's HMAC and link, the chain's end, the checkpoints.

The walk stops at the first bad row and names it: altered (its HMAC does not match its
fields), inserted (it does not verify and the chain goes on without it, or it lies beyond
the head), or missing events (a valid event that does not follow its predecessor, the gap
counted from positions). A chain that is sound on its own is then compared with its head
(deleting the newest events) and with each signed checkpoint kept outside the database
(truncation or a rewrite with an old head).
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from audit import reading
from audit.chain import GENESIS, head_mac, same
from audit.models import ChainHead
from audit.reading import Macs, canonical_detail


@dataclass
class Report:
    ok: bool = True
    count: int = 0
    last_hash: str = GENESIS
    problem: str = ""
    checkpoints: int = 0
    notes: list[str] = field(default_factory=list)

    def fail(self, problem: str) -> Report:
        self.ok, self.problem = False, problem
        return self


def _name(row: tuple[Any, ...]) -> str:
    return f"event #{row[0]} ({uuid.UUID(str(row[1]))})"


def walk(report: Report, head_seq: int, wanted: set[int], batch: int = 20_000) -> dict:
    """Check every row in order; return {seq: hash} for the positions in `wanted`."""
    macs, compare = Macs(settings.PORTAL_AUDIT_KEY), hmac.compare_digest
    found: dict[int, str] = {0: GENESIS}
    expected_prev, expected_seq = GENESIS, 1
    rows = reading.rows(batch)

    def valid(row: tuple[Any, ...]) -> bool:
        message = f"{row[2]}\n{row[4]}|{canonical_detail(row[5])}".encode()
        return compare(macs.hex(message), row[3])

    for row in rows:
        seq, _code, prev_hash, digest = row[:4]
        if seq == expected_seq and prev_hash == expected_prev and valid(row):
            expected_prev, expected_seq = digest, seq + 1
            if seq in wanted:
                found[seq] = digest
            continue
        if not valid(row):
            following = next(rows, None)
            skipped = following is not None and following[2] == expected_prev
            if skipped or seq > head_seq:
                report.fail(f"{_name(row)} was inserted: it does not verify against the key")
            else:
                report.fail(f"{_name(row)} was altered: its fields no longer match its HMAC")
        elif seq > expected_seq:
            gone = (
                f"#{expected_seq}" if seq - expected_seq == 1 else f"#{expected_seq} to #{seq - 1}"
            )
            report.fail(
                f"{seq - expected_seq} event(s) missing before {_name(row)}: {gone} deleted"
            )
        else:
            report.fail(f"{_name(row)} does not follow event #{expected_seq - 1}")
        rows.close()
        break
    report.count, report.last_hash = expected_seq - 1, expected_prev
    return found


def check_head(report: Report, head: ChainHead | None) -> None:
    """Compare the chain's end with its head: length and last hash, under the head's HMAC."""
    if head is None:
        if report.count:
            report.fail("the chain head is missing")
        return
    if not same(head_mac(head.seq, head.last_hash), head.mac):
        report.fail("the chain head was altered: its HMAC does not match")
    elif report.count < head.seq:
        report.fail(
            f"the chain ends at event #{report.count} but its head records #{head.seq}: "
            f"{head.seq - report.count} event(s) deleted from the end"
        )


def verify(*, checkpoints: bool = True, batch: int = 20_000) -> Report:
    """Verify the whole access history; with checkpoints, against those in the object store."""
    from audit import checkpoints as stored

    report = Report()
    head = ChainHead.objects.filter(pk=1).first()
    head_seq = head.seq if head else 0
    marks = stored.load_all() if checkpoints else []
    for mark in marks:
        if not mark.valid:
            return report.fail(f"checkpoint {mark.name} has a bad signature")
    wanted = {m.seq for m in marks} | {head_seq}
    found = walk(report, head_seq, wanted, batch)
    if not report.ok:
        return report
    check_head(report, head)
    if not report.ok:
        return report
    if head is not None and head.seq and not same(found.get(head.seq, ""), head.last_hash):
        return report.fail(f"event #{head.seq} is not the one the chain head records")
    for mark in marks:
        if report.count < mark.seq:
            return report.fail(
                f"the chain has {report.count} events but checkpoint {mark.name} recorded "
                f"{mark.seq}: events #{report.count + 1} to #{mark.seq} were deleted (truncated)"
            )
        if not same(found.get(mark.seq, ""), mark.last_hash):
            return report.fail(
                f"event #{mark.seq} differs from checkpoint {mark.name}: the chain was rewritten"
            )
        report.checkpoints += 1
    return report
