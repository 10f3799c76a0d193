"""The log lines of the embedded server: JSON objects, one a line, with the request's id."""

from __future__ import annotations

import json
import logging
import os
import select
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from entrypoints import logs


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read, write = os.pipe()
    yield read, write
    os.close(read)
    os.close(write)


@pytest.fixture
def access_level() -> Iterator[Callable[[int], None]]:
    """Sets the access logger's level for one test."""
    access = logging.getLogger(logs.ACCESS_LOGGER)
    before = access.level
    yield access.setLevel  # setLevel also clears the per-logger cache of levels
    access.setLevel(before)


def _lines(read: int) -> list[dict[str, object]]:
    os.set_blocking(read, False)
    try:
        data = os.read(read, 65536)
    except BlockingIOError:
        return []
    return [json.loads(line) for line in data.decode().splitlines()]


def test_an_access_line_is_one_json_object_with_the_request_id(
    pipe: tuple[int, int], access_level: Callable[[int], None]
) -> None:
    read, write = pipe
    access_level(logging.INFO)
    token = logs.request_id.set("4f0c5e9a1d2b7c3e8a61")
    try:
        logs.AccessLog(write).write("GET /images 200", method="GET", status=200, caller="alice")
    finally:
        logs.request_id.reset(token)
    [line] = _lines(read)
    assert line == {
        "time": line["time"],
        "level": "INFO",
        "logger": "imagecore.access",
        "message": "GET /images 200",
        "request_id": "4f0c5e9a1d2b7c3e8a61",
        "process": os.getpid(),
        "method": "GET",
        "status": 200,
        "caller": "alice",
    }
    assert isinstance(line["time"], str)
    assert line["time"].endswith("Z")
    assert line["time"][10] == "T"


def test_the_access_log_is_off_when_its_logger_is_above_info(
    pipe: tuple[int, int], access_level: Callable[[int], None]
) -> None:
    read, write = pipe
    access_level(logging.WARNING)
    logs.AccessLog(write).write("GET /images 200", status=200)
    assert _lines(read) == []


def test_lines_written_behind_wait_for_the_writer_and_all_are_written_at_the_end(
    pipe: tuple[int, int], access_level: Callable[[int], None]
) -> None:
    read, write = pipe
    access_level(logging.INFO)
    access_log = logs.AccessLog(write)
    with access_log.written_behind(interval=3600):
        access_log.write("GET /images 200", status=200)
        access_log.write("GET /health 200", status=200)
        assert _lines(read) == [], "not written by the request's own thread"
    assert [line["message"] for line in _lines(read)] == ["GET /images 200", "GET /health 200"]
    access_log.write("GET /images 304", status=304)  # once ended, at once again
    assert [line["message"] for line in _lines(read)] == ["GET /images 304"]


def test_lines_written_behind_from_many_threads_arrive_whole_and_once(
    pipe: tuple[int, int], access_level: Callable[[int], None]
) -> None:
    read, write = pipe
    access_level(logging.INFO)
    access_log = logs.AccessLog(write)
    received = bytearray()
    reader = threading.Thread(target=_read_until_closed, args=(read, received))
    reader.start()

    def requests(thread: int) -> None:
        for n in range(2000):
            access_log.write(f"GET /images/{thread}-{n} 200", status=200)

    with access_log.written_behind(interval=0.001), ThreadPoolExecutor(4) as pool:
        list(pool.map(requests, range(4)))
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, write)  # the pipe's one writing end closed: the reader sees its end
    os.close(devnull)
    reader.join()

    messages = [json.loads(line)["message"] for line in received.decode().splitlines()]
    assert sorted(messages) == sorted(
        f"GET /images/{thread}-{n} 200" for thread in range(4) for n in range(2000)
    )


def _read_until_closed(read: int, into: bytearray) -> None:
    os.set_blocking(read, True)
    while chunk := os.read(read, 65536):
        into.extend(chunk)


@pytest.mark.parametrize("sizes", [[10] * 1000, [select.PIPE_BUF], [3000, 3000, 10, 4096, 1]])
def test_lines_written_behind_go_out_in_pieces_a_pipe_keeps_whole(sizes: list[int]) -> None:
    lines = [b"x" * (size - 1) + b"\n" for size in sizes]
    pieces = list(logs._whole_lines_in_batches(lines))
    assert b"".join(pieces) == b"".join(lines)
    for piece in pieces:
        assert piece.endswith(b"\n")
        # Beyond PIPE_BUF only a single line too long for one piece.
        assert len(piece) <= select.PIPE_BUF or piece.count(b"\n") == 1


def test_other_lines_are_json_with_their_extras_and_traceback() -> None:
    formatter = logs.JsonLinesFormatter()
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("imagecore.http").makeRecord(
            "imagecore.http", logging.ERROR, __file__, 1, "failed %s", ("x",), None
        )
        record.exc_info = sys.exc_info()
    record.request_id = None
    record.key = "blobs/a"
    line = json.loads(formatter.format(record))
    assert line["level"] == "ERROR"
    assert line["message"] == "failed x"
    assert line["key"] == "blobs/a"
    assert "ValueError: boom" in line["exc_info"]
