"""Background jobs on a pool of threads in this process: the job queue of the embedded server.

Jobs live only in memory, so a job queued when the process dies is lost: its image keeps a
``pending`` thumbnail. What a queue that outlives the process gives is what SQS is for.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from imagecore.model import Job

log = logging.getLogger("imagecore.jobs")

JobHandler = Callable[[Job, bool], object]
"""Does a job; the flag says it is the final attempt. Raises to have the job tried again; what
it returns is not used."""


class ThreadPoolJobQueue:
    """The ``JobQueue`` port on a thread pool. A job that raises is tried again after a growing
    pause, ``attempts`` times in all; the handler is told which attempt is the final one.
    A job runs in a copy of the context it was queued from, so what it logs carries the id of
    the request that asked for it."""

    def __init__(self, workers: int = 2, attempts: int = 3, retry_delay: float = 0.5) -> None:
        if workers < 1 or attempts < 1 or retry_delay < 0:
            raise ValueError("workers and attempts must be at least 1, retry_delay not negative")
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="imagecore-job")
        self._attempts = attempts
        self._retry_delay = retry_delay
        self._handler: JobHandler | None = None
        self._unfinished = 0
        self._idle = threading.Condition()
        self._timers: set[threading.Timer] = set()

    def serve(self, handler: JobHandler) -> None:
        """Have ``handler`` do the jobs; before this, enqueue refuses them."""
        self._handler = handler

    def enqueue(self, job: Job) -> None:
        if self._handler is None:
            raise RuntimeError("no handler serves this job queue yet")
        with self._idle:
            self._unfinished += 1
        self._submit(job, 1, contextvars.copy_context())

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every job queued so far is done, retries included; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._unfinished == 0, timeout)

    def close(self) -> None:
        """Stop: pending retries are dropped, running jobs finish."""
        with self._idle:
            timers, self._timers = list(self._timers), set()
        for timer in timers:
            timer.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _submit(self, job: Job, attempt: int, context: contextvars.Context) -> None:
        try:
            self._pool.submit(context.copy().run, self._run, job, attempt, context)
        except RuntimeError:  # shut down: the job is dropped with the process
            self._done()

    def _run(self, job: Job, attempt: int, context: contextvars.Context) -> None:
        handler = self._handler
        assert handler is not None
        final = attempt >= self._attempts
        try:
            handler(job, final)
        except Exception:
            if final:
                log.exception("job %s failed on its final attempt", job)
                self._done()
                return
            log.warning("job %s failed on attempt %d; trying again", job, attempt, exc_info=True)
            self._retry_later(job, attempt + 1, context)
            return
        self._done()

    def _retry_later(self, job: Job, attempt: int, context: contextvars.Context) -> None:
        delay = self._retry_delay * 2 ** (attempt - 2)

        def fire() -> None:
            with self._idle:
                self._timers.discard(timer)
            self._submit(job, attempt, context)

        timer = threading.Timer(delay, fire)
        timer.daemon = True
        with self._idle:
            self._timers.add(timer)
        timer.start()

    def _done(self) -> None:
        with self._idle:
            self._unfinished -= 1
            self._idle.notify_all()
