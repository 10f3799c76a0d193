"""Background jobs on a pool of threads in this process: the job queue of the memory backend.

Jobs live only in memory, so a job queued when the process dies is lost: its image keeps a
``pending`` thumbnail. The filesystem backend keeps its jobs in its database instead
(adapters.sqlite_jobs), and AWS in SQS.

The waiting jobs are shared out fairly among their owners (``Job.user_id``) rather than taken
first come, first served: one user who queues twenty expensive jobs must not hold another
user's one job behind all of them.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import threading
from collections import deque

import attrs

from adapters.local_jobs import JobHandler
from imagecore.model import Job

log = logging.getLogger("imagecore.jobs")

Owner = str | None
"""Whose job it is; None for a job of no known owner, which count as one owner together."""


@attrs.frozen
class _Attempt:
    job: Job
    number: int
    context: contextvars.Context


class ThreadPoolJobQueue:
    """The ``JobQueue`` port on a pool of ``workers`` threads. A job that raises is tried again
    after a growing pause, ``attempts`` times in all; the handler is told which attempt is the
    final one. A job runs in a copy of the context it was queued from, so what it logs carries
    the id of the request that asked for it.

    A free worker takes the oldest waiting job of the owner with the fewest jobs running, and
    among those, of the owner served longest ago (an owner new to the queue first): each owner
    gets an equal share of the workers, and their jobs are taken in turn."""

    def __init__(self, workers: int = 2, attempts: int = 3, retry_delay: float = 0.5) -> None:
        if workers < 1 or attempts < 1 or retry_delay < 0:
            raise ValueError("workers and attempts must be at least 1, retry_delay not negative")
        self._workers = workers
        self._attempts = attempts
        self._retry_delay = retry_delay
        self._handler: JobHandler | None = None
        self._lock = threading.Condition()
        self._waiting: dict[Owner, deque[_Attempt]] = {}
        self._running: dict[Owner, int] = {}
        self._last_served: dict[Owner, int] = {}
        self._turns = itertools.count()
        self._threads: list[threading.Thread] = []
        self._idle_threads = 0
        self._unfinished = 0
        self._timers: set[threading.Timer] = set()
        self._closed = False

    def serve(self, handler: JobHandler) -> None:
        """Have ``handler`` do the jobs; before this, enqueue refuses them."""
        self._handler = handler

    def enqueue(self, job: Job) -> None:
        if self._handler is None:
            raise RuntimeError("no handler serves this job queue yet")
        with self._lock:
            self._unfinished += 1
        self._submit(_Attempt(job, 1, contextvars.copy_context()))

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every job queued so far is done, retries included; False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: self._unfinished == 0, timeout)

    def close(self) -> None:
        """Stop: waiting jobs and pending retries are dropped, running jobs finish."""
        with self._lock:
            self._closed = True
            timers, self._timers = list(self._timers), set()
            dropped = sum(len(attempts) for attempts in self._waiting.values()) + len(timers)
            self._waiting.clear()
            self._unfinished -= dropped
            self._lock.notify_all()
        for timer in timers:
            timer.cancel()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join()

    def _submit(self, attempt: _Attempt) -> None:
        with self._lock:
            if self._closed:  # the job is dropped with the process
                self._unfinished -= 1
                self._lock.notify_all()
                return
            self._waiting.setdefault(attempt.job.user_id, deque()).append(attempt)
            if self._idle_threads == 0 and len(self._threads) < self._workers:
                thread = threading.Thread(
                    target=self._work, name=f"imagecore-job-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
            # All: join() waits on the same condition, and a lone notify may wake it instead.
            self._lock.notify_all()

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle_threads += 1
                self._lock.wait_for(lambda: bool(self._waiting) or self._closed)
                self._idle_threads -= 1
                if self._closed:
                    return
                owner, attempt = self._take()
            try:
                attempt.context.copy().run(self._run, attempt)
            finally:
                with self._lock:
                    self._running[owner] -= 1
                    if not self._running[owner] and owner not in self._waiting:
                        del self._running[owner], self._last_served[owner]  # idle: new again

    def _take(self) -> tuple[Owner, _Attempt]:
        """The next attempt to run, by the rule of the class docstring; the lock is held."""
        owner = min(
            self._waiting,
            key=lambda each: (self._running.get(each, 0), self._last_served.get(each, -1)),
        )
        waiting = self._waiting[owner]
        attempt = waiting.popleft()
        if not waiting:
            del self._waiting[owner]
        self._running[owner] = self._running.get(owner, 0) + 1
        self._last_served[owner] = next(self._turns)
        return owner, attempt

    def _run(self, attempt: _Attempt) -> None:
        handler = self._handler
        assert handler is not None
        job = attempt.job
        final = attempt.number >= self._attempts
        try:
            handler(job, final)
        except Exception:
            if final:
                log.exception("job %s failed on its final attempt", job)
                self._done()
                return
            log.warning(
                "job %s failed on attempt %d; trying again", job, attempt.number, exc_info=True
            )
            self._retry_later(attempt)
            return
        self._done()

    def _retry_later(self, attempt: _Attempt) -> None:
        delay = self._retry_delay * 2 ** (attempt.number - 1)
        again = attrs.evolve(attempt, number=attempt.number + 1)

        def fire() -> None:
            with self._lock:
                self._timers.discard(timer)
            self._submit(again)

        timer = threading.Timer(delay, fire)
        timer.daemon = True
        with self._lock:
            self._timers.add(timer)
        timer.start()

    def _done(self) -> None:
        with self._lock:
            self._unfinished -= 1
            self._lock.notify_all()
