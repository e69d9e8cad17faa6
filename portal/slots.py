"""Heavy work under way per client, in this process: each may run only a few at once.

A viewer keeps a request or two in flight and retries a 429 a moment later; a script firing
hundreds in parallel gets 429s instead of holding every web thread. Counted per process, as
gunicorn's threads share one: a client spread over workers gets a few in each.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager


class Slots:
    def __init__(self, per_client: int) -> None:
        self.per_client = per_client
        self._held: Counter[str] = Counter()
        self._lock = threading.Lock()

    @contextmanager
    def take(self, client: str) -> Iterator[bool]:
        """Yield True holding one of the client's slots, False if it holds them all."""
        with self._lock:
            taken = self._held[client] < self.per_client
            if taken:
                self._held[client] += 1
        try:
            yield taken
        finally:
            if taken:
                with self._lock:
                    self._held[client] -= 1
                    if self._held[client] <= 0:
                        del self._held[client]
