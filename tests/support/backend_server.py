"""`imagecore serve` on a backend of tests/support/backends.py, with the defaults of the suites
that talk to a real server."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from tests.support.backends import backend as backend_named
from tests.support.http_server import ServerProcess

MAX_UPLOAD_BYTES = 2 * 1024 * 1024
"""The upload limit of every server started here."""

BURST = 5
"""The rate limit's burst of the rate-limited servers (the ``limited`` fixture of
tests/http/conftest.py)."""


@contextlib.contextmanager
def running_server(backend: str, root: Path, **environ: str) -> Iterator[ServerProcess]:
    """`imagecore serve` on ``backend`` (a fresh table and bucket on the moto server for aws),
    with ``environ`` on top of the test defaults, stopped on exit."""
    with contextlib.ExitStack() as stack:
        environ = {
            "IMAGECORE_BACKEND": backend,
            "IMAGECORE_MAX_UPLOAD_BYTES": str(MAX_UPLOAD_BYTES),
            # The suite sends many requests per user quickly; the limit has tests of its own.
            "IMAGECORE_RATE_LIMIT_BURST": "1000000",
            **environ,
        }
        environ |= stack.enter_context(backend_named(backend).server_environment())
        process = ServerProcess(root / "data", **environ).start()
        stack.callback(process.stop)
        yield process
