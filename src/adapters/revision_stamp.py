"""A database's revision as every process that opens it sees it, read without a system call.

Eight bytes in a small file beside the database, mapped into memory by each process that opens
it. Every committed write sets them, after its commit, to a value never used before (random
bits). A reader takes them *before* it reads the database, and may keep what it read under that
value: any write its read did not see commits after the value was taken and then replaces it,
and no value ever comes back, so a kept read is only served while no write has been committed
since it was made.

SQLite's own ``PRAGMA data_version`` tells the same for one connection, but asking costs a read
transaction's system calls (two ``fcntl`` and a ``stat``); under a multi-threaded ASGI server
each system call hands the GIL to the server's I/O threads, which made a cached metadata read
no cheaper than reading the row.

A process killed between a commit and the write of the new value leaves the old value in place
until the next write; opening the database sets a new value, so a restarted worker ends that.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from pathlib import Path

from adapters.private_paths import PRIVATE_FILE

STAMP_BYTES = 8


class RevisionStamp:
    """The revision file at ``path``, made (0o600) if there is none, mapped into this process.
    Making it a new value is part of opening it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.exists():
            _publish(path)
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
        try:
            self._map = mmap.mmap(fd, STAMP_BYTES)
        finally:
            os.close(fd)  # the mapping keeps the file; this descriptor holds no lock of SQLite's
        self.advance()

    def current(self) -> bytes:
        """The value now: a memory load."""
        return self._map[:STAMP_BYTES]

    def advance(self) -> None:
        """Set a value never used before: after every committed write."""
        self._map[:STAMP_BYTES] = os.urandom(STAMP_BYTES)


def _publish(path: Path) -> None:
    """Make the file whole under another name and link it into place, so that no process ever
    maps one shorter than a stamp (or reads the zeros of one half made); a process that lost
    the race to make it uses the winner's."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE)
    try:
        try:
            os.write(fd, os.urandom(STAMP_BYTES))
        finally:
            os.close(fd)
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
