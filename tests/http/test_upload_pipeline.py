"""The pipeline between receiving an upload and writing it: every piece written once and in
order, never more than its depth of pieces held, a failure on either side stopping the other,
and no thread held while the client pauses."""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.to_thread
import pytest

from entrypoints.http.upload_pipeline import PIPELINE_DEPTH, write_pipelined


class Source:
    """Pieces 0, 1, 2, ... as fast as they are asked for, up to ``count`` (None: without end);
    ``fail_at`` raises instead of giving that piece. ``asked`` is set when piece ``ask_for``
    is asked for."""

    def __init__(self, count: int | None, fail_at: int | None = None, ask_for: int = -1) -> None:
        self.count = count
        self.fail_at = fail_at
        self.given = 0
        self.ask_for = ask_for
        self.asked = threading.Event()

    async def next_piece(self) -> int | None:
        await anyio.sleep(0)  # as a client's body does, between its messages
        if self.given == self.ask_for:
            self.asked.set()
        if self.given == self.fail_at:
            raise ConnectionResetError("the client went away")
        if self.count is not None and self.given >= self.count:
            return None
        self.given += 1
        return self.given - 1


class Writer:
    """Writes in a worker thread, slowly enough that a fast source gets ahead of it; records
    what it wrote, and how many pieces the source had given and were not yet written. With a
    ``gate``, each write first waits for it (10 s at most)."""

    def __init__(
        self, source: Source, fail_at: int | None = None, gate: threading.Event | None = None
    ) -> None:
        self.source = source
        self.fail_at = fail_at
        self.gate = gate
        self.written: list[int] = []
        self.started = threading.Event()  # a write has begun
        self.gate_opened: list[bool] = []  # for each write, whether the gate opened in time
        self.most_held = 0
        self.writing = threading.Lock()  # held while a write is under way
        self.overlapping = False

    def __call__(self, piece: int) -> None:
        if not self.writing.acquire(blocking=False):
            self.overlapping = True
            return
        try:
            self.most_held = max(self.most_held, self.source.given - len(self.written))
            self.started.set()
            if self.gate is not None:
                self.gate_opened.append(self.gate.wait(10))
            time.sleep(0.002)
            if piece == self.fail_at:
                raise OSError("the disk failed")
            self.written.append(piece)
        finally:
            self.writing.release()


class Threads:
    """``run_in_thread`` for the pipeline, counting the threads it holds at the moment."""

    def __init__(self) -> None:
        self.busy = 0
        self.runs = 0

    async def __call__(self, work: Callable[..., Any], *arguments: object) -> Any:
        self.busy += 1
        self.runs += 1
        try:
            return await anyio.to_thread.run_sync(work, *arguments)
        finally:
            self.busy -= 1


def pipelined(
    source: Source, writer: Writer, threads: Threads | None = None, **options: Any
) -> Callable[[], Awaitable[None]]:
    return lambda: write_pipelined(source.next_piece, writer, threads or Threads(), **options)


def test_every_piece_is_written_once_in_order_one_write_at_a_time() -> None:
    source = Source(count=40)
    writer = Writer(source)
    anyio.run(pipelined(source, writer))
    assert writer.written == list(range(40))
    assert not writer.overlapping


@pytest.mark.parametrize("depth", [1, PIPELINE_DEPTH, 4])
def test_pieces_held_between_receiving_and_writing_never_exceed_the_depth(depth: int) -> None:
    source = Source(count=40)
    writer = Writer(source)
    anyio.run(pipelined(source, writer, depth=depth))
    assert writer.written == list(range(40))
    # At a write's start: the pieces in flight (that one included) and the one being received.
    assert writer.most_held <= depth + 1, writer.most_held
    assert writer.most_held > 1, "the writer never fell behind: the bound was not tested"


def test_a_failed_write_stops_the_receiving_and_is_raised() -> None:
    source = Source(count=None)
    writer = Writer(source, fail_at=5)
    with pytest.raises(OSError, match="the disk failed"):
        anyio.run(pipelined(source, writer))
    assert writer.written == list(range(5))
    assert source.given <= 5 + 1 + PIPELINE_DEPTH
    assert not writer.writing.locked()


def test_the_next_pieces_are_received_while_the_first_is_written() -> None:
    source = Source(count=3, ask_for=2)
    writer = Writer(source, gate=source.asked)  # the first write waits for the third piece
    anyio.run(pipelined(source, writer))
    assert writer.written == [0, 1, 2]
    assert writer.gate_opened[0], "piece 2 was not asked for while piece 0 was being written"


def test_a_failed_receive_drops_the_waiting_pieces_and_is_raised_once_no_write_is_left() -> None:
    gate = threading.Event()

    class Failing(Source):
        async def next_piece(self) -> int | None:
            if self.given == PIPELINE_DEPTH:
                # Piece 0 is being written, and piece 1 waits, when the client goes away.
                deadline = anyio.current_time() + 10
                while not writer.started.is_set() and anyio.current_time() < deadline:
                    await anyio.sleep(0.001)
                gate.set()
                raise ConnectionResetError("the client went away")
            return await super().next_piece()

    source = Failing(count=None)
    writer = Writer(source, gate=gate)
    with pytest.raises(ConnectionResetError):
        anyio.run(pipelined(source, writer))
    assert not writer.writing.locked(), "a write was still under way"
    time.sleep(0.05)
    assert writer.written == [0], "a piece was written after the client had gone"


def test_a_client_that_pauses_holds_no_thread() -> None:
    resume = threading.Event()
    threads = Threads()
    paused_with: list[int] = []

    class Pausing(Source):
        async def next_piece(self) -> int | None:
            if self.given == 3:
                # Paused: once the pieces already given are written, no thread may be held.
                deadline = anyio.current_time() + 10
                while (threads.busy or len(writer.written) < 3) and (
                    anyio.current_time() < deadline
                ):
                    await anyio.sleep(0.01)
                paused_with.append(threads.busy)
                resume.set()
            return await super().next_piece()

    source = Pausing(count=6)
    writer = Writer(source)
    anyio.run(pipelined(source, writer, threads))
    assert resume.is_set()
    assert paused_with == [0], "a thread was held while the client paused"
    assert writer.written == list(range(6))


def test_a_depth_below_one_is_refused() -> None:
    source = Source(count=1)
    with pytest.raises(ValueError, match="at least one piece"):
        anyio.run(pipelined(source, Writer(source), depth=0))
