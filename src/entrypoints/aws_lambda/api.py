"""The API Lambda's handler: the HTTP API behind API Gateway (see `api_gateway`).

Kept apart from `api_gateway` because it builds its container on import, from the function's
environment, as Lambda's init phase should."""

from __future__ import annotations

from entrypoints.aws_lambda.api_gateway import create_handler
from entrypoints.aws_lambda.runtime import container_from_environment

# Built on import, so a warm instance reuses the clients and the container across invocations.
handler = create_handler(container_from_environment())
