"""Form uploads encrypted into the vault as they arrive: no plaintext temp file, no whole file
held in memory.

VaultUploadHandler takes each file part of a multipart request and feeds its chunks to
vault.seal() running in one of the process's sealing threads (seal pulls, the request parser
pushes; a small bounded queue sits between them, so memory stays at a few chunks). A file past
the handler's limit is skipped: its ciphertext is deleted and `too_large` tells the form. The
result is a SealedUpload whose StoredObject row is not saved yet: the view saves it with the
record that points at it, or calls discard() when the form is refused. If sealing fails (a
full disk, an object store that went away), the request stops at its next chunk with
NotStored, which the view turns into a clear answer; it never waits for a reader that is gone.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor

from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile

from portal.models import StoredObject
from portal.vault.blobs import discard_unsaved, seal

logger = logging.getLogger(__name__)

HEAD_BYTES = 16
_END, _ABORT = object(), object()
# How often a request waiting to hand over a chunk looks whether the reader is still there.
_PUT_WAIT = 0.1


# Files sealed at once in one process; more wait for a free thread. The threads live as long
# as the process: a thread's object-store client (boto3's, one per thread) takes longer to
# build than a small file takes to seal.
SEALERS = 64
_pool: ThreadPoolExecutor | None = None
_pool_pid = 0
_pool_lock = threading.Lock()


def _sealers() -> ThreadPoolExecutor:
    """The process's sealing threads (a forked worker starts its own)."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(SEALERS, thread_name_prefix="vault-upload")
            _pool_pid = os.getpid()
        return _pool


class _Aborted(Exception):
    pass


class NotStored(Exception):
    """A file of the form could not be sealed into the vault: nothing of it is kept."""


class _ReaderGone(Exception):
    pass


class _Pipe:
    """The read() end of a stream fed chunk by chunk from another thread.

    The reading thread sets `stopped` when it returns or fails; a feed that would otherwise
    wait for room in the queue for ever then raises _ReaderGone.
    """

    def __init__(self) -> None:
        self._chunks: queue.Queue = queue.Queue(maxsize=8)
        self._rest = b""
        self._ended = False
        self.stopped = threading.Event()

    def _put(self, item) -> None:  # noqa: ANN001
        while not self.stopped.is_set():
            try:
                self._chunks.put(item, timeout=_PUT_WAIT)
                return
            except queue.Full:
                continue
        raise _ReaderGone

    def feed(self, chunk) -> None:
        self._put(chunk)

    def end(self) -> None:
        self._put(_END)

    def abort(self) -> None:
        try:
            self._put(_ABORT)
        except _ReaderGone:
            pass  # it stopped by itself

    def read(self, size: int = -1) -> bytes:
        if not self._rest:
            if self._ended:
                return b""
            item = self._chunks.get()
            if item is _ABORT:
                raise _Aborted
            if item is _END:
                self._ended = True
                return b""
            self._rest = bytes(item)
        if size < 0 or size >= len(self._rest):
            out, self._rest = self._rest, b""
        else:
            out, self._rest = self._rest[:size], self._rest[size:]
        return out


class SealedUpload(UploadedFile):
    """An uploaded file already encrypted in the vault; `stored` is its unsaved row."""

    def __init__(self, name: str, content_type: str, size: int, head: bytes, stored) -> None:
        super().__init__(file=None, name=name, content_type=content_type, size=size)
        self.head = head
        self.stored: StoredObject = stored

    def close(self) -> None:
        """Nothing is open: the parser closes every file of a form it gives up on."""

    def discard(self) -> None:
        """Delete the ciphertext of an upload whose record is not being saved."""
        if self.stored._state.adding:
            discard_unsaved(self.stored)


class VaultUploadHandler(FileUploadHandler):
    """Encrypt every file of the request into the vault while it arrives, up to `limit`."""

    def __init__(self, request, limit: int, *, durable: bool = True) -> None:
        super().__init__(request)
        self.limit = limit
        # False for copies that last only as long as the request (nothing syncs them).
        self.durable = durable
        self.too_large = False
        self.sealed: list[SealedUpload] = []
        self._pipe: _Pipe | None = None

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self._pipe, self._received, self._head = _Pipe(), 0, b""
        self._outcome: dict = {}
        self._sealing = _sealers().submit(self._seal, self._pipe, self._outcome, self.durable)

    @staticmethod
    def _seal(pipe: _Pipe, outcome: dict, durable: bool) -> None:
        try:
            outcome["stored"] = seal(pipe, durable=durable)
        except BaseException as exc:  # noqa: BLE001 - handed to the request's thread
            outcome["error"] = exc
        finally:
            pipe.stopped.set()

    def _stop(self) -> None:
        if self._pipe is not None:
            self._pipe.abort()
            self._sealing.result()
            self._pipe = None

    def _failed(self) -> NotStored:
        """Stop after the seal failed; return what the request raises (the cause is logged)."""
        self._sealing.result()
        self._pipe = None
        error = self._outcome.get("error")
        if isinstance(error, _Aborted) or error is None:
            logger.error("upload: a file's encryption stopped short")
            return NotStored("the file's encryption stopped")
        # The type only: a message could name a path or a file.
        logger.error("upload: a file could not be stored (%s)", type(error).__name__)
        return NotStored(type(error).__name__)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self._received += len(raw_data)
        if self._received > self.limit:
            self.too_large = True
            self._stop()  # seal() deletes what it wrote when its source fails
            raise SkipFile
        if not raw_data:
            return None  # the reading side takes an empty chunk for the end of the file
        if len(self._head) < HEAD_BYTES:
            self._head += raw_data[: HEAD_BYTES - len(self._head)]
        try:
            self._pipe.feed(raw_data)
        except _ReaderGone:
            raise self._failed() from None
        return None

    def file_complete(self, file_size: int) -> SealedUpload | None:
        if self._pipe is None:
            return None
        try:
            self._pipe.end()
        except _ReaderGone:
            raise self._failed() from None
        self._sealing.result()
        self._pipe = None
        if "error" in self._outcome:
            raise self._failed()
        if self._outcome["stored"].plain_size != self._received:
            discard_unsaved(self._outcome["stored"])  # never a file cut short
            raise self._failed()
        upload = SealedUpload(
            self.file_name, self.content_type, file_size, self._head, self._outcome["stored"]
        )
        self.sealed.append(upload)
        return upload

    def upload_interrupted(self) -> None:
        self._stop()

    def discard_unsaved(self) -> None:
        """Delete the ciphertext of every file of this request whose row was not saved.

        A form the parser gave up on inside a file (a part it could not decode) leaves that
        file's encryption waiting for bytes that never come: it is stopped, its file deleted.
        """
        self._stop()
        for upload in self.sealed:
            upload.discard()
