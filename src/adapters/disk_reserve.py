"""Room set aside on the data dir's disk, so that a delete can still commit when it is full.

SQLite needs a little free space to commit anything, a delete's tombstone included, and a
delete is the one way the API can give a full disk room back. So the server keeps a file of a
few MiB allocated in its data dir. A write that takes space (new bytes, new or changed
metadata) goes ahead only while that file is whole, so it can never eat into it; a write that
frees space (a delete's tombstone and erase) may release it when the disk is full, and commit
in the room it leaves. The next write that takes space makes the reserve whole again first,
once the disk has room for it, and is refused with InsufficientStorage until then.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from adapters.disk_full import MESSAGE, is_full
from adapters.private_paths import PRIVATE_FILE
from imagecore.errors import InsufficientStorage

RESERVE_FILE = "disk-reserve"
DEFAULT_RESERVE_BYTES = 4 * 1024 * 1024
"""Far more than a delete's commits need: a few pages of SQLite's write-ahead log each, and
room for the checkpoint a commit may start (it copies at most 1,000 pages into the database)."""

LOW_SPACE_BYTES = 1024 * 1024
"""Below this much free space beside the reserve, the disk counts as full."""

_ZEROS = bytes(64 * 1024)


def _allocate(fd: int, size: int) -> None:
    """Give the file ``size`` bytes of disk, really taken (a sparse file would hold none)."""
    try:
        os.posix_fallocate(fd, 0, size)
        return
    except AttributeError:  # not on macOS
        pass
    except OSError as exc:  # a filesystem that cannot (musl does not emulate it as glibc does)
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise
    written = os.fstat(fd).st_size
    while written < size:
        written += os.pwrite(fd, _ZEROS[: size - written], written)
    os.fsync(fd)


class DiskReserve:
    """The ``StorageSpace`` port on a local disk, and the reserve the SQLite repository and the
    blob store of one data dir share.

    Writes that take space hold ``taking_space()``; writes that free it hold
    ``spent_if_full()``. The two exclude each other within this process, so no write that takes
    space can have the reserve's room while it is released."""

    def __init__(self, path: Path, size: int = DEFAULT_RESERVE_BYTES) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE)
        with self._lock:
            # On a disk already full this fails: /health says so, and writes wait for room.
            self._make_whole()

    def close(self) -> None:
        os.close(self._fd)

    def _make_whole(self) -> bool:
        """Whether the reserve is whole, allocating it first if it is not; called locked. The
        file's size says it, not a flag, so a release by another process (reconcile) shows."""
        if os.fstat(self._fd).st_size >= self._size:
            return True
        try:
            _allocate(self._fd, self._size)
        except OSError as exc:
            if not is_full(exc):
                raise
            return False
        return True

    @contextlib.contextmanager
    def taking_space(self) -> Iterator[None]:
        """Hold while a write takes space: raises InsufficientStorage unless the reserve is
        whole (made whole first if the disk has room), and keeps it whole until the block ends.
        """
        with self._lock:
            if not self._make_whole():
                raise InsufficientStorage(MESSAGE)
            yield

    @contextlib.contextmanager
    def spent_if_full(self) -> Iterator[None]:
        """Hold while a write that frees space (a delete's) commits: when the disk is full,
        the reserve's room is released for it. No write that takes space runs in this process
        until the block ends, and the next one makes the reserve whole again first."""
        with self._lock:
            if self._free_bytes() < LOW_SPACE_BYTES:
                os.ftruncate(self._fd, 0)
            yield

    def has_room(self) -> bool:
        """Whether new images can be written: the reserve is whole (or could be made so now)
        and at least ``LOW_SPACE_BYTES`` are free beside it."""
        with self._lock:
            if not self._make_whole():
                return False
        return self._free_bytes() >= LOW_SPACE_BYTES

    def _free_bytes(self) -> int:
        """Free space on the reserve's disk, as an unprivileged user may use it (quotas are
        not seen here), the reserve's own room not counted while it is whole."""
        space = os.fstatvfs(self._fd)
        return space.f_bavail * space.f_frsize
