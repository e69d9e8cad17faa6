"""HTTP plumbing for downloads: Range parsing, RFC 6266 names, and the audited byte stream."""

from __future__ import annotations

import queue
import re
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from urllib.parse import quote

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
UNSATISFIABLE = "unsatisfiable"


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """Return (start, stop) for one satisfiable byte range, UNSATISFIABLE, or None for all.

    Policy: a missing or malformed header is ignored and the whole file is sent (RFC 9110
    14.2 lets a server ignore Range). Several ranges, overlapping or not, are not served:
    the answer is 416 with the full size, so a client retries with one range.
    """
    if not header:
        return None
    header = header.strip()
    if not header.startswith("bytes="):
        return None
    if "," in header:
        specs = header[len("bytes=") :].split(",")
        if all(_RANGE.match("bytes=" + s.strip()) for s in specs):
            return UNSATISFIABLE
        return None
    match = _RANGE.match(header)
    if not match or (not match[1] and not match[2]):
        return None
    first, last = match[1], match[2]
    if len(first) > 19 or len(last) > 19:
        return None
    if first:
        start = int(first)
        stop = size if not last else int(last) + 1
        if last and int(last) < start:
            return None
        if start >= size:
            return UNSATISFIABLE
        return start, min(stop, size)
    suffix = int(last)
    if suffix == 0 or size == 0:
        return UNSATISFIABLE
    return max(0, size - suffix), size


def ascii_fallback(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^A-Za-z0-9._ -]+", "_", folded).strip(" ._") or "download"
    return cleaned[:120]


def safe_filename(name: str, default: str = "download") -> str:
    """Return a file name without path parts or control characters."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip(" .")
    return name[:150] or default


def content_disposition(name: str) -> str:
    """Return an RFC 6266 attachment header: an ASCII fallback plus the UTF-8 name."""
    name = safe_filename(name)
    fallback = ascii_fallback(name)
    header = f'attachment; filename="{fallback}"'
    if fallback != name:
        header += f"; filename*=UTF-8''{quote(name, safe='')}"
    return header


class AuditedStream:
    """Wrap response bytes: run `on_start` at the first chunk, `on_end(sent, complete)` on close.

    The WSGI server closes the iterator when the client disconnects or an error aborts the
    response, so the end is recorded whatever happens; a stream closed before its first
    chunk runs `on_abandon` instead.
    """

    def __init__(
        self,
        source: Iterable[bytes],
        *,
        on_start: Callable[[], None],
        on_end: Callable[[int, bool], None],
        on_abandon: Callable[[], None] | None = None,
    ) -> None:
        self._source = source
        self._it: Iterator[bytes] | None = None
        self._on_start = on_start
        self._on_end = on_end
        self._on_abandon = on_abandon
        self.sent = 0
        self.complete = False
        self.started = False
        self._closed = False

    def __iter__(self) -> AuditedStream:
        return self

    def __next__(self) -> bytes:
        if self._it is None:
            self.started = True
            self._on_start()
            self._it = iter(self._source)
        try:
            chunk = next(self._it)
        except StopIteration:
            self.complete = True
            raise
        self.sent += len(chunk)
        return chunk

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        closer = getattr(self._it, "close", None)
        if closer is not None:
            closer()
        if self.started:
            self._on_end(self.sent, self.complete)
        elif self._on_abandon is not None:
            self._on_abandon()


_END = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class Prefetched:
    """Iterate `source` in a helper thread, at most `depth` chunks ahead of the reader.

    Decryption holds the GIL but a socket write releases it, so the next chunk is made
    while the server sends this one. Runs of small chunks (ZIP headers and descriptors)
    are joined into one, so a write carries more than a hundred bytes. The thread starts
    at the first chunk; close() stops it and closes the source in it. An error in the
    source is raised to the reader.
    """

    SMALL = 64 * 1024

    def __init__(self, source: Iterable[bytes], depth: int = 4) -> None:
        self._source = source
        self._queue: queue.Queue[object] = queue.Queue(depth)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._done = False

    def __iter__(self) -> Prefetched:
        return self

    def __next__(self) -> bytes:
        if self._done:
            raise StopIteration
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="download-prefetch")
            self._thread.daemon = True
            self._thread.start()
        item = self._queue.get()
        if item is _END:
            self._done = True
            raise StopIteration
        if isinstance(item, _Failure):
            self._done = True
            raise item.exc
        return item  # type: ignore[return-value]

    def _put(self, item: object) -> bool:
        self._queue.put(item)
        return not self._stop.is_set()

    def _run(self) -> None:
        it = iter(self._source)
        small: list[bytes] = []
        size = 0
        try:
            for chunk in it:
                if len(chunk) < self.SMALL:
                    small.append(chunk)
                    size += len(chunk)
                    if size < self.SMALL:
                        continue
                    chunk = b"".join(small)
                    small.clear()
                    size = 0
                elif small:
                    if not self._put(b"".join(small)):
                        return
                    small.clear()
                    size = 0
                if not self._put(chunk):
                    return
            if small and not self._put(b"".join(small)):
                return
            self._put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the reader, which raises it
            self._put(_Failure(exc))
        finally:
            closer = getattr(it, "close", None)
            if closer is not None:
                closer()

    def close(self) -> None:
        """Stop the helper thread and wait until it has closed the source."""
        self._done = True
        if self._thread is None:
            closer = getattr(self._source, "close", None)
            if closer is not None:
                closer()
            return
        self._stop.set()
        # A put blocked on a full queue returns once there is room, then sees the stop.
        while self._thread.is_alive():
            try:
                while True:
                    self._queue.get_nowait()
            except queue.Empty:
                pass
            self._thread.join(0.01)
