"""Bodies that arrive slowly, or not at all, cost no worker thread and cannot crowd out the rest:
everyone else's reads, edits, deletes, uploads and health checks are answered while they wait;
a body must keep to a minimum rate; uploads in flight are bounded, in all and per user; a body
whose framing breaks gets the documented 400."""

from __future__ import annotations

import contextlib
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.http.test_misbehaving_clients import json_body, raw_exchange, status_of
from tests.support.api_client import Api, path
from tests.support.backend_server import running_server
from tests.support.sample_images import image_bytes, large_png

PNG = image_bytes("image/png", 64, 64)
FORM_HEAD = b'--b0undary\r\nContent-Disposition: form-data; name="expires"\r\n\r\n'
"""The start of a post to an upload link, its fields still to come."""


@contextlib.contextmanager
def stalled(port: int, heads: list[bytes]) -> Iterator[list[socket.socket]]:
    """A connection per head, each having sent its head and the start of its body, and then
    nothing more while the block runs."""
    connections = []
    try:
        for head in heads:
            connection = socket.create_connection(("127.0.0.1", port), timeout=30)
            connections.append(connection)
            connection.sendall(head)
        time.sleep(0.5)  # every request is now waiting on its body in the server
        yield connections
    finally:
        for connection in connections:
            connection.close()


def upload_head(token: str, extra: bytes = b"") -> bytes:
    return (
        b"POST /images?title=stalled HTTP/1.1\r\nHost: test\r\n"
        + f"Authorization: Bearer {token}\r\n".encode()
        + b"Content-Type: image/png\r\nContent-Length: 1000000\r\n"
        + extra
        + b"\r\n"
        + PNG[:10]
    )


def link_head() -> bytes:
    upload_id = "01J" + "".join(secrets.choice("ABCDEFGHJKMNPQRSTVWXYZ") for _ in range(23))
    return (
        f"POST /uploads/{upload_id} HTTP/1.1\r\nHost: test\r\n".encode()
        + b"Content-Type: multipart/form-data; boundary=b0undary\r\n"
        + b"Content-Length: 1000000\r\n\r\n"
        + FORM_HEAD
    )


def test_sixty_stalled_bodies_leave_health_reads_edits_deletes_and_uploads_answered(
    api: Api, alice: str, bob: str
) -> None:
    kept = api.uploaded(alice)
    doomed = api.uploaded(alice)
    # Half post to an upload link with no credential yet, half are uploads of ten users.
    heads = [link_head() for _ in range(30)]
    heads += [upload_head(api.token(f"{bob}-{n % 10}")) for n in range(30)]
    quick = httpx.Client(base_url=api.server.url, timeout=10)

    with stalled(api.server.port, heads), quick:
        assert quick.get("/health").status_code == 200
        assert quick.get(path(kept), headers=api.auth(alice)).status_code == 200
        edited = quick.patch(path(kept), headers=api.auth(alice), json={"title": "still here"})
        assert edited.status_code == 200, edited.text
        assert quick.delete(path(doomed), headers=api.auth(alice)).status_code == 204
        files = {"file": ("new.png", PNG, "image/png")}
        uploaded = quick.post("/images", headers=api.auth(alice), files=files)
        assert uploaded.status_code == 201, uploaded.text

    listed = {image["image_id"] for image in api.list_all(alice, user_id=alice)}
    assert listed == {uploaded.json()["image_id"], kept["image_id"]}


def test_a_body_sent_slower_than_the_minimum_rate_gets_408_however_short_its_pauses(
    limited: Api, alice: str
) -> None:
    time.sleep(1)  # a token for alice, whatever ran before
    data = large_png(3000)
    head = (
        f"POST /images?title=trickled HTTP/1.1\r\nHost: test\r\n"
        f"Authorization: Bearer {limited.token(alice)}\r\nContent-Type: image/png\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode()
    began = time.monotonic()
    with socket.create_connection(("127.0.0.1", limited.server.port), timeout=30) as connection:
        connection.sendall(head)
        answer = b""
        # 100 bytes every 0.3 s: never a pause of the one-second client timeout, but about 330
        # bytes a second, under the 1,024 the server asks for at least.
        for offset in range(0, len(data), 100):
            try:
                connection.sendall(data[offset : offset + 100])
            except OSError:
                break
            connection.settimeout(0.3)
            with contextlib.suppress(TimeoutError):
                if answer := connection.recv(65536):
                    break
        connection.settimeout(10)
        while b"\r\n\r\n" not in answer and (more := connection.recv(65536)):
            answer += more
    assert status_of(answer) == 408, answer
    assert json_body(answer)["error"] == "RequestTimeout"
    assert "slower than 1024 bytes a second" in json_body(answer)["message"]
    assert time.monotonic() - began < len(data) / 100 * 0.3, "the whole body was taken"
    time.sleep(1)
    assert limited.list(alice).json()["images"] == []


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """A server that takes three uploads at once, two of them one user's."""
    root: Path = tmp_path_factory.mktemp("small-capacity")
    with running_server(
        "filesystem", root, IMAGECORE_MAX_UPLOADS="3", IMAGECORE_MAX_UPLOADS_PER_USER="2"
    ) as server:
        api = Api(server)
        yield api
        api.client.close()


def test_uploads_in_flight_are_bounded_per_user_and_in_all_and_places_come_back(
    small: Api, alice: str, bob: str
) -> None:
    carol = f"carol-{secrets.token_hex(4)}"
    port = small.server.port
    with stalled(port, [upload_head(small.token(alice)) for _ in range(2)]):
        third = small.upload(alice)
        assert third.status_code == 429, third.text
        assert third.json()["error"] == "TooManyRequests"
        assert "2 uploads under way" in third.json()["message"]
        assert int(third.headers["retry-after"]) >= 1

        with stalled(port, [upload_head(small.token(bob))]):
            busy = small.upload(carol)
            assert busy.status_code == 503, busy.text
            assert set(busy.json()) == {"error", "message", "request_id"}
            assert busy.json()["error"] == "ServiceUnavailable"
            assert int(busy.headers["retry-after"]) >= 1
            assert small.client.get("/health").status_code == 200
            assert small.list(carol).status_code == 200

    # The stalled clients went away: their places are free again.
    deadline = time.monotonic() + 10
    while (answer := small.upload(carol)).status_code != 201 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert answer.status_code == 201, answer.text


def test_posts_to_upload_links_take_no_upload_place_before_their_fields_are_checked(
    small: Api, alice: str
) -> None:
    with stalled(small.server.port, [link_head() for _ in range(10)]):
        assert small.upload(alice).status_code == 201


@pytest.mark.parametrize(
    ("method", "target", "content_type", "chunks"),
    [
        ("POST", "/images?title=x", "image/png", b"5\r\nhello\r\nZZ\r\nbad\r\n0\r\n\r\n"),
        ("POST", "/uploads", "application/json", b"2\r\n{}\r\nnot a chunk\r\n"),
    ],
    ids=["upload", "json"],
)
def test_a_body_with_malformed_chunked_framing_gets_the_documented_400(
    api: Api, alice: str, method: str, target: str, content_type: str, chunks: bytes
) -> None:
    answer = raw_exchange(
        api.server,
        f"{method} {target} HTTP/1.1\r\nHost: test\r\n".encode()
        + f"Authorization: Bearer {api.token(alice)}\r\nContent-Type: {content_type}\r\n".encode()
        + b"Transfer-Encoding: chunked\r\n\r\n"
        + chunks,
    )
    assert status_of(answer) == 400, answer
    body = json_body(answer)
    assert set(body) == {"error", "message", "request_id"}
    assert body["error"] == "InvalidInput"
    assert "chunked framing" in body["message"]
