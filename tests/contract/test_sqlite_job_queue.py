"""SqliteJobQueue's own promises, beyond the contract of test_job_queue_contract.py: a job is
kept in the database, with its image or on its own, until it is done, whatever happens to the
process that queued or ran it; and any number of queues on one database (the server's worker
processes) share its jobs without running one twice at once or more than the limit together."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from adapters.local_jobs import JobHandler
from adapters.shared_file import Leases
from adapters.sqlite import (
    _MIGRATIONS,
    SqliteImageRepository,
    _encode,
    _micros,
    _retagged,
)
from adapters.sqlite_jobs import SqliteJobQueue
from imagecore.model import THUMBNAIL_JOB, ImageState, Job, ThumbnailStatus
from imagecore.query import fold_title
from tests.support.numbered_images import build_image

WAIT = 30  # seconds a test waits for the queues before it fails; never a measurement
POLL_SECONDS = 0.05
SHORT_LEASE_SECONDS = 0.3
"""A lease short enough that a test can see it expire."""

MakeQueue = Callable[..., SqliteJobQueue]


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "imagecore.sqlite3"


@pytest.fixture
def leases(tmp_path: Path) -> Path:
    return tmp_path / "leases"


@pytest.fixture
def make_queue(database: Path, leases: Path) -> Iterator[MakeQueue]:
    """Queues on the test's database, as the worker processes of one server have: each serves
    ``handler`` and is started with a process lease of its own, unless ``handler`` is None."""
    made: list[SqliteJobQueue] = []

    def make(handler: JobHandler | None, **options: object) -> SqliteJobQueue:
        options = {"poll_interval": POLL_SECONDS, "retry_delay": 0, **options}
        queue = SqliteJobQueue(database, **options)  # type: ignore[arg-type]
        made.append(queue)
        if handler is not None:
            queue.serve(handler)
            queue.start(Leases(leases))
        return queue

    yield make
    for queue in made:
        queue.close()


def job(image_id: str, user_id: str | None = "alice") -> Job:
    return Job(THUMBNAIL_JOB, image_id, user_id=user_id)


def jobs_table(database: Path) -> list[tuple[str, str, str, int]]:
    with contextlib.closing(sqlite3.connect(database)) as raw:
        return raw.execute(
            "SELECT kind, image_id, owner, attempts FROM jobs ORDER BY job_id"
        ).fetchall()


class Recorder:
    """Records each job it runs, with the flag it was given."""

    def __init__(self) -> None:
        self.runs: list[tuple[Job, bool]] = []
        self.ran = threading.Event()

    def __call__(self, job: Job, final_attempt: bool) -> None:
        self.runs.append((job, final_attempt))
        self.ran.set()


def test_a_queued_job_survives_closing_and_reopening_the_queue(
    make_queue: MakeQueue, database: Path
) -> None:
    make_queue(None).enqueue(job("alice-1"))
    make_queue(None).close()  # the process that queued it is gone, the job never ran

    recorder = Recorder()
    after_restart = make_queue(recorder)
    assert after_restart.join(WAIT)

    assert recorder.runs == [(job("alice-1"), False)]
    assert jobs_table(database) == [], "a job done is gone"


def test_a_job_stored_with_its_image_runs_naming_the_upload_request(
    make_queue: MakeQueue, database: Path
) -> None:
    import contextvars

    request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id")
    repository = SqliteImageRepository(database, request_id=request_id)
    pending = build_image(1, user_id="alice")
    ready = build_image(2, user_id="bob", thumbnail_status=ThumbnailStatus.READY)
    request_id.set("upload-request")
    repository.add(pending)
    repository.add(ready)
    repository.close()
    assert jobs_table(database) == [("thumbnail", pending.image_id, "alice", 0)]

    seen: list[tuple[Job, str | None]] = []
    queue = make_queue(
        lambda job, final: seen.append((job, request_id.get())), request_id=request_id
    )
    assert queue.join(WAIT)

    assert seen == [(job(pending.image_id, "alice"), "upload-request")]


def test_an_edit_of_an_image_keeps_the_one_job_it_needs(
    make_queue: MakeQueue, database: Path
) -> None:
    repository = SqliteImageRepository(database)
    image = build_image(1)
    repository.add(image)
    edited = image.edited({"title": "Sea"}, image.updated_at)
    repository.replace(edited, image.version)
    make_queue(None).enqueue(job(image.image_id))  # the upload's own enqueue, after the write
    repository.close()

    assert jobs_table(database) == [("thumbnail", image.image_id, "alice", 0)]


def test_a_job_whose_lease_expired_is_taken_by_another_queue(
    make_queue: MakeQueue, database: Path
) -> None:
    """A queue whose job outlives its lease (as one whose process died does) no longer holds
    it: another queue on the database runs it, as its final attempt here."""
    stuck = threading.Event()
    release = threading.Event()

    def hangs(job: Job, final_attempt: bool) -> None:
        stuck.set()
        assert release.wait(WAIT)

    dying = make_queue(hangs, workers=1, attempts=2, lease=SHORT_LEASE_SECONDS)
    dying.enqueue(job("alice-1"))
    assert stuck.wait(WAIT)
    recorder = Recorder()
    try:
        make_queue(recorder, attempts=2, lease=SHORT_LEASE_SECONDS)
        assert recorder.ran.wait(WAIT)
        assert recorder.runs == [(job("alice-1"), True)]
    finally:
        release.set()
    assert dying.join(WAIT)
    assert jobs_table(database) == []


DYING_WORKER = """
import sys, threading
from pathlib import Path
from adapters.shared_file import Leases
from adapters.sqlite_jobs import SqliteJobQueue

def hang(job, final_attempt):
    print("running", job.image_id, flush=True)
    threading.Event().wait()

queue = SqliteJobQueue(Path(sys.argv[1]), workers=1, lease=3600, poll_interval=0.05)
queue.serve(hang)
queue.start(Leases(Path(sys.argv[2])))
threading.Event().wait()
"""


def test_the_jobs_of_a_worker_that_died_are_taken_at_once_not_when_their_leases_expire(
    make_queue: MakeQueue, database: Path, leases: Path
) -> None:
    """A server worker was killed while it ran a job, and another has just started: the job's
    lease would last an hour yet, but the worker's process lease tells it is gone."""
    make_queue(None).enqueue(job("alice-1"))
    worker = subprocess.Popen(
        [sys.executable, "-c", DYING_WORKER, str(database), str(leases)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline().split() == ["running", "alice-1"]
    finally:
        worker.kill()
        worker.wait()

    recorder = Recorder()
    after_restart = make_queue(recorder, workers=1, lease=3600)
    assert after_restart.join(WAIT)

    assert recorder.runs == [(job("alice-1"), False)], "its second attempt of three"


def test_a_job_whose_final_attempt_never_ended_is_dropped(
    make_queue: MakeQueue, database: Path
) -> None:
    """The process died on the job's final attempt (the job may be what killed it): it is not
    run again, for it might kill the next one too; reconcile queues the work again later."""
    stuck = threading.Event()
    release = threading.Event()

    def hangs(job: Job, final_attempt: bool) -> None:
        stuck.set()
        assert release.wait(WAIT)

    make_queue(hangs, workers=1, attempts=1, lease=SHORT_LEASE_SECONDS).enqueue(job("alice-1"))
    assert stuck.wait(WAIT)
    recorder = Recorder()
    try:
        survivor = make_queue(recorder, attempts=1, lease=SHORT_LEASE_SECONDS)
        survivor.enqueue(job("bob-1", "bob"))
        assert survivor.join(WAIT)
        assert jobs_table(database) == []
        assert recorder.runs == [(job("bob-1", "bob"), True)]
    finally:
        release.set()


def test_two_queues_on_one_database_never_run_a_job_twice_or_at_once(
    make_queue: MakeQueue,
) -> None:
    lock = threading.Lock()
    running: set[str] = set()
    runs: list[str] = []
    overlaps: list[str] = []

    def handler(job: Job, final_attempt: bool) -> None:
        with lock:
            if job.image_id in running:
                overlaps.append(job.image_id)
            running.add(job.image_id)
            runs.append(job.image_id)
        threading.Event().wait(0.002)  # long enough for a second run to overlap this one
        with lock:
            running.discard(job.image_id)

    queues = [make_queue(handler, workers=2) for _ in range(2)]
    names = [f"user-{number % 5}-{number}" for number in range(60)]
    for number, name in enumerate(names):
        queues[number % 2].enqueue(job(name, name.rsplit("-", 1)[0]))
    assert all(queue.join(WAIT) for queue in queues)

    assert overlaps == []
    assert sorted(runs) == sorted(names)


def test_no_more_jobs_run_at_once_than_the_limit_whatever_the_number_of_queues(
    make_queue: MakeQueue,
) -> None:
    """Each queue runs as many threads as the limit; together they still run no more."""
    limit = 2
    lock = threading.Condition()
    running = 0
    most = 0

    def handler(job: Job, final_attempt: bool) -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            lock.notify_all()
            # Held until the limit is reached, then a while longer: time for the other
            # queues' threads to start a job too, if they could.
            lock.wait_for(lambda: running >= limit, WAIT)
            lock.wait(10 * POLL_SECONDS)
            running -= 1

    queues = [make_queue(handler, workers=limit) for _ in range(3)]
    for number in range(3 * limit):
        queues[number % 3].enqueue(job(f"user-{number}-1", f"user-{number}"))
    assert all(queue.join(WAIT) for queue in queues)

    assert most == limit


def test_a_new_database_queues_the_thumbnails_an_old_crash_left_pending(
    database: Path,
) -> None:
    stuck = build_image(1, user_id="alice")
    made = build_image(2, user_id="bob", thumbnail_status=ThumbnailStatus.READY)
    deleting = build_image(3, user_id="carol", state=ImageState.DELETING)
    with contextlib.closing(sqlite3.connect(database)) as raw:
        raw.create_function("imagecore_fold_title", 1, fold_title)
        raw.create_function("imagecore_retagged", 1, _retagged)
        for statements in _MIGRATIONS[:5]:
            for statement in statements:
                raw.execute(statement)
        for image in (stuck, made, deleting):  # as schema 5 kept them
            raw.execute(
                "INSERT INTO images (image_id, user_id, visibility, state, content_type,"
                " title_folded, created_at, version, sha256, claims_content, record)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (image.image_id, image.user_id, image.visibility.value, image.state.value,
                 image.content_type, image.title.casefold(), _micros(image.created_at),
                 image.version, image.sha256, 0, _encode(image)),
            )  # fmt: skip
        raw.execute("PRAGMA user_version = 5")
        raw.commit()

    repository = SqliteImageRepository(database)
    try:
        assert list(repository.pending_thumbnails(deleting.created_at)) == [stuck]
        plan = repository._connection().execute(
            "EXPLAIN QUERY PLAN SELECT record FROM images WHERE state = 'active'"
            " AND json_extract(record, '$.thumbnail_status') = 'pending' AND created_at < 0"
        )
        assert "images_thumbnail_pending" in " ".join(str(row[3]) for row in plan)
    finally:
        repository.close()
    assert jobs_table(database) == [("thumbnail", stuck.image_id, "alice", 0)]
