"""The app `imagecore serve` hands the ASGI server, by import string: the composition of the
HTTP API from the settings in the environment, through the container."""

from __future__ import annotations

from starlette.applications import Starlette

from entrypoints.container import build_container
from entrypoints.settings import Settings


def app_from_environment() -> Starlette:
    """The factory `imagecore serve` hands the ASGI server: settings come from the environment.
    Each worker process calls it; the limits are the server's, shared by all its workers."""
    container = build_container(Settings.from_env())
    app: Starlette = container.http_app(
        limiter=container.server_rate_limiter(),
        uploads=container.server_upload_capacity(),
        access_lines_behind=True,
    )
    return app
