"""The embedded server's per-caller request rate limit: one token bucket per caller.

A bucket holds up to ``burst`` tokens and refills at ``rate`` tokens a second; each request
takes one. A caller with an empty bucket is told how long until the next token. On AWS, API
Gateway's stage throttling does this job instead.

`imagecore serve` runs several worker processes, and a caller's budget must be one whichever
worker takes the request, so the buckets are kept where every worker sees them
(``BucketStore``). Two stores were measured, per request (``take``, 20 callers, one process;
then two processes taking at once on the 2 cores):

- this process's memory (the API Lambda's, the memory backend's one worker): 1.0 us; 1.2 us;
- a table in a file every worker maps, changed under ``flock`` (adapters.expiring_records):
  3.5 to 5 us; 9 us;
- a SQLite table (WAL, synchronous=OFF, one ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``):
  13 to 20 us; 16 to 39 us, and a writer that finds the database locked sleeps in SQLite's
  busy handler for a millisecond or more, on the event loop.

The mapped file is the workers' store. Through the whole app (GET /images/{id}, one process,
no network) a request took 27.6 us with the buckets in memory and 31.7 us with the mapped
file; served by granian with 2 workers under wrk (medians of 5 runs, on 2 cores shared with
other work), 11,400 and 11,200 req/s, 120 and 131 us of server CPU a request, beside a ceiling
of 20,400 req/s for granian + Starlette alone. SQLite would cost three to five times as much,
and stall the event loop under contention. What the file keeps is not worth more: it is made
afresh when the server starts, and never synced.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol

from imagecore.errors import ImageCoreError

MAX_TRACKED_CALLERS = 100_000
"""Buckets a store keeps at least; beyond, full ones are forgotten (a full bucket is the same as
none), then, if need be, those closest to full."""


class TooManyRequests(ImageCoreError):
    code = "TooManyRequests"

    def __init__(self, retry_after: int, why: str = "too many requests") -> None:
        super().__init__(f"{why}: try again in {retry_after} s")
        self.retry_after = retry_after


Bucket = tuple[float, float]
"""A caller's tokens, and when they were counted."""


class BucketStore(Protocol):
    """Where the buckets are kept: this process's memory, or a table the server's workers share,
    so that a caller's budget is one whichever worker takes the request."""

    def update(
        self, key: str, now: float, change: Callable[[Bucket | None], tuple[Bucket, float]]
    ) -> None:
        """Replace ``key``'s bucket, atomically, by the first of what ``change`` returns for it
        (None if the store has none, or it expired at ``now`` or before). The second is when
        the new one expires: from then on it may be forgotten. A store keeps a bounded number,
        forgetting first those that expire soonest."""
        ...


class TokenBucketLimiter:
    def __init__(
        self,
        rate: float,
        burst: int,
        buckets: BucketStore,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock`` must be one every process of the server reads alike, as the system-wide
        monotonic clock is (CLOCK_MONOTONIC: since boot, the same in every process)."""
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limit needs a positive rate and a burst of at least 1")
        self.rate = rate
        self.burst = burst
        self._buckets = buckets
        self._clock = clock

    def take(self, caller: str) -> None:
        """Spend one of ``caller``'s tokens, or raise TooManyRequests saying when to retry."""
        now = self._clock()
        short: list[float] = []

        def spend(bucket: Bucket | None) -> tuple[Bucket, float]:
            tokens, updated = bucket if bucket is not None else (float(self.burst), now)
            tokens = min(self.burst, tokens + (now - updated) * self.rate)
            if tokens < 1:
                short.append(1 - tokens)
            else:
                tokens -= 1
            # A full bucket is the same as none: from then on it may be forgotten.
            return (tokens, now), now + (self.burst - tokens) / self.rate

        self._buckets.update(caller, now, spend)
        if short:
            raise TooManyRequests(max(1, math.ceil(short[0] / self.rate)))
