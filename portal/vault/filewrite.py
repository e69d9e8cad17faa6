"""Writing a new ciphertext file past the page cache (O_DIRECT), where the file system allows.

A buffered write copies every byte into fresh page-cache pages. On a virtual machine whose
host takes free memory back (free page reporting, ballooning), each fresh page costs a fault
on the host as well: writing a 500 KB object cost the receiver about 1 ms of system time,
a quarter of its CPU per instance, and a burst of studies also evicts what the viewer had
cached. Here the ciphertext is gathered in a reused, page-aligned buffer and written with
O_DIRECT, straight from that buffer to the device; only the last partial block goes through
the page cache. File systems without O_DIRECT (tmpfs, some network mounts) get plain writes.
Durability is unchanged: the caller still syncs the file (device cache and metadata).
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import threading

from portal.vault import crypto

O_DIRECT = getattr(os, "O_DIRECT", 0)
BLOCK = 4096
# Room for an object's header and one sealed segment, so a one-segment object (most DICOM
# instances) is one write.
BUFFER_SIZE = -(-(crypto.HEADER_SIZE + crypto.SEGMENT_SIZE + crypto.TAG_SIZE) // BLOCK) * BLOCK
# Buffers kept for reuse: a fresh one costs the page faults this module avoids.
POOL_SIZE = 16

_pool: list[mmap.mmap] = []
_pool_lock = threading.Lock()


def _take_buffer() -> mmap.mmap:
    with _pool_lock:
        if _pool:
            return _pool.pop()
    # Anonymous mappings are page-aligned; private, so a forked worker never shares one.
    return mmap.mmap(-1, BUFFER_SIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)


def _forget_pool() -> None:
    """In a forked child: start with no buffers of the parent's (nor its lock's state)."""
    global _pool_lock
    _pool.clear()
    _pool_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _give_back(buffer: mmap.mmap) -> None:
    with _pool_lock:
        if len(_pool) < POOL_SIZE:
            _pool.append(buffer)
            return
    buffer.close()


def open_new(path: str) -> int:
    """Create path (it must not exist) for writing, with O_DIRECT if the file system has it.

    O_DIRECT is set after the file is made: some file systems create the file and then
    refuse the flag, and a second O_EXCL open would find it there.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    if O_DIRECT:
        try:
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | O_DIRECT)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                os.close(fd)
                raise
    return fd


class NewFileWriter:
    """write() bytes to a file opened by open_new(), finish(), then release() in any case.

    Whole blocks go out with O_DIRECT whenever the buffer fills, the rest at the end.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.direct = bool(O_DIRECT) and bool(fcntl.fcntl(fd, fcntl.F_GETFL) & O_DIRECT)
        self._buffer: mmap.mmap | None = _take_buffer() if self.direct else None
        self._filled = 0

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        if self._buffer is None:
            _write_all(self.fd, view)
            return
        while view:
            room = BUFFER_SIZE - self._filled
            n = min(room, len(view))
            self._buffer[self._filled : self._filled + n] = view[:n]
            self._filled += n
            view = view[n:]
            if self._filled == BUFFER_SIZE:
                self._flush(BUFFER_SIZE)

    def _flush(self, upto: int) -> None:
        """Write the buffer's first `upto` bytes (whole blocks) with O_DIRECT."""
        with memoryview(self._buffer) as whole:
            rest = whole[:upto]
            try:
                while rest:
                    try:
                        rest = rest[os.write(self.fd, rest) :]
                    except OSError as exc:
                        if exc.errno != errno.EINVAL or not self.direct:
                            raise
                        # Refused on write (or after a short write, unaligned): the rest
                        # goes through the page cache, from where the file has got to.
                        self._plain()
            finally:
                rest.release()
        self._filled = 0

    def _plain(self) -> None:
        flags = fcntl.fcntl(self.fd, fcntl.F_GETFL)
        fcntl.fcntl(self.fd, fcntl.F_SETFL, flags & ~O_DIRECT)
        self.direct = False

    def finish(self) -> None:
        """Write what is left: whole blocks directly, the last partial block buffered."""
        if self._buffer is None:
            return
        whole = self._filled - self._filled % BLOCK
        tail = self._buffer[whole : self._filled]
        if whole:
            self._flush(whole)
        self._filled = 0
        if tail:
            if self.direct:
                self._plain()
            _write_all(self.fd, tail)

    def release(self) -> None:
        """Give the buffer back for the next file (after finish(), or on failure)."""
        buffer, self._buffer = self._buffer, None
        if buffer is not None:
            _give_back(buffer)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
