"""The token bucket rule, over each store of buckets: this process's memory, and the file a
server's workers share (where two limiters on one file are two workers)."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.expiring_records import InProcessRecords, SharedRecords, prepare_shared_records
from entrypoints.http.rate_limit import (
    MAX_TRACKED_CALLERS,
    BucketStore,
    TokenBucketLimiter,
    TooManyRequests,
)

Stores = Callable[[int], BucketStore]
EXAMPLES = itertools.count()


@pytest.fixture(params=["in-process", "shared"])
def stores(request: pytest.FixtureRequest) -> Iterator[Stores]:
    """Makes a store of at least the capacity given; the shared one, on one file per test."""
    if request.param == "in-process":
        yield InProcessRecords
        return
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "buckets"
        opened: list[SharedRecords] = []

        def shared(capacity: int) -> BucketStore:
            if not path.exists():
                prepare_shared_records(path, capacity)
            opened.append(SharedRecords(path, capacity))
            return opened[-1]

        yield shared
        for store in opened:
            store.close()


def limiter_on(stores: Stores, rate: float, burst: int, clock: ManualClock) -> TokenBucketLimiter:
    return TokenBucketLimiter(rate, burst, stores(MAX_TRACKED_CALLERS), clock)


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def spend(limiter: TokenBucketLimiter, caller: str, times: int) -> None:
    for _ in range(times):
        limiter.take(caller)


def test_a_caller_may_spend_the_burst_at_once_and_then_is_told_when_to_retry(
    stores: Stores,
) -> None:
    clock = ManualClock()
    limiter = limiter_on(stores, rate=2, burst=5, clock=clock)
    spend(limiter, "alice", 5)
    with pytest.raises(TooManyRequests) as refused:
        limiter.take("alice")
    assert refused.value.code == "TooManyRequests"
    assert refused.value.retry_after == 1  # half a second, rounded up to whole seconds


def test_tokens_come_back_at_the_rate_and_never_beyond_the_burst(stores: Stores) -> None:
    clock = ManualClock()
    limiter = limiter_on(stores, rate=2, burst=5, clock=clock)
    spend(limiter, "alice", 5)
    clock.now += 1.0
    spend(limiter, "alice", 2)
    with pytest.raises(TooManyRequests):
        limiter.take("alice")
    clock.now += 3600
    spend(limiter, "alice", 5)
    with pytest.raises(TooManyRequests):
        limiter.take("alice")


def test_a_slow_rate_asks_for_a_longer_wait(stores: Stores) -> None:
    clock = ManualClock()
    limiter = limiter_on(stores, rate=0.1, burst=1, clock=clock)
    limiter.take("alice")
    with pytest.raises(TooManyRequests) as refused:
        limiter.take("alice")
    assert refused.value.retry_after == 10
    clock.now += 10
    limiter.take("alice")


def test_each_caller_has_a_bucket_of_their_own(stores: Stores) -> None:
    limiter = limiter_on(stores, rate=1, burst=3, clock=ManualClock())
    spend(limiter, "alice", 3)
    with pytest.raises(TooManyRequests):
        limiter.take("alice")
    spend(limiter, "bob", 3)


def test_a_refused_request_spends_nothing(stores: Stores) -> None:
    clock = ManualClock()
    limiter = limiter_on(stores, rate=1, burst=1, clock=clock)
    limiter.take("alice")
    for _ in range(10):
        with pytest.raises(TooManyRequests):
            limiter.take("alice")
    clock.now += 1
    limiter.take("alice")


def test_many_callers_keep_memory_bounded_without_forgetting_an_active_caller(
    stores: Stores,
) -> None:
    clock = ManualClock()
    limiter = TokenBucketLimiter(rate=1, burst=2, buckets=stores(16), clock=clock)
    spend(limiter, "greedy", 2)
    for n in range(100):
        limiter.take(f"caller-{n}")
        with pytest.raises(TooManyRequests):
            limiter.take("greedy")
        clock.now += 0.01


def test_the_in_process_store_stays_within_its_capacity() -> None:
    buckets = InProcessRecords(capacity=10)
    limiter = TokenBucketLimiter(rate=1, burst=2, buckets=buckets, clock=ManualClock())
    for n in range(100):
        limiter.take(f"caller-{n}")
        assert len(buckets._records) <= 10


def test_workers_sharing_the_store_share_each_callers_budget(tmp_path: Path) -> None:
    clock = ManualClock()
    prepare_shared_records(tmp_path / "buckets", 100)
    first, second = (
        TokenBucketLimiter(1, 4, SharedRecords(tmp_path / "buckets", 100), clock) for _ in range(2)
    )
    for limiter in (first, second, first, second):
        limiter.take("alice")
    for limiter in (first, second):
        with pytest.raises(TooManyRequests):
            limiter.take("alice")


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rate=st.floats(0.01, 1000),
    burst=st.integers(1, 1000),
    waits=st.lists(st.floats(0, 5), max_size=50),
)
def test_no_caller_gets_more_than_the_burst_plus_what_the_rate_refills(
    stores: Stores, rate: float, burst: int, waits: list[float]
) -> None:
    clock = ManualClock()
    limiter = limiter_on(stores, rate=rate, burst=burst, clock=clock)
    alice = f"alice-{next(EXAMPLES)}"  # a new caller in each example, on one store
    granted = 0
    retry_afters = []
    for wait in [0.0, *waits]:
        clock.now += wait
        while True:
            try:
                limiter.take(alice)
            except TooManyRequests as refused:
                retry_afters.append(refused.retry_after)
                break
            granted += 1
    assert granted <= burst + rate * sum(waits) + 1e-6
    assert min(retry_afters) >= 1


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 5), (1, 0)])
def test_a_limit_that_lets_nothing_through_is_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="positive rate"):
        TokenBucketLimiter(rate=rate, burst=burst, buckets=InProcessRecords(10))
