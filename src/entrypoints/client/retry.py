"""When the client tries a request again, and how long it waits first.

Two kinds of trouble are worth another try: the server saying "not now" (429 Too Many Requests,
503 Service Unavailable, each with ``Retry-After``), and no answer at all (the connection was
refused, cut or timed out). Both are bounded: a request is tried a fixed number of times and
waits a fixed total at most, so a server that stays down or busy ends the command instead of
hanging it.

Waits are shared: when the server tells one request to come back later, every thread of the
client holds off until then (``Throttle``), because the limit is the caller's, not the
request's. Each wait gets some jitter, so that the threads (and other clients) do not all come
back in the same millisecond and empty the server's bucket again at once.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import attrs

RETRIED_STATUSES = frozenset({429, 503})


@attrs.frozen
class RetryPolicy:
    """How often one request is tried, and how long it may wait between tries in all."""

    busy_attempts: int = 10
    """Tries of one request the server answers 429 or 503, the first included."""
    connection_attempts: int = 5
    """Tries of one request that gets no answer, the first included."""
    max_total_wait: float = 120.0
    """Seconds one request may spend waiting to be tried again, in all."""
    backoff: float = 0.5
    """The wait after the first try without an answer; each further one doubles it."""
    max_backoff: float = 8.0
    max_retry_after: float = 60.0
    """A longer Retry-After is not waited for: the request fails, saying when to try."""

    def backoff_delay(self, retry: int, rng: random.Random) -> float:
        """The wait before retry number ``retry`` (0 the first) of a request without an answer:
        exponential, with "equal jitter" (between half of it and all of it)."""
        ceiling = min(self.max_backoff, self.backoff * 2**retry)
        return rng.uniform(ceiling / 2, ceiling)

    def busy_delay(self, retry: int, retry_after: float | None, rng: random.Random) -> float:
        """The wait before retry ``retry`` of a request the server was too busy for: what
        Retry-After asked (or the backoff when it asked nothing, or less), plus up to a fifth
        more so that threads told the same do not come back together."""
        wait = max(retry_after or 0.0, self.backoff_delay(retry, rng))
        return wait + rng.uniform(0, 0.2 * wait)


def retry_after_seconds(header: str | None) -> float | None:
    """``Retry-After`` as seconds from now; None when absent or not a number of seconds (the
    HTTP-date form is not sent by imagecore or API Gateway)."""
    if header is None:
        return None
    try:
        seconds = float(header.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


class Throttle:
    """A moment before which no request of this client is sent: the latest a server's
    Retry-After named. Shared by the client's threads."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._not_before = 0.0
        self._lock = threading.Lock()

    def hold_off(self, seconds: float) -> None:
        with self._lock:
            self._not_before = max(self._not_before, self._clock() + seconds)

    def wait(self) -> float:
        """Sleep until requests may go again; the seconds slept."""
        slept = 0.0
        while True:
            with self._lock:
                remaining = self._not_before - self._clock()
            if remaining <= 0:
                return slept
            self._sleep(remaining)
            slept += remaining
