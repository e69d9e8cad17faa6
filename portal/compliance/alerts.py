"""Alerts: abnormal patterns in the access history, raised for the practice's admins.

A scan (every minute in beat) reads the events written since the last scan and raises, once
each: a link locked by failed attempts; more than N downloads of one link within an hour; one
link used from more than M addresses; a staff member opening more than K patients in a day
(N, M and K per practice, in ComplianceSettings). Each alert emails the practice's admins,
naming the link by its id and the staff member by username, never a patient.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from django.db import transaction

from audit.models import AccessEvent, Action, Outcome
from portal.compliance.notify import send_to_admins
from portal.models import Alert, AlertScan, ComplianceSettings, Practice

STAFF_READS = (
    Action.VIEW_STUDY,
    Action.VIEW_SERIES,
    Action.VIEW_ATTACHMENT,
    Action.DOWNLOAD,
    Action.ADMIN_VIEW,
)
BATCH = 20_000


def _opens(action: str, detail: dict | None) -> bool:
    """Opening a patient's record or images; a list of many patients is not opening them."""
    return action in STAFF_READS and not (
        action == Action.ADMIN_VIEW and (detail or {}).get("page") == "list"
    )


def _raise(key: str, practice_id: int, **fields) -> Alert | None:
    alert, created = Alert.objects.get_or_create(
        key=key, defaults={"practice_id": practice_id, **fields}
    )
    if not created:
        return None
    alert.practice = Practice.objects.get(pk=practice_id)
    send_to_admins("alert", alert.practice, {"alert": alert})
    return alert


def _download_times(share_code, start: datetime, end: datetime) -> list[datetime]:
    return list(
        AccessEvent.objects.filter(
            share_code=share_code,
            action=Action.DOWNLOAD,
            outcome=Outcome.OK,
            detail__phase="start",
            created_at__gte=start,
            created_at__lte=end,
        )
        .order_by("created_at")
        .values_list("created_at", flat=True)
    )


def _downloads(share_code, practice_id: int, times: list[datetime], limit: int) -> list[Alert]:
    """Raise one alert per link and hour in which it was downloaded more than `limit` times."""
    found = []
    history = _download_times(share_code, min(times) - timedelta(hours=1), max(times))
    for i, end in enumerate(history):
        window = [t for t in history[: i + 1] if t > end - timedelta(hours=1)]
        if len(window) > limit:
            hour = end.strftime("%Y%m%d%H")
            alert = _raise(
                f"downloads:{share_code}:{hour}", practice_id, kind=Alert.Kind.DOWNLOADS,
                share_code=share_code, count=len(window), threshold=limit,
            )  # fmt: skip
            if alert:
                found.append(alert)
    return found


def scan() -> list[Alert]:
    """Read the events since the last scan and raise what they show; return new alerts."""
    raised: list[Alert] = []
    with transaction.atomic():
        cursor, _ = AlertScan.objects.get_or_create(pk=1)
        cursor = AlertScan.objects.select_for_update(of=("self",)).get(pk=1)
        events = list(
            AccessEvent.objects.filter(seq__gt=cursor.last_seq)
            .order_by("seq")
            .values_list(
                "seq", "action", "outcome", "share_code", "practice_id", "user_id",
                "patient_id", "created_at", "detail",
            )[:BATCH]
        )  # fmt: skip
        if not events:
            return raised
        downloads: dict = defaultdict(list)
        shares: dict = {}
        staff_days: dict = {}
        for seq, action, outcome, share, practice, user, patient, at, detail in events:
            if practice is None:
                continue
            if action == Action.SHARE_LOCK and share:
                alert = _raise(
                    f"lock:{share}:{seq}", practice, kind=Alert.Kind.LINK_LOCKED,
                    share_code=share, count=1,
                )  # fmt: skip
                raised += [alert] if alert else []
            if share:
                shares[share] = practice
                ok_start = outcome == Outcome.OK and (detail or {}).get("phase") == "start"
                if action == Action.DOWNLOAD and ok_start:
                    downloads[share].append(at)
            elif user and patient and _opens(action, detail):
                staff_days[(user, at.date())] = practice
        limits = {s.practice_id: s for s in ComplianceSettings.objects.all()}

        def limit(practice_id: int) -> ComplianceSettings:
            return limits.get(practice_id) or ComplianceSettings(practice_id=practice_id)

        for share, times in downloads.items():
            raised += _downloads(
                share, shares[share], times, limit(shares[share]).downloads_per_hour
            )
        for share, practice in shares.items():
            allowed = limit(practice).addresses_per_link
            addresses = (
                AccessEvent.objects.filter(share_code=share, ip_address__isnull=False)
                .order_by().values("ip_address").distinct().count()
            )  # fmt: skip
            if addresses > allowed:
                alert = _raise(
                    f"addresses:{share}", practice, kind=Alert.Kind.ADDRESSES,
                    share_code=share, count=addresses, threshold=allowed,
                )  # fmt: skip
                raised += [alert] if alert else []
        for (user, day), practice in staff_days.items():
            allowed = limit(practice).patients_per_day
            patients = (
                AccessEvent.objects.filter(
                    user_id=user, created_at__date=day, action__in=STAFF_READS,
                    share_code__isnull=True, patient__isnull=False,
                ).exclude(action=Action.ADMIN_VIEW, detail__page="list")
                .order_by().values("patient_id").distinct().count()
            )  # fmt: skip
            if patients > allowed:
                alert = _raise(
                    f"patients:{user}:{day:%Y%m%d}", practice, kind=Alert.Kind.PATIENTS,
                    user_id=user, count=patients, threshold=allowed,
                )  # fmt: skip
                raised += [alert] if alert else []
        cursor.last_seq = events[-1][0]
        cursor.save(update_fields=["last_seq"])
    return raised


def acknowledge(alert: Alert, *, by, note: str) -> None:
    """Mark an alert as looked at, with what was found."""
    from django.utils import timezone

    alert.note = note
    alert.acknowledged_by = by
    alert.acknowledged_at = timezone.now()
    alert.save(update_fields=["note", "acknowledged_by", "acknowledged_at"])
