"""The worker Lambda's handler: jobs from the queue (see `queue_worker`), with its container
built on import from the function's environment."""

from __future__ import annotations

from typing import Any

from entrypoints.aws_lambda.queue_worker import worker_for
from entrypoints.aws_lambda.runtime import container_from_environment

# Built on import, so a warm instance reuses the clients and the container across invocations.
_container = container_from_environment()
_worker = worker_for(_container)


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return _worker.handle(event)
