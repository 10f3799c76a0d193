"""The service's logs: one JSON object per line on stderr, each with the id of the request it
belongs to (null outside requests), so one grep finds everything a request did. The embedded
server and the worker configure them with `configure_logging`, the Lambda functions with
`configure_lambda_logging`.

Nothing logged here carries a request's headers or body: tokens, signatures and secrets never
reach the log.
"""

from __future__ import annotations

import contextlib
import logging
import logging.config
import os
import select
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import orjson

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


class RequestIdFilter(logging.Filter):
    """Stamps each record with the id of the request being served where it was made."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


# What every LogRecord has; anything else on a record came in ``extra`` and is logged too.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "request_id"}


class _UtcTimes:
    """Times as ISO 8601 in UTC with milliseconds; the date and time of day are formatted once
    a second, not once a line."""

    _second: tuple[int, str] = (0, "1970-01-01T00:00:00")

    def format(self, moment: float) -> str:
        second = int(moment)
        if self._second[0] != second:
            self._second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        return f"{self._second[1]}.{int((moment - second) * 1000):03d}Z"


_utc_times = _UtcTimes()

_time_field = "time"
"""The name of each line's time: ``time``, or ``timestamp`` on Lambda (see
`configure_lambda_logging`)."""


class JsonLinesFormatter(logging.Formatter):
    """A record as one JSON object: ``time`` (UTC, ISO 8601; ``timestamp`` on Lambda), ``level``,
    ``logger``,
    ``message``, ``request_id``, ``process`` (the id of the server worker that wrote it), the
    record's ``extra`` fields, and ``exc_info`` with the traceback if there is one."""

    def format(self, record: logging.LogRecord) -> str:
        fields = record.__dict__
        line: dict[str, Any] = {
            _time_field: _utc_times.format(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": fields.get("request_id"),
            "process": record.process,
        }
        for name, value in fields.items():
            if name not in _RECORD_ATTRIBUTES:
                line[name] = value
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        return orjson.dumps(line, default=str).decode()


ACCESS_LOGGER = "imagecore.access"


class _Process:
    """This process's id, read once and again after a fork: getpid(2) is a system call each
    time (glibc caches it no more), and it was one per request."""

    def __init__(self) -> None:
        self.id = os.getpid()
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        self.id = os.getpid()


_process = _Process()


WRITE_BEHIND_SECONDS = 0.1
"""How long an access line written behind may wait: the lines of this long go out in one write."""
MAX_LINES_BEHIND = 10_000
"""The most lines kept waiting; past this (stderr blocked), each is written as it is made."""


class AccessLog:
    """The one line each request adds, the same JSON object JsonLinesFormatter makes of a
    record of the ``imagecore.access`` logger with these fields as extras, but written
    straight to stderr: the logging module's record, filters, handler lock and formatter took
    a third of a metadata read's time (13 of 38 us in process). Each line is one write(2), so
    it stays whole beside other threads' lines. Turned off like any logger: set
    ``imagecore.access`` above INFO.

    Inside ``written_behind`` (a long-running server), the lines are gathered and a thread of
    their own writes each tenth of a second's at once, in writes of whole lines and at most
    PIPE_BUF bytes: on the event loop a write to stderr handed the GIL to the ASGI server's I/O
    threads and cost a fifth of a metadata read's throughput. The lines of the last tenth of a
    second before a crash may be lost."""

    def __init__(self, fd: int = 2) -> None:
        self._logger = logging.getLogger(ACCESS_LOGGER)
        self._fd = fd
        self._behind: list[bytes] | None = None

    def write(self, message: str, **fields: object) -> None:
        if not self._logger.isEnabledFor(logging.INFO):
            return
        line = {
            _time_field: _utc_times.format(time.time()),
            "level": "INFO",
            "logger": ACCESS_LOGGER,
            "message": message,
            "request_id": request_id.get(),
            "process": _process.id,
            **fields,
        }
        encoded = orjson.dumps(line, default=str, option=orjson.OPT_APPEND_NEWLINE)
        behind = self._behind
        if behind is not None and len(behind) < MAX_LINES_BEHIND:
            behind.append(encoded)  # one step under the GIL: no lock
        else:
            self._write(encoded)

    @contextlib.contextmanager
    def written_behind(self, interval: float = WRITE_BEHIND_SECONDS) -> Iterator[None]:
        """Lines made inside are written by a thread of their own, every ``interval`` seconds
        those made since; all are written by the time it ends."""
        behind: list[bytes] = []
        stopped = threading.Event()

        def write_what_waits() -> None:
            count = len(behind)
            for batch in _whole_lines_in_batches(behind[:count]):
                self._write(batch)
            del behind[:count]  # in one step: lines appended meanwhile stay

        def writer() -> None:
            while not stopped.wait(interval):
                write_what_waits()

        thread = threading.Thread(target=writer, name="imagecore-access-log", daemon=True)
        self._behind = behind
        thread.start()
        try:
            yield
        finally:
            self._behind = None
            stopped.set()
            thread.join()
            write_what_waits()

    def _write(self, data: bytes) -> None:
        # A try, not contextlib.suppress: this is every request's path.
        try:  # noqa: SIM105
            os.write(self._fd, data)
        except OSError:  # a lost log line never fails a request (as logging's handlers behave)
            pass


def _whole_lines_in_batches(lines: list[bytes]) -> Iterator[bytes]:
    """``lines`` joined into as few pieces as can each be written whole: up to PIPE_BUF bytes,
    which a write to a pipe that other processes (the other workers) write to keeps whole,
    and which a write to a file or a terminal writes at once."""
    batch: list[bytes] = []
    size = 0
    for line in lines:
        if batch and size + len(line) > select.PIPE_BUF:
            yield b"".join(batch)
            batch, size = [], 0
        batch.append(line)
        size += len(line)
    if batch:
        yield b"".join(batch)


LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "entrypoints.logs.RequestIdFilter"}},
    "formatters": {"json": {"()": "entrypoints.logs.JsonLinesFormatter"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "formatter": "json",
            "filters": ["request_id"],
        }
    },
    # The server's own loggers (granian's) go the same way, so every line is JSON.
    "loggers": {
        "_granian": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "granian.access": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
    "root": {"handlers": ["stderr"], "level": "INFO"},
}


def configure_logging() -> None:
    logging.config.dictConfig(LOG_CONFIG)


class StderrLines(logging.Handler):
    """Each record as one line, in one write(2) to file descriptor 2, as the access log writes
    its lines: whole beside other threads' lines, and in order with the access log's."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            os.write(2, (self.format(record) + "\n").encode())
        except Exception:  # as logging's own handlers: a lost line never fails the caller
            self.handleError(record)


LAMBDA_LOG_CONFIG: dict[str, Any] = {
    **LOG_CONFIG,
    "handlers": {
        "stderr": {
            "()": "entrypoints.logs.StderrLines",
            "formatter": "json",
            "filters": ["request_id"],
        }
    },
    # libvips says at INFO when each of its thread pools is done: a line per image operation,
    # paid for by the line in CloudWatch.
    "loggers": {"pyvips": {"level": "WARNING"}},
    "root": {"handlers": ["stderr"], "level": "INFO"},
}


def configure_lambda_logging() -> None:
    """Every logger's records as JSON lines on stderr, as the embedded server writes them, in
    place of the handler the Lambda runtime put on the root logger (plain text, or its own JSON
    without the request id). Lambda sends each line to CloudWatch as it is; its time is named
    ``timestamp`` there, as Lambda's own JSON lines name it: with ``level``, what Lambda reads
    to filter a JSON line by its level (a line without a timestamp it takes for INFO).

    The level is the function's application log level (``AWS_LAMBDA_LOG_LEVEL``, which Lambda
    sets from its logging configuration), else INFO."""
    global _time_field
    _time_field = "timestamp"
    configured = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    level = _LAMBDA_LEVELS.get(configured, configured)
    if not isinstance(logging.getLevelNamesMapping().get(level), int):
        level = "INFO"
    logging.config.dictConfig(
        {**LAMBDA_LOG_CONFIG, "root": {"handlers": ["stderr"], "level": level}}
    )


_LAMBDA_LEVELS = {"TRACE": "DEBUG", "WARN": "WARNING", "FATAL": "CRITICAL"}
"""Lambda's names of the log levels that Python names otherwise."""
