"""What the job queues whose jobs run in the server's own processes have in common
(ThreadPoolJobQueue, SqliteJobQueue), and what they are given, as the container wires them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from imagecore.model import Job

JobHandler = Callable[[Job, bool], object]
"""Does a job; the flag says it is the final attempt. Raises to have the job tried again; what
it returns is not used."""


@runtime_checkable
class LocalJobQueue(Protocol):
    """A job queue whose jobs this process runs, with the handler it is given."""

    def enqueue(self, job: Job) -> None: ...

    def serve(self, handler: JobHandler) -> None:
        """Have ``handler`` do the jobs."""

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every job queued so far is done, retries included; False on timeout."""

    def close(self) -> None:
        """Stop taking jobs; running jobs finish."""


class ProcessLeases(Protocol):
    """Which processes of the server live (adapters.shared_file.Leases): each holds a lease
    named by a number of its own, never reused, that it keeps until it dies, however it dies."""

    mine: int

    def alive(self, holder: int) -> bool:
        """Whether the process whose lease is ``holder`` still lives."""


@runtime_checkable
class ResumableJobQueue(LocalJobQueue, Protocol):
    """A local job queue that keeps its jobs across restarts: it takes them, those left from
    before included, only once started, so that a process that only queues jobs (a command)
    never takes one it would leave half done."""

    def start(self, processes: ProcessLeases | None = None) -> None:
        """Start taking jobs; with the ``processes`` of the server, those a dead process held
        are taken again at once."""
