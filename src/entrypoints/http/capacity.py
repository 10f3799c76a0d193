"""How much upload work the server takes on at once, so uploads can never crowd out the rest.

An upload in flight costs a piece of memory and a temporary file while its body arrives, and a
worker thread only while a received piece is written; those threads are a pool of their own, so
reads, edits, deletes and the health check always find threads that uploads cannot take.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TypeVar

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


class UploadCapacity:
    """At most ``total`` uploads in flight, and ``per_caller`` of any one caller's: one caller
    can never hold every place, however slowly its bodies arrive."""

    def __init__(self, total: int, per_caller: int) -> None:
        if total < 1 or per_caller < 1:
            raise ValueError("the upload capacity must be at least 1, in all and per caller")
        self.total = total
        self.per_caller = per_caller
        self._lock = threading.Lock()
        self._in_flight = 0
        self._by_caller: Counter[str] = Counter()
        self._limiter: anyio.CapacityLimiter | None = None

    @contextlib.contextmanager
    def place(self, caller: str) -> Iterator[None]:
        """A place for one upload of ``caller``'s while the block runs. TooManyRequests when the
        caller has ``per_caller`` uploads in flight already, ServiceUnavailable when the server
        has ``total``; both say when to try again."""
        with self._lock:
            if self._by_caller[caller] >= self.per_caller:
                raise TooManyRequests(
                    RETRY_AFTER_SECONDS, f"you have {self.per_caller} uploads under way already"
                )
            if self._in_flight >= self.total:
                raise ServiceUnavailable(
                    f"the server has {self.total} uploads under way, as many as it takes: "
                    f"try again in {RETRY_AFTER_SECONDS} s",
                    RETRY_AFTER_SECONDS,
                )
            self._in_flight += 1
            self._by_caller[caller] += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
                self._by_caller[caller] -= 1
                if not self._by_caller[caller]:
                    del self._by_caller[caller]

    async def run(self, work: Callable[..., _T], *arguments: object) -> _T:
        """``work`` in one of the upload worker threads, never in the pool of everything else."""
        if self._limiter is None:  # made on the event loop, which anyio's limiters belong to
            self._limiter = anyio.CapacityLimiter(UPLOAD_WORKER_THREADS)
        return await anyio.to_thread.run_sync(work, *arguments, limiter=self._limiter)
