"""A full disk, however a write learns of it, as the one error the API answers 507 for.

Apply these where the writes happen (around a method, as decorators, or around a block): the
write's own cleanup runs first, inside, and only the error that leaves it is translated.
"""

from __future__ import annotations

import contextlib
import errno
import sqlite3
from collections.abc import Iterator

from imagecore.errors import InsufficientStorage

FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
"""What a write returns when the filesystem, or the user's quota on it, has no room left."""

MESSAGE = "the server's storage is full: deleting images makes room"


def is_full(error: OSError) -> bool:
    return error.errno in FULL_ERRNOS


@contextlib.contextmanager
def full_disk_is_insufficient_storage() -> Iterator[None]:
    """ENOSPC and EDQUOT become InsufficientStorage; any other error passes unchanged."""
    try:
        yield
    except OSError as exc:
        if not is_full(exc):
            raise
        raise InsufficientStorage(MESSAGE) from exc


@contextlib.contextmanager
def full_database_is_insufficient_storage() -> Iterator[None]:
    """SQLITE_FULL (SQLite's ENOSPC and EDQUOT) becomes InsufficientStorage; any other error
    passes unchanged."""
    try:
        yield
    except sqlite3.Error as exc:
        # The low byte is the primary code, whatever extended code SQLite gave.
        if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_FULL:
            raise
        raise InsufficientStorage(MESSAGE) from exc
