"""Runs moto server as `python -m moto.server` does, but handles one request at a time.

moto's backends are not thread-safe: two overlapping DynamoDB transactions can make the
threaded server answer 500 while it copies a table another request is changing. A real service
(and LocalStack) applies each request atomically; serving them one after another gives the tests
that behaviour. Connections are still accepted concurrently.

Usage: python -m tests.support.moto_server PORT
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


class OneRequestAtATime:
    def __init__(self, app: Any) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        with self._lock:
            # Read the whole answer inside the lock: moto builds it from shared state.
            return list(self._app(environ, start_response))


def main() -> None:
    port = int(sys.argv[1])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple("127.0.0.1", port, OneRequestAtATime(app), threaded=True)


if __name__ == "__main__":
    main()
