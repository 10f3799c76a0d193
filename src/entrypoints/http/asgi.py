"""The app `imagecore serve` hands the ASGI server, by import string: the composition of the
HTTP API from the settings in the environment, through the container."""

from __future__ import annotations

from starlette.applications import Starlette

from entrypoints.container import build_container
from entrypoints.settings import Settings


def app_from_environment() -> Starlette:
    """The factory `imagecore serve` hands the ASGI server: settings come from the environment."""
    app: Starlette = build_container(Settings.from_env()).http_app()
    return app
