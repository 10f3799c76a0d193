"""The log lines of the embedded server: JSON objects, one a line, with the request's id."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator

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
