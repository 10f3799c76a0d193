"""The embedded server's per-caller request rate limit: one token bucket per caller.

A bucket holds up to ``burst`` tokens and refills at ``rate`` tokens a second; each request
takes one. A caller with an empty bucket is told how long until the next token. On AWS, API
Gateway's stage throttling does this job instead.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

import attrs

from imagecore.errors import ImageCoreError

MAX_TRACKED_CALLERS = 100_000
"""Beyond this many buckets, full ones are dropped (a full bucket is the same as none), then,
if need be, those of the callers seen least recently."""


class TooManyRequests(ImageCoreError):
    code = "TooManyRequests"

    def __init__(self, retry_after: int, why: str = "too many requests") -> None:
        super().__init__(f"{why}: try again in {retry_after} s")
        self.retry_after = retry_after


@attrs.define
class _Bucket:
    tokens: float
    updated: float


class TokenBucketLimiter:
    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limit needs a positive rate and a burst of at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, caller: str) -> None:
        """Spend one of ``caller``'s tokens, or raise TooManyRequests saying when to retry."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(caller)
            if bucket is None:
                if len(self._buckets) >= MAX_TRACKED_CALLERS:
                    self._forget(now)
                bucket = self._buckets[caller] = _Bucket(float(self.burst), now)
            self._buckets.move_to_end(caller)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens < 1:
                raise TooManyRequests(max(1, math.ceil((1 - bucket.tokens) / self.rate)))
            bucket.tokens -= 1

    def _forget(self, now: float) -> None:
        self._buckets = OrderedDict(
            (caller, bucket)
            for caller, bucket in self._buckets.items()
            if bucket.tokens + (now - bucket.updated) * self.rate < self.burst
        )
        while len(self._buckets) >= MAX_TRACKED_CALLERS // 2:
            self._buckets.popitem(last=False)
