"""Reads kept for reuse while the store has not changed.

The first page of the public timeline is what nearly every caller asks for, again and again,
and reading it is most of a list request's time (its index merge and row lookups); an image
shown in a feed is read by every viewer. A read is kept under the repository's revision, read
before it (ImageRepository.revision), with what names it (for a page: the caller, the query,
the position and the expiry of the next cursor; for an image: its id); any committed write
changes the revision, so a kept read is only ever served while it is still exactly what a new
read would return."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

PAGES_KEPT = 256
IMAGES_KEPT = 4096
"""An image is a few kilobytes in memory: a few megabytes per worker."""

V = TypeVar("V")


class RecentReads(Generic[V]):
    """The reads made last, the least recently used going first. Each step is one dict
    operation, whole under the GIL, so threads need no lock."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[Hashable, V] = OrderedDict()

    def get(self, key: Hashable) -> V | None:
        value = self._entries.get(key)
        if value is not None:
            # A try, not contextlib.suppress: this is every hit's path, and a try costs
            # nothing until it raises (another thread evicted the entry meanwhile).
            try:  # noqa: SIM105
                self._entries.move_to_end(key)
            except KeyError:
                pass
        return value

    def put(self, key: Hashable, value: V) -> None:
        self._entries[key] = value
        while len(self._entries) > self._capacity:
            try:
                self._entries.popitem(last=False)
            except KeyError:  # emptied by another thread meanwhile
                break
