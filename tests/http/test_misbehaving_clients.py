"""Clients that send too slowly or too much, on each backend (``limited``: a one-second client
timeout): a stalled body gets 408 and stores nothing, a head never finished is cut off, heads
past the limits get 431, and an answer given before the body was read closes the connection."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest

from entrypoints.cli.server import READ_BUFFER_BYTES
from tests.support.api_client import Api
from tests.support.http_server import ServerProcess
from tests.support.sample_images import image_bytes


def raw_exchange(server: ServerProcess, request: bytes, wait: float = 15) -> bytes:
    """What the server answers to ``request`` sent as is on a new connection, until it closes
    the connection or ``wait`` seconds pass."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=wait) as connection:
        connection.sendall(request)
        answer = b""
        try:
            while chunk := connection.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer and _complete(answer):
                    break
        except TimeoutError:
            pass
        return answer


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return True


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def json_body(answer: bytes) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(answer.partition(b"\r\n\r\n")[2])
    return body


def test_a_client_that_stops_sending_an_upload_gets_408_and_nothing_is_stored(
    limited: Api, alice: str
) -> None:
    time.sleep(1)  # a token for alice, whatever ran before
    data = image_bytes("image/png", 64, 64)
    head = (
        f"POST /images?title=stalled HTTP/1.1\r\nHost: test\r\n"
        f"Authorization: Bearer {limited.token(alice)}\r\nContent-Type: image/png\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode()
    answer = raw_exchange(limited.server, head + data[:20])
    assert status_of(answer) == 408, answer
    assert json_body(answer)["error"] == "RequestTimeout"
    time.sleep(1)
    assert limited.list(alice).json()["images"] == []


def test_a_client_that_stops_sending_a_json_body_gets_408(limited: Api, alice: str) -> None:
    time.sleep(1)
    head = (
        f"POST /uploads HTTP/1.1\r\nHost: test\r\n"
        f"Authorization: Bearer {limited.token(alice)}\r\nContent-Type: application/json\r\n"
        f"Content-Length: 100\r\n\r\n"
    ).encode()
    answer = raw_exchange(limited.server, head + b'{"content_type": ')
    assert status_of(answer) == 408, answer
    assert json_body(answer)["error"] == "RequestTimeout"


def test_a_client_that_never_finishes_its_headers_is_cut_off(limited: Api) -> None:
    began = time.monotonic()
    answer = raw_exchange(limited.server, b"GET /health HTTP/1.1\r\nHost: test\r\nX-Slow: 1\r\n")
    assert b"200 OK" not in answer
    assert time.monotonic() - began < 10, "the connection was held open"


def test_headers_past_the_apps_limit_get_431_in_the_error_format(limited: Api) -> None:
    answer = raw_exchange(
        limited.server,
        b"GET /health HTTP/1.1\r\nHost: test\r\nX-Huge: " + b"a" * 40_000 + b"\r\n\r\n",
    )
    assert status_of(answer) == 431, answer[:200]
    assert json_body(answer)["error"] == "HeadersTooLarge"


def test_headers_within_the_limit_are_served(limited: Api) -> None:
    answer = raw_exchange(
        limited.server,
        b"GET /health HTTP/1.1\r\nHost: test\r\nX-Big: " + b"a" * 30_000 + b"\r\n\r\n",
    )
    assert status_of(answer) == 200, answer[:200]


@pytest.mark.parametrize(
    "headers",
    [
        b"X-Huge: " + b"a" * (READ_BUFFER_BYTES + 100_000) + b"\r\n",
        b"".join(b"X-Many-%d: 1\r\n" % n for n in range(200)),
    ],
    ids=["past the read buffer", "too many headers"],
)
def test_heads_the_server_cannot_hold_get_its_431(limited: Api, headers: bytes) -> None:
    answer = raw_exchange(limited.server, b"GET /health HTTP/1.1\r\nHost: test\r\n" + headers)
    assert status_of(answer) == 431, answer[:200]


def test_an_answer_given_before_the_body_was_read_closes_the_connection(
    api: Api, alice: str
) -> None:
    refused = raw_exchange(
        api.server,
        b"POST /images HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer nonsense\r\n"
        b"Content-Type: image/png\r\nContent-Length: 100\r\n\r\n0123456789",
    )
    assert status_of(refused) == 401
    assert b"\r\nconnection: close\r\n" in refused.lower()

    accepted = api.upload(alice)
    assert accepted.status_code == 201
    assert "close" not in accepted.headers.get("connection", "")
