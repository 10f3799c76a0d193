"""Requests no operation serves (an unknown path, a method a path does not take, bytes that are
no HTTP): answered in the error format, with the methods allowed, and the server stays up."""

from __future__ import annotations

import httpx

from tests.support.api_assertions import assert_error
from tests.support.api_client import Api


def test_unknown_routes_and_methods_answer_in_the_error_format(api: Api, alice: str) -> None:
    assert_error(api.client.get("/nowhere"), 404, "NotFound")
    not_allowed = api.client.put("/images", headers=api.auth(alice))
    assert_error(not_allowed, 405, "MethodNotAllowed")
    assert set(not_allowed.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}
    on_an_image = api.client.post("/images/01JAAAAAAAAAAAAAAAAAAAAAAA", headers=api.auth(alice))
    assert_error(on_an_image, 405, "MethodNotAllowed")
    assert set(on_an_image.headers["allow"].split(", ")) == {"GET", "HEAD", "PATCH", "DELETE"}


def test_the_server_answers_garbage_requests_without_falling_over(api: Api) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", api.server.port), timeout=5) as sock:
        sock.sendall(b"\x00\xff GARBAGE \r\n\r\n")
        sock.recv(1024)
    assert httpx.get(f"{api.server.url}/health").status_code == 200
