"""Places for uploads under way: one process's, or shared by a server's workers.

Whether one more upload may start is the caller's to say (``admit``, given how many uploads are
under way and how many of them are the uploader's); a store counts the places taken and takes
one atomically with that decision.
"""

from __future__ import annotations

import itertools
import struct
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from adapters.shared_file import Leases, SharedFile, prepare_shared_file

Admit = Callable[[int, int], None]


class InProcessPlaces:
    """This process's uploads under way."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._holders: dict[int, str] = {}
        self._by_caller: Counter[str] = Counter()

    def take(self, caller: str, admit: Admit) -> int:
        with self._lock:
            admit(len(self._holders), self._by_caller[caller])
            place = next(self._numbers)
            self._holders[place] = caller
            self._by_caller[caller] += 1
            return place

    def give_back(self, place: int) -> None:
        with self._lock:
            caller = self._holders.pop(place)
            self._by_caller[caller] -= 1
            if not self._by_caller[caller]:
                del self._by_caller[caller]


_PLACE = struct.Struct("<QQ")  # the uploader's hash, the lease of the worker holding it (0: free)


def _layout(places: int) -> bytes:
    return f"places {places}".encode()


def prepare_shared_places(path: Path, places: int) -> None:
    """Make the file of a ``SharedPlaces`` of ``places`` places, before the workers start."""
    prepare_shared_file(path, _layout(places), places * _PLACE.size)


class SharedPlaces:
    """``places`` places in a file every worker of the server maps (see shared_file), each
    marked with the uploader and the lease of the worker that took it. A worker that dies with
    uploads under way cannot give their places back: before an upload is refused, the places of
    workers whose lease is gone are freed, so a crash costs capacity only until the next
    upload that needs it. Each upload reads the whole table: with 64 places, taking one and
    giving it back costs about 8 us; with 10,000, about 0.4 ms."""

    def __init__(self, path: Path, places: int, leases: Leases) -> None:
        self._places = places
        self._table = struct.Struct(f"<{2 * places}Q")
        self._file = SharedFile(path, _layout(places), self._table.size)
        self._leases = leases

    def take(self, caller: str, admit: Admit) -> int:
        tag = self._file.hash_of(caller)
        data = self._file.lock()
        try:
            table = list(self._table.unpack_from(data))
            try:
                self._admit(table, tag, admit)
            except Exception:
                if not self._free_the_dead(table, data):
                    raise
                self._admit(table, tag, admit)
            place = table[1::2].index(0)
            _PLACE.pack_into(data, place * _PLACE.size, tag, self._leases.mine)
            return place
        finally:
            self._file.unlock()

    @staticmethod
    def _admit(table: list[int], tag: int, admit: Admit) -> None:
        taken = [caller for caller, holder in zip(table[0::2], table[1::2], strict=True) if holder]
        admit(len(taken), taken.count(tag))

    def _free_the_dead(self, table: list[int], data: memoryview) -> bool:
        """Free the places of workers that died; whether there were any."""
        dead = {holder for holder in table[1::2] if holder and not self._leases.alive(holder)}
        for place in range(self._places):
            if table[2 * place + 1] in dead:
                table[2 * place : 2 * place + 2] = [0, 0]
                _PLACE.pack_into(data, place * _PLACE.size, 0, 0)
        return bool(dead)

    def give_back(self, place: int) -> None:
        data = self._file.lock()
        try:
            _PLACE.pack_into(data, place * _PLACE.size, 0, 0)
        finally:
            self._file.unlock()

    def close(self) -> None:
        self._file.close()
