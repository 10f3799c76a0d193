"""An upload's pieces on their way from the event loop, where they are received, to a worker
thread, where they are written: the next piece arrives while the last one is hashed and written,
instead of after it.

At most ``depth`` pieces are between the two at once (waiting, or being written), so an upload
holds a bounded amount of memory whatever the client's speed or the disk's. A thread is taken
only while there are pieces to write: a client that pauses holds none.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import anyio
import anyio.abc
import anyio.from_thread
import anyio.lowlevel

PIPELINE_DEPTH = 2
"""Pieces received but not yet written, at most: one being written and one waiting, while the
loop gathers the next. Deeper measured no faster (the receiving and the writing share the
machine's cores) and would only hold more memory per upload."""

RunInThread = Callable[..., Awaitable[Any]]
_Piece = TypeVar("_Piece")


async def write_pipelined(
    next_piece: Callable[[], Awaitable[_Piece | None]],
    write: Callable[[_Piece], None],
    run_in_thread: RunInThread,
    depth: int = PIPELINE_DEPTH,
) -> None:
    """Hand every piece ``next_piece`` gives, until None, to ``write``, in order and one at a
    time, in threads ``run_in_thread`` gives, while the next pieces are received; at most
    ``depth`` pieces are given and not yet written. Returns once every piece is written.
    Whatever fails, on either side, stops the other: when this raises (what failed first), no
    ``write`` is under way and none will be."""
    pipeline = _Pipeline(write, run_in_thread, depth)
    try:
        async with anyio.create_task_group() as group:
            try:
                while (piece := await next_piece()) is not None:
                    await pipeline.send(piece, group)
            except BaseException:
                # The writer stops after the piece it holds; the group waits for it to.
                pipeline.stop()
                raise
    except BaseExceptionGroup as failures:
        raise _first_failure(failures) from None


def _first_failure(failures: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error out of the task group's wrapping (there is one but in a race of two failures)."""
    first = failures.exceptions[0]
    return _first_failure(first) if isinstance(first, BaseExceptionGroup) else first


class _Pipeline(Generic[_Piece]):
    """The pieces between the loop and the writer. ``send`` and ``stop`` run on the event loop,
    ``_drain`` in a worker thread, one at a time."""

    def __init__(self, write: Callable[[_Piece], None], run_in_thread: RunInThread, depth: int):
        if depth < 1:
            raise ValueError("a pipeline holds at least one piece")
        self._write = write
        self._run_in_thread = run_in_thread
        self._depth = depth
        self._loop = anyio.lowlevel.current_token()
        self._lock = threading.Lock()
        self._waiting: deque[_Piece] = deque()
        self._in_flight = 0  # waiting or being written
        self._room: anyio.Event | None = None  # set when a piece is written, if send waits
        self._draining = False  # a writer task is under way; only the event loop uses it

    async def send(self, piece: _Piece, group: anyio.abc.TaskGroup) -> None:
        """Queue ``piece`` for the writer, first waiting while ``depth`` pieces are in flight."""
        while True:
            with self._lock:
                if self._in_flight < self._depth:
                    self._waiting.append(piece)
                    self._in_flight += 1
                    break
                room = self._room = anyio.Event()
            await room.wait()
        if not self._draining:
            self._draining = True
            group.start_soon(self._drain_in_threads)

    def stop(self) -> None:
        """Write nothing more than the piece being written: the rest is dropped."""
        with self._lock:
            self._waiting.clear()

    async def _drain_in_threads(self) -> None:
        try:
            while True:
                await self._run_in_thread(self._drain)
                # A piece sent after the thread found none, and before this ran, is on us.
                with self._lock:
                    if not self._waiting:
                        return
        finally:
            self._draining = False

    def _drain(self) -> None:
        """In a worker thread: write the waiting pieces until there are none."""
        while True:
            with self._lock:
                if not self._waiting:
                    return
                piece = self._waiting.popleft()
            self._write(piece)
            with self._lock:
                self._in_flight -= 1
                room, self._room = self._room, None
            if room is not None:
                anyio.from_thread.run_sync(room.set, token=self._loop)
