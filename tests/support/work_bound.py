"""Bounds on the work a parser does with hostile input, counted rather than timed, so that they
hold on a loaded machine as on an idle one (speed itself is the bench's to measure).

``within_calls`` counts every function call, Python's and C's (struct.unpack, bytes.find...),
the parser makes, and stops it with an AssertionError the moment the count passes the budget:
a parser that lost its bound fails at once instead of looping for hours. Calls stand for work
because these parsers call something for each entry, box or field they read.

``terminates`` is for work done inside one C call (a regular expression's search), which no
count sees: it fails if the call has not returned within a deadline far beyond a linear search
of the input (seconds, against the hours a backtracking search takes), and stops it there.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any, TypeVar

_T = TypeVar("_T")

_CALL_EVENTS = frozenset({"call", "c_call"})


class WorkBoundExceeded(AssertionError):
    pass


def within_calls(budget: int, function: Callable[..., _T], *arguments: Any) -> _T:
    """``function(*arguments)``'s result, if it makes at most ``budget`` calls."""
    made = 0

    def count(frame: FrameType, event: str, argument: Any) -> None:
        nonlocal made
        if event in _CALL_EVENTS:
            made += 1
            if made > budget:
                sys.setprofile(None)
                raise WorkBoundExceeded(f"more than {budget} calls: the work is not bounded")

    sys.setprofile(count)
    try:
        return function(*arguments)
    finally:
        sys.setprofile(None)


def terminates(seconds: int, function: Callable[..., _T], *arguments: Any) -> _T:
    """``function(*arguments)``'s result, or an AssertionError if it is still running after
    ``seconds`` (a deadline for a hang, not a speed target). Main thread only (SIGALRM)."""
    assert threading.current_thread() is threading.main_thread()

    def expired(signum: int, frame: FrameType | None) -> None:
        raise WorkBoundExceeded(f"still running after {seconds} s: the work is not bounded")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        return function(*arguments)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
