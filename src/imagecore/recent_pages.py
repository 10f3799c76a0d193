"""Pages of the image list kept for reuse while the store has not changed.

The first page of the public timeline is what nearly every caller asks for, again and again,
and reading it is most of a list request's time (its index merge and row lookups). A page is
kept under the repository's revision, with the caller, the query, the position and the expiry
of the next cursor; any committed write changes the revision, so a kept page is only ever
served while it is still exactly what a new read would return."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

from imagecore.results import Page

PAGES_KEPT = 256


class RecentPages:
    """The pages read last, the least recently used going first. Each step is one dict
    operation, whole under the GIL, so threads need no lock."""

    def __init__(self, capacity: int = PAGES_KEPT) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[Hashable, Page] = OrderedDict()

    def get(self, key: Hashable) -> Page | None:
        page = self._entries.get(key)
        if page is not None:
            # A try, not contextlib.suppress: this is every hit's path, and a try costs
            # nothing until it raises (another thread evicted the entry meanwhile).
            try:  # noqa: SIM105
                self._entries.move_to_end(key)
            except KeyError:
                pass
        return page

    def put(self, key: Hashable, page: Page) -> None:
        self._entries[key] = page
        while len(self._entries) > self._capacity:
            try:
                self._entries.popitem(last=False)
            except KeyError:  # emptied by another thread meanwhile
                break
