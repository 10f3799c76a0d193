"""Writes that lose a race to another writer read again and retry, a bounded number of times."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from imagecore.errors import Conflict, VersionConflict

WRITE_ATTEMPTS = 5

_T = TypeVar("_T")


def retry_on_conflict(
    attempt: Callable[[], _T],
    give_up: str,
    retry_on: tuple[type[Exception], ...] = (VersionConflict,),
) -> _T:
    """``attempt()``'s result; it is run again (reading afresh) while it raises one of
    ``retry_on``, up to WRITE_ATTEMPTS times in all, then Conflict(give_up)."""
    for _ in range(WRITE_ATTEMPTS):
        try:
            return attempt()
        except retry_on:
            continue
    raise Conflict(give_up)
