"""Bytes for the blob store tests: random-looking patterns, the chunks a store is handed, streams
that fail part way, and a blob read back whole."""

from __future__ import annotations

import random
from collections.abc import Iterator

from imagecore.model import ByteRange
from imagecore.ports import BlobStore

MIB = 1024 * 1024


def pattern(size: int, seed: int = 0) -> bytes:
    """``size`` random bytes: a wrong slice or a reordered chunk never looks right."""
    return random.Random(seed).randbytes(size)


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def read(store: BlobStore, key: str, byte_range: ByteRange | None = None) -> bytes:
    chunks = list(store.open(key, byte_range))
    assert all(chunks), "no empty chunks"
    return b"".join(chunks)


class Interrupted(BaseException):
    """Not an Exception: what a cancelled request or Ctrl-C looks like to the store."""


def failing_after(data: bytes, error: BaseException) -> Iterator[bytes]:
    yield from chunked(data, 1000)
    raise error


def has_blob(store: BlobStore, key: str) -> bool:
    """Whether the store holds bytes under ``key``: the port's open raises KeyError for none."""
    try:
        chunks = store.open(key)
    except KeyError:
        return False
    close = getattr(chunks, "close", None)
    if close is not None:
        close()
    return True
