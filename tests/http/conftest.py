"""The servers the HTTP tests talk to: one per backend of tests/support/backends.py for the
session (``server``, ``api``), and one per backend with a small rate limit and a one-second
client timeout (``limited``), for the tests of those guards."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.api_client import Api
from tests.support.backend_server import BURST, running_server
from tests.support.backends import BACKENDS
from tests.support.http_server import ServerProcess

BACKEND_NAMES = [backend.name for backend in BACKENDS]


@pytest.fixture(scope="session", params=BACKEND_NAMES)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with running_server(
        request.param, tmp_path_factory.mktemp(f"server-{request.param}")
    ) as process:
        yield process


@pytest.fixture(scope="session")
def api(server: ServerProcess) -> Iterator[Api]:
    client = Api(server)
    yield client
    client.client.close()


# Session-scoped, though only test_rate_limit, test_misbehaving_clients and test_server_logs use
# it: a server of its own per backend (a moto table and bucket for aws) is started once, not once
# per module. Each test has users of its own, so one test's spent burst never limits another's.
@pytest.fixture(scope="session", params=BACKEND_NAMES)
def limited(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    root = tmp_path_factory.mktemp(f"limited-{request.param}")
    with running_server(
        request.param,
        root,
        IMAGECORE_RATE_LIMIT_PER_SECOND="1",
        IMAGECORE_RATE_LIMIT_BURST=str(BURST),
        IMAGECORE_CLIENT_TIMEOUT_SECONDS="1",
    ) as server:
        api = Api(server)
        # A new connection per request: this server closes a connection idle for a second (the
        # client timeout), and a request sent on it at that moment would be lost in the race.
        api.client.close()
        api.client = httpx.Client(
            base_url=server.url, timeout=30, limits=httpx.Limits(max_keepalive_connections=0)
        )
        yield api
        api.client.close()


@pytest.fixture
def alice() -> str:
    return f"alice-{secrets.token_hex(4)}"


@pytest.fixture
def bob() -> str:
    return f"bob-{secrets.token_hex(4)}"


@pytest.fixture
def data_root(server: ServerProcess) -> Path:
    return server.data_dir.parent
