"""The API Lambda's handler: the HTTP API behind API Gateway (see `api_gateway`)."""

from __future__ import annotations

from entrypoints.api_gateway import create_handler
from entrypoints.lambda_runtime import container_from_environment

# Built on import, so a warm instance reuses the clients and the container across invocations.
handler = create_handler(container_from_environment())
