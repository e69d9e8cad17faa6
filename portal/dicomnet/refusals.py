"""Refused associations, recorded without letting a stranger flood the access history.

The first refusal of an address for a reason, to one called AE title (one practice), in
each minute is recorded (and logged) as it happens; the repeats are counted and recorded as
one line with their number, with the next refusal told or, if none comes, a minute later.
A thousand refusals are two rows, and none goes uncounted.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from django.db import connection

import audit
from audit.models import Action, Outcome

logger = logging.getLogger("portal.dicomnet.receiver")

# Refusals of one address for one reason are recorded at most once this often.
EVERY_SECONDS = 60.0


@dataclass
class _Key:
    told_at: float
    untold: int = 0
    last: dict[str, Any] = field(default_factory=dict)  # the latest refusal's particulars


class Refusals:
    def __init__(self, every: float = EVERY_SECONDS) -> None:
        self.every = every
        self._lock = threading.Lock()
        self._keys: dict[tuple[str | None, str, str], _Key] = {}  # address, reason, called
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def refused(self, practice, called: str, calling: str, address: str | None, reason: str):  # noqa: ANN001, ANN201
        """Record one refusal now, or count it for the next line."""
        last = {"practice": practice, "called": called, "calling": calling}
        now = time.monotonic()
        name = (address, reason, called)
        with self._lock:
            key = self._keys.get(name)
            if key is not None and now - key.told_at < self.every:
                key.untold += 1
                key.last = last
                return
            untold = key.untold if key is not None else 0
            if len(self._keys) > 10_000:  # many addresses: forget the quiet ones
                self._keys = {k: v for k, v in self._keys.items() if not self._quiet(v, now)}
            self._keys[name] = _Key(now)
        self._record(address, reason, last, untold)

    def _quiet(self, key: _Key, now: float) -> bool:
        return not key.untold and now - key.told_at >= self.every

    def flush(self) -> int:
        """Record the repeats counted and not yet told; return how many lines."""
        now = time.monotonic()
        with self._lock:
            due = [(k, v.untold, v.last) for k, v in self._keys.items() if v.untold]
            for k, _, _ in due:
                self._keys[k] = _Key(now)
        try:
            for (address, reason, _), untold, last in due:
                self._record(address, reason, last, untold, repeats_only=True)
        finally:
            connection.close()
        return len(due)

    def _record(self, address, reason, last, untold, repeats_only=False) -> None:  # noqa: ANN001
        if repeats_only:
            logger.warning("dicom receiver: refused %d more from %s: %s", untold, address, reason)
        else:
            logger.warning(
                "dicom receiver: refused %s -> %s from %s: %s%s", last["calling"],
                last["called"], address, reason,
                f" (and {untold} more since the last line)" if untold else "",
            )  # fmt: skip
        detail = {
            "via": "dicom", "calling_ae": last["calling"], "called_ae": last["called"],
            "reason": reason,
        }  # fmt: skip
        if untold:
            detail["repeated"] = untold
        practice = last["practice"]
        audit.record(
            Action.ACCESS_DENIED,
            request=SimpleNamespace(META={"REMOTE_ADDR": address or ""}),
            practice=practice,
            outcome=Outcome.DENIED,
            detail=detail,
        )

    # -- the minute's flush, while the receiver runs ---------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._stopped.clear()
            self._thread = threading.Thread(target=self._run, name="DicomRefusals", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(self.every):
            try:
                self.flush()
            except Exception as exc:  # noqa: BLE001 - the next minute tries again
                logger.error("dicom receiver: refusals not recorded: %s", type(exc).__name__)

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self.flush()
