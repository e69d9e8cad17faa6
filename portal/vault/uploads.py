"""Form uploads encrypted into the vault as they arrive: no plaintext temp file, no whole file
held in memory.

VaultUploadHandler takes each file part of a multipart request and feeds its chunks to
vault.seal() running in a helper thread (seal pulls, the request parser pushes; a small
bounded queue sits between them, so memory stays at a few chunks). A file past the handler's
limit is skipped: its ciphertext is deleted and `too_large` tells the form. The result is a
SealedUpload whose StoredObject row is not saved yet: the view saves it with the record that
points at it, or calls discard() when the form is refused.
"""

from __future__ import annotations

import queue
import threading

from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile

from portal.models import StoredObject
from portal.vault.blobs import discard_unsaved, seal

HEAD_BYTES = 16
_END, _ABORT = object(), object()


class _Aborted(Exception):
    pass


class _Pipe:
    """The read() end of a stream fed chunk by chunk from another thread."""

    def __init__(self) -> None:
        self._chunks: queue.Queue = queue.Queue(maxsize=8)
        self._rest = b""
        self._ended = False

    def feed(self, chunk) -> None:
        self._chunks.put(chunk)

    def end(self) -> None:
        self._chunks.put(_END)

    def abort(self) -> None:
        self._chunks.put(_ABORT)

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

    def __init__(self, request, limit: int) -> None:
        super().__init__(request)
        self.limit = limit
        self.too_large = False
        self.sealed: list[SealedUpload] = []
        self._pipe: _Pipe | None = None

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self._pipe, self._received, self._head = _Pipe(), 0, b""
        self._outcome: dict = {}
        self._thread = threading.Thread(target=self._seal, args=(self._pipe, self._outcome))
        self._thread.start()

    @staticmethod
    def _seal(pipe: _Pipe, outcome: dict) -> None:
        try:
            outcome["stored"] = seal(pipe)
        except BaseException as exc:  # noqa: BLE001 - handed to the request's thread
            outcome["error"] = exc

    def _stop(self) -> None:
        if self._pipe is not None:
            self._pipe.abort()
            self._thread.join()
            self._pipe = None

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self._received += len(raw_data)
        if self._received > self.limit:
            self.too_large = True
            self._stop()  # seal() deletes what it wrote when its source fails
            raise SkipFile
        if len(self._head) < HEAD_BYTES:
            self._head += raw_data[: HEAD_BYTES - len(self._head)]
        self._pipe.feed(raw_data)
        return None

    def file_complete(self, file_size: int) -> SealedUpload | None:
        if self._pipe is None:
            return None
        self._pipe.end()
        self._thread.join()
        self._pipe = None
        if "error" in self._outcome:
            raise self._outcome["error"]
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
