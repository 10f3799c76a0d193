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

import mmap
import os
from pathlib import Path

from adapters.disk_full import full_disk_is_insufficient_storage
from adapters.private_paths import PRIVATE_FILE

STAMP_BYTES = 8


class RevisionStamp:
    """The revision file at ``path``, made (0o600) if there is none, mapped into this process.
    Making it a new value is part of opening it. A full disk that leaves no room to make it
    is InsufficientStorage."""

    @full_disk_is_insufficient_storage()
    def __init__(self, path: Path) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, PRIVATE_FILE)
        try:
            if os.fstat(fd).st_size < STAMP_BYTES:  # new, or made short by hand
                # Written, not only mapped: a mapped page with no block on a full disk would
                # kill the process with SIGBUS when first written. Two processes that both
                # find it short each write a value of their own: either is a new one.
                os.pwrite(fd, os.urandom(STAMP_BYTES), 0)
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
