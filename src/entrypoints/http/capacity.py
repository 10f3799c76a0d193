"""How much upload work the server takes on at once, so uploads can never crowd out the rest.

An upload in flight costs a piece of memory and a temporary file while its body arrives, and a
worker thread only while a received piece is written; those threads are a pool of their own, so
reads, edits, deletes and the health check always find threads that uploads cannot take.

The limits hold for the server as a whole: its workers count their places in one table
(``UploadPlaces``), rather than each taking a share of them. A user's uploads may all arrive at
one worker (one keep-alive connection does that), and a share would refuse them at a fraction
of the documented limit; one table costs about 8 us an upload (against 2.5 us in a process's
own memory), on requests that take milliseconds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Protocol, TypeVar

import anyio
import anyio.to_thread

from entrypoints.http.rate_limit import TooManyRequests
from imagecore.errors import ImageCoreError

_T = TypeVar("_T")

UPLOAD_WORKER_THREADS = 8
"""Threads that write the pieces of uploads: more would only queue on the disk or the network."""
RETRY_AFTER_SECONDS = 1


class ServiceUnavailable(ImageCoreError):
    """The server has as much of this work under way as it takes: try again shortly."""

    code = "ServiceUnavailable"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UploadPlaces(Protocol):
    """Where the places of uploads under way are counted: this process's memory, or a table the
    server's workers share, so that the limits hold for the server as a whole."""

    def take(self, caller: str, admit: Callable[[int, int], None]) -> int:
        """A place for one of ``caller``'s uploads, unless ``admit`` raises when given how many
        uploads are under way and how many of them are ``caller``'s; atomically. Returns the
        place, to give back once the upload is over."""
        ...

    def give_back(self, place: int) -> None: ...


class UploadCapacity:
    """At most ``total`` uploads in flight, and ``per_caller`` of any one caller's: one caller
    can never hold every place, however slowly its bodies arrive. ``places`` counts them."""

    def __init__(self, total: int, per_caller: int, places: UploadPlaces) -> None:
        if total < 1 or per_caller < 1:
            raise ValueError("the upload capacity must be at least 1, in all and per caller")
        self.total = total
        self.per_caller = per_caller
        self._places = places
        self._limiter: anyio.CapacityLimiter | None = None

    @contextlib.contextmanager
    def place(self, caller: str) -> Iterator[None]:
        """A place for one upload of ``caller``'s while the block runs. TooManyRequests when the
        caller has ``per_caller`` uploads in flight already, ServiceUnavailable when the server
        has ``total``; both say when to try again."""
        place = self._places.take(caller, self._admit)
        try:
            yield
        finally:
            self._places.give_back(place)

    def _admit(self, in_flight: int, callers_in_flight: int) -> None:
        if callers_in_flight >= self.per_caller:
            raise TooManyRequests(
                RETRY_AFTER_SECONDS, f"you have {self.per_caller} uploads under way already"
            )
        if in_flight >= self.total:
            raise ServiceUnavailable(
                f"the server has {self.total} uploads under way, as many as it takes: "
                f"try again in {RETRY_AFTER_SECONDS} s",
                RETRY_AFTER_SECONDS,
            )

    async def run(self, work: Callable[..., _T], *arguments: object) -> _T:
        """``work`` in one of the upload worker threads, never in the pool of everything else."""
        if self._limiter is None:  # made on the event loop, which anyio's limiters belong to
            self._limiter = anyio.CapacityLimiter(UPLOAD_WORKER_THREADS)
        return await anyio.to_thread.run_sync(work, *arguments, limiter=self._limiter)
