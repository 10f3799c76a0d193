"""Background jobs kept in the SQLite database beside the images: the job queue of the
filesystem backend, shared by every process of the server and outliving each of them.

A job is a row of the ``jobs`` table, queued in the transaction that stores the image that needs
it (SqliteImageRepository writes the image's Image.outstanding_jobs) or by ``enqueue``. Every
server process runs job threads; a thread claims a job in one write transaction (BEGIN
IMMEDIATE, so the claims of all the processes take turns), runs it, and records its end:

- At most ``workers`` jobs run at once on the whole server: a claim counts the unexpired leases,
  whichever process took them, and takes nothing while there are ``workers`` of them.
- The job taken is the oldest ready one of the owner (Job.user_id) with the fewest unexpired
  leases, and among those owners, of the one served longest ago (an owner new to the queue
  first), as ThreadPoolJobQueue does in memory: one user's twenty costly jobs never hold another
  user's one behind them.
- A claim leases the job (``claimed_until``, ``claimed_by``) and counts the attempt. The job's
  end deletes it; a job that raised is made ready again after a growing pause, unless that was
  its final attempt. A job whose process died is claimed again once its lease expires, or at
  once where the queue was started with the ``ProcessLeases`` of the server's workers, which
  tell that the process has ended; the death counts as an attempt, so that a job that kills
  its process is not tried for ever.

A thread learns at once of a job queued in its own process, and of jobs queued or leases ended
in other processes by polling every ``poll_interval``. A poll is two reads of an index, which
cost microseconds and take no write lock (an idle server does four a second per worker process),
and half a second adds little to the time a thumbnail takes to appear; most jobs are taken by
the process that queued them anyway, at once.
"""

from __future__ import annotations

import contextvars
import logging
import sqlite3
import threading
import time
from contextvars import ContextVar
from pathlib import Path

import attrs

from adapters.disk_reserve import DiskReserve
from adapters.local_jobs import JobHandler, ProcessLeases
from adapters.sqlite import BUSY_TIMEOUT_SECONDS, NO_OWNER, SqliteDatabase, insert_jobs, now_micros
from imagecore.model import Job

log = logging.getLogger("imagecore.jobs")

_MICROS = 1_000_000

_LEASES = "SELECT count(*) FROM jobs WHERE claimed_until > ?"
_HOLDERS = "SELECT claimed_by FROM jobs WHERE claimed_until > ?"

# Ready and not leased (or its lease expired), in queue order: a retried job queues again from
# the moment it is ready.
_FIRST_READY = (
    "SELECT ready_at FROM jobs WHERE claimed_until IS NULL OR claimed_until <= :now"
    " ORDER BY ready_at, job_id LIMIT 1"
)

# The owners are found by skipping through an index, one seek each, and so is each owner's
# oldest ready job and count of leases: a claim costs as much with a long queue as a short one.
_NEXT_JOB = """
    WITH RECURSIVE owners (owner) AS (
        SELECT min(owner) FROM jobs
        UNION ALL
        SELECT (SELECT min(owner) FROM jobs WHERE owner > owners.owner)
        FROM owners WHERE owner IS NOT NULL
    ),
    candidates (owner, job_id) AS (
        SELECT owner, (
            SELECT job_id FROM jobs
            WHERE jobs.owner = owners.owner AND ready_at <= :now
                AND (claimed_until IS NULL OR claimed_until <= :now)
            ORDER BY ready_at, job_id LIMIT 1
        )
        FROM owners WHERE owner IS NOT NULL
    )
    SELECT j.job_id, j.kind, j.image_id, j.owner, j.request_id, j.attempts
    FROM candidates AS c
    JOIN jobs AS j ON j.job_id = c.job_id
    LEFT JOIN job_owners AS served ON served.owner = c.owner
    ORDER BY
        (SELECT count(*) FROM jobs AS l WHERE l.owner = c.owner AND l.claimed_until > :now),
        ifnull(served.last_served, -1),
        j.ready_at,
        j.job_id
    LIMIT 1
"""

_SERVED = """
    INSERT INTO job_owners (owner, last_served)
    VALUES (?, (SELECT ifnull(max(last_served), 0) + 1 FROM job_owners))
    ON CONFLICT (owner) DO UPDATE SET last_served = excluded.last_served
"""


def lease_for(time_limit_seconds: float) -> float:
    """A lease, in seconds, that outlasts a job whose own work stops after
    ``time_limit_seconds``: the write that records its outcome may wait SQLite's busy timeout,
    and a little more for reading and writing its bytes."""
    return time_limit_seconds + BUSY_TIMEOUT_SECONDS + 5


@attrs.frozen
class _Claim:
    job_id: int
    job: Job
    attempt: int
    request_id: str | None


class SqliteJobQueue:
    """The ``JobQueue`` port on the imagecore database at ``path`` (the repository's, with the
    same disk ``reserve``), whose jobs ``workers`` threads of this process run once it is
    started. ``workers`` is also the most jobs that run at once on the whole server, whichever
    processes run them.

    A job that raises is tried again after ``retry_delay * 2 ** (attempt - 1)`` seconds,
    ``attempts`` times in all, the handler told which attempt is the final one. ``lease`` (in
    seconds) must outlast the longest a job may take: a job still running when its lease
    expires may be run a second time beside it. ``request_id`` is the context variable a job's
    log lines take the request id from: it is kept with the job when it is queued, and set
    again while the job runs, in whichever process."""

    def __init__(
        self,
        path: Path,
        reserve: DiskReserve | None = None,
        *,
        workers: int = 2,
        attempts: int = 3,
        retry_delay: float = 0.5,
        lease: float = 60.0,
        poll_interval: float = 0.5,
        request_id: ContextVar[str | None] | None = None,
    ) -> None:
        if workers < 1 or attempts < 1 or retry_delay < 0 or lease <= 0 or poll_interval <= 0:
            raise ValueError(
                "workers and attempts must be at least 1, retry_delay not negative, "
                "lease and poll_interval above 0"
            )
        self._database = SqliteDatabase(path, reserve)
        self._workers = workers
        self._attempts = attempts
        self._retry_delay = retry_delay
        self._lease_micros = int(lease * _MICROS)
        self._poll_interval = poll_interval
        self._request_id = request_id
        self._handler: JobHandler | None = None
        self._processes: ProcessLeases | None = None
        self._holder: str | None = None
        self._condition = threading.Condition()
        self._wakeups = 0
        self._threads: list[threading.Thread] = []
        self._closed = False

    def serve(self, handler: JobHandler) -> None:
        """Have ``handler`` do the jobs, once started."""
        self._handler = handler

    def start(self, processes: ProcessLeases | None = None) -> None:
        """Start the job threads: from now on they take the jobs waiting in the database,
        those queued before this process began included. With the ``processes`` of the server,
        the jobs of a process that died are taken at once, not when their leases expire.
        Harmless once started."""
        if self._handler is None:
            raise RuntimeError("no handler serves this job queue yet")
        with self._condition:
            if self._threads or self._closed:
                return
            self._processes = processes
            self._holder = None if processes is None else _holder_name(processes.mine)
            self._threads = [
                threading.Thread(target=self._work, name=f"imagecore-job-{number}", daemon=True)
                for number in range(self._workers)
            ]
        for thread in self._threads:
            thread.start()

    def enqueue(self, job: Job) -> None:
        queued = (
            self._database.connection()
            .execute("SELECT 1 FROM jobs WHERE kind = ? AND image_id = ?", (job.kind, job.image_id))
            .fetchone()
        )
        if queued is None:  # an upload's job was queued with its image: a read spares a commit
            request_id = None if self._request_id is None else self._request_id.get()
            with self._database.write() as connection:
                insert_jobs(connection, [job], request_id)
        self._wake()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every job queued so far is done, retries included, by whichever process;
        False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        connection = self._database.connection()
        (last,) = connection.execute("SELECT max(job_id) FROM jobs").fetchone()
        while (
            last is not None
            and connection.execute("SELECT 1 FROM jobs WHERE job_id <= ?", (last,)).fetchone()
        ):
            wait = self._poll_interval
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    return False
            with self._condition:
                self._condition.wait(wait)
        return True

    def close(self) -> None:
        """Stop: running jobs finish, and the others wait in the database for the next start."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join()
        self._database.close()

    def _wake(self) -> None:
        with self._condition:
            self._wakeups += 1
            self._condition.notify_all()

    def _work(self) -> None:
        failing = False
        try:
            while True:
                with self._condition:
                    if self._closed:
                        return
                    wakeups = self._wakeups
                try:
                    claim, pause = self._next_claim()
                    failing = False
                except Exception:  # a full disk, a database locked too long: try again later
                    if not failing:
                        log.warning("could not take a job; trying again", exc_info=True)
                    failing = True
                    claim, pause = None, self._poll_interval
                if claim is None:
                    self._sleep(pause, unless_woken_since=wakeups)
                    continue
                contextvars.Context().run(self._run, claim)
                self._wake()  # its lease is over: another thread may take the next job
        finally:
            self._database.close()

    def _sleep(self, seconds: float, unless_woken_since: int) -> None:
        with self._condition:
            self._condition.wait_for(
                lambda: self._closed or self._wakeups != unless_woken_since, seconds
            )

    def _next_claim(self) -> tuple[_Claim | None, float]:
        """A job claimed for this thread, or None and how long to wait before looking again
        (unless woken). Reads first, so that an idle thread never takes the write lock."""
        now = now_micros()
        connection = self._database.connection()
        holders = [holder for (holder,) in connection.execute(_HOLDERS, (now,))]
        ended = {
            holder
            for holder in set(holders)
            if holder is not None and holder != self._holder and self._has_ended(holder)
        }
        if ended:
            return self._claim(now, ended), self._poll_interval
        if len(holders) >= self._workers:
            return None, self._poll_interval
        first = connection.execute(_FIRST_READY, {"now": now}).fetchone()
        if first is None:
            return None, self._poll_interval
        if first[0] > now:  # a retry, not ready yet
            return None, min((first[0] - now) / _MICROS, self._poll_interval)
        return self._claim(now, ended), self._poll_interval

    def _has_ended(self, holder: str) -> bool:
        if self._processes is None or not holder.isalnum():
            return False
        return not self._processes.alive(int(holder, 16))

    def _claim(self, now: int, ended_holders: set[str]) -> _Claim | None:
        with self._database.write() as connection:
            for holder in ended_holders:
                # The process is gone, and its leases with it.
                connection.execute(
                    "UPDATE jobs SET claimed_until = ? WHERE claimed_by = ? AND claimed_until > ?",
                    (now, holder, now),
                )
            self._drop_jobs_whose_final_attempt_died(connection, now)
            (leases,) = connection.execute(_LEASES, (now,)).fetchone()
            if leases >= self._workers:
                return None
            row = connection.execute(_NEXT_JOB, {"now": now}).fetchone()
            if row is None:
                return None
            job_id, kind, image_id, owner, request_id, attempts = row
            connection.execute(
                "UPDATE jobs SET claimed_until = ?, claimed_by = ?, attempts = attempts + 1"
                " WHERE job_id = ?",
                (now + self._lease_micros, self._holder, job_id),
            )
            connection.execute(_SERVED, (owner,))
        job = Job(kind, image_id, user_id=None if owner == NO_OWNER else owner)
        return _Claim(job_id, job, attempts + 1, request_id)

    def _drop_jobs_whose_final_attempt_died(self, connection: sqlite3.Connection, now: int) -> None:
        dropped = connection.execute(
            "DELETE FROM jobs WHERE attempts >= ? AND claimed_until <= ?"
            " RETURNING kind, image_id, owner",
            (self._attempts, now),
        ).fetchall()
        for kind, image_id, owner in dropped:
            log.error(
                "dropped the %s job of image %s: its final attempt never ended (the process "
                "died); reconcile queues the work again",
                kind,
                image_id,
            )
            _forget_if_idle(connection, owner)

    def _run(self, claim: _Claim) -> None:
        """Do one attempt of the claimed job, in a context of its own that names the request
        that queued it, and record how it ended."""
        if self._request_id is not None:
            self._request_id.set(claim.request_id)
        handler = self._handler
        assert handler is not None
        final = claim.attempt >= self._attempts
        try:
            handler(claim.job, final)
        except Exception:
            if not final:
                log.warning(
                    "job %s failed on attempt %d; trying again",
                    claim.job,
                    claim.attempt,
                    exc_info=True,
                )
                self._retry_later(claim)
                return
            log.exception("job %s failed on its final attempt", claim.job)
        self._finish(claim)

    def _finish(self, claim: _Claim) -> None:
        try:
            with self._database.write() as connection:
                # Only while the lease is ours: the attempt count names the claim.
                connection.execute(
                    "DELETE FROM jobs WHERE job_id = ? AND attempts = ?",
                    (claim.job_id, claim.attempt),
                )
                _forget_if_idle(connection, claim.job.user_id or NO_OWNER)
        except Exception:
            log.warning(
                "could not record the end of job %s: it runs again once its lease expires",
                claim.job,
                exc_info=True,
            )

    def _retry_later(self, claim: _Claim) -> None:
        delay = self._retry_delay * 2 ** (claim.attempt - 1)
        try:
            with self._database.write() as connection:
                connection.execute(
                    "UPDATE jobs SET claimed_until = NULL, claimed_by = NULL, ready_at = ?"
                    " WHERE job_id = ? AND attempts = ?",
                    (now_micros() + int(delay * _MICROS), claim.job_id, claim.attempt),
                )
        except Exception:
            log.warning(
                "could not put job %s back: it is tried again once its lease expires",
                claim.job,
                exc_info=True,
            )


def _holder_name(lease: int) -> str:
    # Text: a lease number may be 2**63, one past SQLite's largest integer.
    return f"{lease:016x}"


def _forget_if_idle(connection: sqlite3.Connection, owner: str) -> None:
    """An owner with no job left is new to the queue again, as in ThreadPoolJobQueue."""
    connection.execute(
        "DELETE FROM job_owners WHERE owner = ?"
        " AND NOT EXISTS (SELECT 1 FROM jobs WHERE owner = ?)",
        (owner, owner),
    )
