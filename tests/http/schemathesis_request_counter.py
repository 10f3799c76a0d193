"""Schemathesis hooks the fuzz test loads into the `st` process (``SCHEMATHESIS_HOOKS``): count
every request that got an answer, and write the count on exit to the file named by the
environment variable ``IMAGECORE_FUZZ_REQUEST_COUNT_FILE``; and send tus's bodies
(application/offset+octet-stream, raw bytes) as schemathesis sends application/octet-stream."""

from __future__ import annotations

import atexit
import os
import threading
from pathlib import Path

import schemathesis

REQUEST_COUNT_FILE = "IMAGECORE_FUZZ_REQUEST_COUNT_FILE"

schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")

_lock = threading.Lock()
_sent = 0


@schemathesis.hook
def after_call(
    context: schemathesis.HookContext, case: schemathesis.Case, response: schemathesis.Response
) -> None:
    global _sent
    with _lock:  # the workers are threads
        _sent += 1


@atexit.register
def _write_count() -> None:
    Path(os.environ[REQUEST_COUNT_FILE]).write_text(str(_sent))
