from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from entrypoints.http import rate_limit
from entrypoints.http.rate_limit import TokenBucketLimiter, TooManyRequests


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def spend(limiter: TokenBucketLimiter, caller: str, times: int) -> None:
    for _ in range(times):
        limiter.take(caller)


def test_a_caller_may_spend_the_burst_at_once_and_then_is_told_when_to_retry() -> None:
    clock = ManualClock()
    limiter = TokenBucketLimiter(rate=2, burst=5, clock=clock)
    spend(limiter, "alice", 5)
    with pytest.raises(TooManyRequests) as refused:
        limiter.take("alice")
    assert refused.value.code == "TooManyRequests"
    assert refused.value.retry_after == 1  # half a second, rounded up to whole seconds


def test_tokens_come_back_at_the_rate_and_never_beyond_the_burst() -> None:
    clock = ManualClock()
    limiter = TokenBucketLimiter(rate=2, burst=5, clock=clock)
    spend(limiter, "alice", 5)
    clock.now += 1.0
    spend(limiter, "alice", 2)
    with pytest.raises(TooManyRequests):
        limiter.take("alice")
    clock.now += 3600
    spend(limiter, "alice", 5)
    with pytest.raises(TooManyRequests):
        limiter.take("alice")


def test_a_slow_rate_asks_for_a_longer_wait() -> None:
    clock = ManualClock()
    limiter = TokenBucketLimiter(rate=0.1, burst=1, clock=clock)
    limiter.take("alice")
    with pytest.raises(TooManyRequests) as refused:
        limiter.take("alice")
    assert refused.value.retry_after == 10
    clock.now += 10
    limiter.take("alice")


def test_each_caller_has_a_bucket_of_their_own() -> None:
    limiter = TokenBucketLimiter(rate=1, burst=3, clock=ManualClock())
    spend(limiter, "alice", 3)
    with pytest.raises(TooManyRequests):
        limiter.take("alice")
    spend(limiter, "bob", 3)


def test_a_refused_request_spends_nothing() -> None:
    clock = ManualClock()
    limiter = TokenBucketLimiter(rate=1, burst=1, clock=clock)
    limiter.take("alice")
    for _ in range(10):
        with pytest.raises(TooManyRequests):
            limiter.take("alice")
    clock.now += 1
    limiter.take("alice")


def test_many_callers_keep_memory_bounded_without_forgetting_an_active_caller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rate_limit, "MAX_TRACKED_CALLERS", 10)
    limiter = TokenBucketLimiter(rate=1, burst=2, clock=ManualClock())
    spend(limiter, "greedy", 2)
    for n in range(100):
        limiter.take(f"caller-{n}")
        with pytest.raises(TooManyRequests):
            limiter.take("greedy")
        assert len(limiter._buckets) <= 10


@given(
    rate=st.floats(0.01, 1000),
    burst=st.integers(1, 1000),
    waits=st.lists(st.floats(0, 5), max_size=50),
)
def test_no_caller_gets_more_than_the_burst_plus_what_the_rate_refills(
    rate: float, burst: int, waits: list[float]
) -> None:
    clock = ManualClock()
    limiter = TokenBucketLimiter(rate=rate, burst=burst, clock=clock)
    granted = 0
    retry_afters = []
    for wait in [0.0, *waits]:
        clock.now += wait
        while True:
            try:
                limiter.take("alice")
            except TooManyRequests as refused:
                retry_afters.append(refused.retry_after)
                break
            granted += 1
    assert granted <= burst + rate * sum(waits) + 1e-6
    assert min(retry_afters) >= 1


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 5), (1, 0)])
def test_a_limit_that_lets_nothing_through_is_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="positive rate"):
        TokenBucketLimiter(rate=rate, burst=burst)
