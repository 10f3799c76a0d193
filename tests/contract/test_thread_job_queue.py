"""ThreadPoolJobQueue: the embedded server's jobs run in the background, are retried, and are
shared out fairly among the users who queued them."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from adapters.thread_jobs import ThreadPoolJobQueue
from imagecore.model import THUMBNAIL_JOB, Job

WAIT = 30  # seconds a test waits for the queue before it fails; never a measurement


class GatedHandler:
    """Records the jobs it is given in order; the first one waits until the test opens the gate,
    so the test can queue everything else behind it first."""

    def __init__(self, failures: dict[str, int] | None = None) -> None:
        self.order: list[str] = []
        self.finals: list[bool] = []
        self.gate = threading.Event()
        self.failures = dict(failures or {})

    def __call__(self, job: Job, final_attempt: bool) -> None:
        if not self.order:
            assert self.gate.wait(WAIT), "the test never opened the gate"
        self.order.append(job.image_id)
        self.finals.append(final_attempt)
        if self.failures.get(job.image_id, 0) > 0:
            self.failures[job.image_id] -= 1
            raise OSError("cannot decode")


@pytest.fixture
def handler() -> GatedHandler:
    return GatedHandler()


@pytest.fixture
def one_worker(handler: GatedHandler) -> Iterator[ThreadPoolJobQueue]:
    queue = ThreadPoolJobQueue(workers=1, attempts=3, retry_delay=0)
    queue.serve(handler)
    yield queue
    queue.close()


def job(image_id: str, user_id: str | None) -> Job:
    return Job(THUMBNAIL_JOB, image_id, user_id=user_id)


def test_another_users_job_is_taken_before_the_rest_of_a_first_users_twenty(
    one_worker: ThreadPoolJobQueue, handler: GatedHandler
) -> None:
    for number in range(1, 21):
        one_worker.enqueue(job(f"alice-{number}", "alice"))
    one_worker.enqueue(job("bob-1", "bob"))

    handler.gate.set()
    assert one_worker.join(WAIT)

    assert handler.order[:3] == ["alice-1", "bob-1", "alice-2"]
    assert handler.order[2:] == [f"alice-{number}" for number in range(2, 21)]


def test_owners_take_turns_each_in_the_order_they_queued(
    one_worker: ThreadPoolJobQueue, handler: GatedHandler
) -> None:
    one_worker.enqueue(job("alice-1", "alice"))
    for owner in ("alice", "bob", "carol"):
        for number in range(2, 5):
            one_worker.enqueue(job(f"{owner}-{number}", owner))
    one_worker.enqueue(job("old-message", None))  # a job queued before jobs named their owner

    handler.gate.set()
    assert one_worker.join(WAIT)

    assert handler.order == [
        "alice-1",
        "bob-2",
        "carol-2",
        "old-message",
        "alice-2",
        "bob-3",
        "carol-3",
        "alice-3",
        "bob-4",
        "carol-4",
        "alice-4",
    ]


def test_a_free_worker_goes_to_the_owner_with_fewer_jobs_running() -> None:
    """Two workers, one on each user's job: when bob's ends, the worker takes bob's next job,
    although alice was served longer ago, because alice still has a worker of her own."""
    started: list[str] = []
    starts = threading.Semaphore(0)
    gates = {name: threading.Event() for name in ("alice-1", "bob-1", "alice-2", "bob-2")}

    def handler(job: Job, final_attempt: bool) -> None:
        started.append(job.image_id)
        starts.release()
        assert gates[job.image_id].wait(WAIT)

    queue = ThreadPoolJobQueue(workers=2, attempts=1)
    queue.serve(handler)
    try:
        queue.enqueue(job("alice-1", "alice"))
        assert starts.acquire(timeout=WAIT)
        queue.enqueue(job("bob-1", "bob"))
        assert starts.acquire(timeout=WAIT)
        queue.enqueue(job("alice-2", "alice"))
        queue.enqueue(job("bob-2", "bob"))

        gates["bob-1"].set()
        assert starts.acquire(timeout=WAIT)
        assert started == ["alice-1", "bob-1", "bob-2"]
    finally:
        for gate in gates.values():
            gate.set()
        assert queue.join(WAIT)
        queue.close()


def test_a_failing_job_is_tried_again_until_its_final_attempt(
    one_worker: ThreadPoolJobQueue,
) -> None:
    handler = GatedHandler(failures={"alice-1": 5})
    handler.gate.set()
    one_worker.serve(handler)

    one_worker.enqueue(job("alice-1", "alice"))
    assert one_worker.join(WAIT)

    assert handler.order == ["alice-1"] * 3
    assert handler.finals == [False, False, True]


def test_a_job_runs_in_the_context_it_was_queued_from(one_worker: ThreadPoolJobQueue) -> None:
    import contextvars

    request_id = contextvars.ContextVar("request_id", default="none")
    seen: list[str] = []
    one_worker.serve(lambda job, final: seen.append(request_id.get()))

    request_id.set("request-7")
    one_worker.enqueue(job("alice-1", "alice"))
    assert one_worker.join(WAIT)

    assert seen == ["request-7"]
