"""Small records kept by key until they expire: one process's, or shared by a server's workers.

A record is two numbers, and the time from which it may be forgotten: past it, the record is
as if it were not there. Each store holds a bounded number; when full, it forgets first the
records that expired, then those that expire soonest. What the numbers mean, and when a record
expires, is the caller's (the rate limit's token buckets, say): a store only keeps them, and
changes one at a time, atomically.
"""

from __future__ import annotations

import math
import struct
import threading
from collections.abc import Callable
from pathlib import Path

from adapters.shared_file import SharedFile, prepare_shared_file

Record = tuple[float, float]
Change = Callable[[Record | None], tuple[Record, float]]


class InProcessRecords:
    """This process's records, at most ``capacity`` of them."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._records: dict[str, tuple[Record, float]] = {}
        self._lock = threading.Lock()

    def update(self, key: str, now: float, change: Change) -> None:
        with self._lock:
            kept = self._records.get(key)
            if kept is None and len(self._records) >= self.capacity:
                self._forget(now)
            current = kept[0] if kept is not None and kept[1] > now else None
            self._records[key] = change(current)

    def _forget(self, now: float) -> None:
        unexpired = [(key, kept) for key, kept in self._records.items() if kept[1] > now]
        if len(unexpired) >= self.capacity // 2:
            unexpired.sort(key=lambda item: item[1][1])
            unexpired = unexpired[len(unexpired) - self.capacity // 2 :]
        self._records = dict(unexpired)


WAYS = 8
"""Slots of one set: a key may live in any slot of the set its hash picks, so it is found, or
a slot is chosen for it, by reading one set (256 bytes) instead of probing the table."""
_SLOT = struct.Struct("<Q3d")  # the key's hash (0: empty), the record, when it expires
_SET = struct.Struct("<" + "Q3d" * WAYS)


def _layout(sets: int) -> bytes:
    return f"records {sets}x{WAYS}".encode()


def _sets_for(capacity: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(1, capacity) / WAYS)))


def prepare_shared_records(path: Path, capacity: int) -> None:
    """Make the file of a ``SharedRecords`` for ``capacity`` keys, before the workers start."""
    sets = _sets_for(capacity)
    prepare_shared_file(path, _layout(sets), sets * _SET.size)


class SharedRecords:
    """Records kept in a file that every worker of the server maps (see shared_file): a change
    made by one worker is the record the next worker reads. The table is a set-associative cache
    of fixed slots: a key hashes to a set of eight slots and takes a free or expired one, or else
    the one expiring soonest; at least ``capacity`` keys fit, more when their hashes spread.
    Keys are hashed with a key of the file's own, so that no one can choose ids that crowd one
    set."""

    def __init__(self, path: Path, capacity: int) -> None:
        self._sets = _sets_for(capacity)
        self._file = SharedFile(path, _layout(self._sets), self._sets * _SET.size)
        self._tags: dict[str, int] = {}  # hashing costs as much as the lock: each key once

    def update(self, key: str, now: float, change: Change) -> None:
        tag = self._tags.get(key)
        if tag is None:
            if len(self._tags) >= self._sets * WAYS:
                self._tags.clear()
            tag = self._tags[key] = self._file.hash_of(key)
        offset = (tag % self._sets) * _SET.size
        data = self._file.lock()
        try:
            slots = _SET.unpack_from(data, offset)
            tags = slots[0::4]
            current: Record | None = None
            if tag in tags:
                way = tags.index(tag)
                if slots[4 * way + 3] > now:
                    current = (slots[4 * way + 1], slots[4 * way + 2])
            else:
                expiries = slots[3::4]
                way = min(range(WAYS), key=lambda w: expiries[w] if tags[w] else -math.inf)
            record, expires = change(current)
            _SLOT.pack_into(data, offset + way * _SLOT.size, tag, record[0], record[1], expires)
        finally:
            self._file.unlock()

    def close(self) -> None:
        self._file.close()
