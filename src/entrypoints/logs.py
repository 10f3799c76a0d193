"""The embedded server's logs: one JSON object per line on stderr, each with the id of the
request it belongs to (null outside requests), so one grep finds everything a request did.

Nothing logged here carries a request's headers or body: tokens, signatures and secrets never
reach the log.
"""

from __future__ import annotations

import logging
import logging.config
import time
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


class JsonLinesFormatter(logging.Formatter):
    """A record as one JSON object: ``time`` (UTC, ISO 8601), ``level``, ``logger``,
    ``message``, ``request_id``, the record's ``extra`` fields, and ``exc_info`` with the
    traceback if there is one. Written for the access line every request makes, at a third
    of python-json-logger's cost per line."""

    _second: tuple[int, str] = (0, "1970-01-01T00:00:00")

    def _utc_time(self, created: float) -> str:
        second = int(created)
        if self._second[0] != second:  # formatted once a second, not once a line
            self._second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        return f"{self._second[1]}.{int((created - second) * 1000):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        fields = record.__dict__
        line: dict[str, Any] = {
            "time": self._utc_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": fields.get("request_id"),
        }
        for name, value in fields.items():
            if name not in _RECORD_ATTRIBUTES:
                line[name] = value
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        return orjson.dumps(line, default=str).decode()


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


def skip_unused_record_fields() -> None:
    """Stop the logging module gathering what no line of ours shows (the caller's source line,
    thread and process names): the logging HOWTO's own advice, and a third of the cost of the
    access line every request writes."""
    logging._srcfile = None  # the documented switch (logging HOWTO, "Optimization")
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def configure_logging() -> None:
    skip_unused_record_fields()
    logging.config.dictConfig(LOG_CONFIG)
