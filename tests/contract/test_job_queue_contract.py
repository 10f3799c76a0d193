"""What the job queues whose jobs the server runs itself promise, proven on each: the thread
pool of the memory backend and the SQLite queue of the filesystem backend. Jobs run in the
background, are retried after a growing pause until their final attempt, and are shared out
fairly among the users who queued them. (The SQLite queue's own promises, durability and the
sharing of one queue by several processes: test_sqlite_job_queue.py.)"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from adapters.local_jobs import JobHandler, LocalJobQueue
from adapters.sqlite_jobs import SqliteJobQueue
from adapters.thread_jobs import ThreadPoolJobQueue
from imagecore.model import THUMBNAIL_JOB, Job

WAIT = 30  # seconds a test waits for the queue before it fails; never a measurement
POLL_SECONDS = 0.05
"""How often the SQLite queues of these tests look for jobs queued elsewhere."""


class MakeQueue(Protocol):
    def __call__(
        self,
        handler: JobHandler,
        *,
        workers: int,
        attempts: int,
        retry_delay: float = 0,
        request_id: contextvars.ContextVar[str | None] | None = None,
    ) -> LocalJobQueue:
        """A queue of the kind under test, serving ``handler``, taking jobs."""


@pytest.fixture(params=["thread-pool", "sqlite"])
def make_queue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeQueue]:
    made: list[LocalJobQueue] = []

    def make(
        handler: JobHandler,
        *,
        workers: int,
        attempts: int,
        retry_delay: float = 0,
        request_id: contextvars.ContextVar[str | None] | None = None,
    ) -> LocalJobQueue:
        queue: LocalJobQueue
        if request.param == "thread-pool":  # it runs a job in a copy of the queuing context
            queue = ThreadPoolJobQueue(workers=workers, attempts=attempts, retry_delay=retry_delay)
            queue.serve(handler)
        else:
            sqlite = SqliteJobQueue(
                tmp_path / "imagecore.sqlite3",
                workers=workers,
                attempts=attempts,
                retry_delay=retry_delay,
                poll_interval=POLL_SECONDS,
                request_id=request_id,
            )
            sqlite.serve(handler)
            sqlite.start()
            queue = sqlite
        made.append(queue)
        return queue

    yield make
    for queue in made:
        queue.close()


class GatedHandler:
    """Records the jobs it is given in order; the first one waits until the test opens the gate,
    so the test can queue everything else behind it first."""

    def __init__(self, failures: dict[str, int] | None = None) -> None:
        self.order: list[str] = []
        self.finals: list[bool] = []
        self.started_at: list[float] = []
        self.gate = threading.Event()
        self.failures = dict(failures or {})

    def __call__(self, job: Job, final_attempt: bool) -> None:
        if not self.order:
            assert self.gate.wait(WAIT), "the test never opened the gate"
        self.order.append(job.image_id)
        self.finals.append(final_attempt)
        self.started_at.append(time.monotonic())
        if self.failures.get(job.image_id, 0) > 0:
            self.failures[job.image_id] -= 1
            raise OSError("cannot decode")


@pytest.fixture
def handler() -> GatedHandler:
    return GatedHandler()


@pytest.fixture
def one_worker(make_queue: MakeQueue, handler: GatedHandler) -> LocalJobQueue:
    return make_queue(handler, workers=1, attempts=3)


def job(image_id: str, user_id: str | None) -> Job:
    return Job(THUMBNAIL_JOB, image_id, user_id=user_id)


def test_another_users_job_is_taken_before_the_rest_of_a_first_users_twenty(
    one_worker: LocalJobQueue, handler: GatedHandler
) -> None:
    for number in range(1, 21):
        one_worker.enqueue(job(f"alice-{number}", "alice"))
    one_worker.enqueue(job("bob-1", "bob"))

    handler.gate.set()
    assert one_worker.join(WAIT)

    assert handler.order[:3] == ["alice-1", "bob-1", "alice-2"]
    assert handler.order[2:] == [f"alice-{number}" for number in range(2, 21)]


def test_owners_take_turns_each_in_the_order_they_queued(
    one_worker: LocalJobQueue, handler: GatedHandler
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


def test_a_free_worker_goes_to_the_owner_with_fewer_jobs_running(make_queue: MakeQueue) -> None:
    """Two workers, one on each user's job: when bob's ends, the worker takes bob's next job,
    although alice was served longer ago, because alice still has a worker of her own."""
    started: list[str] = []
    starts = threading.Semaphore(0)
    gates = {name: threading.Event() for name in ("alice-1", "bob-1", "alice-2", "bob-2")}

    def handler(job: Job, final_attempt: bool) -> None:
        started.append(job.image_id)
        starts.release()
        assert gates[job.image_id].wait(WAIT)

    queue = make_queue(handler, workers=2, attempts=1)
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


def test_a_job_that_keeps_failing_ends_after_its_final_attempt(make_queue: MakeQueue) -> None:
    handler = GatedHandler(failures={"alice-1": 5})
    handler.gate.set()
    queue = make_queue(handler, workers=1, attempts=3)

    queue.enqueue(job("alice-1", "alice"))
    assert queue.join(WAIT)

    assert handler.order == ["alice-1"] * 3
    assert handler.finals == [False, False, True]


def test_a_job_that_fails_once_succeeds_on_its_second_attempt(make_queue: MakeQueue) -> None:
    handler = GatedHandler(failures={"alice-1": 1})
    handler.gate.set()
    queue = make_queue(handler, workers=1, attempts=3)

    queue.enqueue(job("alice-1", "alice"))
    queue.enqueue(job("bob-1", "bob"))
    assert queue.join(WAIT)

    assert sorted(handler.order) == ["alice-1", "alice-1", "bob-1"]
    assert handler.finals == [False, False, False]


def test_the_pause_before_each_new_attempt_doubles(make_queue: MakeQueue) -> None:
    handler = GatedHandler(failures={"alice-1": 2})
    handler.gate.set()
    queue = make_queue(handler, workers=1, attempts=3, retry_delay=0.1)

    queue.enqueue(job("alice-1", "alice"))
    assert queue.join(WAIT)

    first, second, third = handler.started_at
    # Lower bounds only: a pause may run long on a busy machine, never short.
    assert second - first >= 0.1
    assert third - second >= 0.2


def test_a_job_logs_with_the_id_of_the_request_that_queued_it(make_queue: MakeQueue) -> None:
    request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
        "request_id", default=None
    )
    seen: list[str | None] = []
    queue = make_queue(
        lambda job, final: seen.append(request_id.get()),
        workers=1,
        attempts=1,
        request_id=request_id,
    )

    token = request_id.set("request-7")
    try:
        queue.enqueue(job("alice-1", "alice"))
    finally:
        request_id.reset(token)
    assert queue.join(WAIT)

    assert seen == ["request-7"]


def test_join_waits_for_the_jobs_queued_before_it(make_queue: MakeQueue) -> None:
    release = threading.Event()
    done: list[str] = []

    def handler(job: Job, final_attempt: bool) -> None:
        assert release.wait(WAIT)
        done.append(job.image_id)

    queue = make_queue(handler, workers=2, attempts=1)
    for number in range(4):
        queue.enqueue(job(f"alice-{number}", "alice"))

    joined: list[bool] = []
    joiner = threading.Thread(target=lambda: joined.append(queue.join(WAIT)))
    joiner.start()
    release.set()
    joiner.join(WAIT)

    assert joined == [True]
    assert sorted(done) == [f"alice-{number}" for number in range(4)]
