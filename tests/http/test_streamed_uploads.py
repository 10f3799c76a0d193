"""Uploads as they stream in, form or raw body, through a real server: fields sent after the file
count, a body is refused (413) as soon as it grows past the limit, and a 200 MiB upload goes
through without growing the server's memory."""

from __future__ import annotations

import contextlib
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.support.api_assertions import assert_error, assert_matches_schema
from tests.support.api_client import Api
from tests.support.backend_server import MAX_UPLOAD_BYTES
from tests.support.http_server import ServerProcess
from tests.support.sample_images import image_bytes

BOUNDARY = "imagecore-test-boundary"


def form_parts(*parts: tuple[str, bytes, str | None]) -> bytes:
    """A multipart/form-data body with the parts in exactly this order."""
    body = b""
    for name, value, filename in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        body += value + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


def post_form(api: Api, user: str, body: bytes, **headers: str) -> httpx.Response:
    return api.client.post(
        "/images",
        content=body,
        headers={
            **api.auth(user),
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            **headers,
        },
    )


def test_fields_sent_after_the_file_are_kept(api: Api, alice: str) -> None:
    body = form_parts(
        ("title", b"before", None),
        ("file", image_bytes(), "a.png"),
        ("tags", b"late,tags", None),
        ("metadata", b'{"k": 1}', None),
    )
    response = post_form(api, alice, body)
    assert response.status_code == 201, response.text
    assert (response.json()["title"], response.json()["tags"]) == ("before", ["late", "tags"])
    assert response.json()["metadata"] == {"k": 1}


def test_an_unknown_field_after_the_file_refuses_the_upload_and_stores_nothing(
    api: Api, alice: str
) -> None:
    body = form_parts(("file", image_bytes(), "a.png"), ("owner", b"bob", None))
    assert_error(post_form(api, alice, body), 400, "InvalidInput")
    assert api.list_all(alice, user_id=alice) == []


def test_a_raw_image_body_with_fields_as_parameters_is_an_upload(api: Api, alice: str) -> None:
    data = image_bytes("image/jpeg", 9, 4)
    response = api.client.post(
        "/images",
        content=data,
        params={"title": "raw", "tags": "a,b", "filename": "r.jpg", "visibility": "public"},
        headers={**api.auth(alice), "Content-Type": "image/jpeg"},
    )
    assert response.status_code == 201, response.text
    image = response.json()
    assert_matches_schema(image, "Image")
    assert (image["title"], image["tags"], image["filename"]) == ("raw", ["a", "b"], "r.jpg")
    assert (image["width"], image["height"], image["size"]) == (9, 4, len(data))


def test_a_body_that_grows_past_the_limit_is_413_and_leaves_nothing(api: Api, alice: str) -> None:
    # A chunked body (no Content-Length), so the limit is only met as the bytes arrive. The
    # client sends past the limit and then waits, without ever finishing: the 413 must come.
    url = httpx.URL(api.server.url)
    with socket.create_connection((url.host, url.port), timeout=30) as connection:
        connection.sendall(
            b"POST /images HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\n"
            b"Transfer-Encoding: chunked\r\n"
            + f"Authorization: Bearer {api.token(alice)}\r\n\r\n".encode()
        )
        block = image_bytes() + b"\0" * 65536
        sent = 0
        with contextlib.suppress(OSError):  # the server may close as soon as it answered
            while sent <= MAX_UPLOAD_BYTES + len(block):
                connection.sendall(f"{len(block):x}\r\n".encode() + block + b"\r\n")
                sent += len(block)
        answer = b""
        while b"\r\n\r\n" not in answer:
            piece = connection.recv(65536)
            if not piece:
                break
            answer += piece
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert api.list_all(alice, user_id=alice) == []
    assert api.client.get("/health").status_code == 200


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def server_processes(root: int) -> list[int]:
    """The server and its workers (granian runs the app in a child process)."""
    found = [root]
    for child in Path(f"/proc/{root}/task/{root}/children").read_text().split():
        found += server_processes(int(child))
    return found


def test_a_200_mib_upload_streams_through_without_growing_the_servers_memory(
    tmp_path: Path,
) -> None:
    mib = 1024 * 1024
    server = ServerProcess(
        tmp_path / "data",
        IMAGECORE_BACKEND="filesystem",
        IMAGECORE_MAX_UPLOAD_BYTES=str(300 * mib),
    ).start()
    try:
        token = server.token("alice")
        headers = {"Authorization": f"Bearer {token}"}
        jpeg = image_bytes("image/jpeg", 64, 48)
        warm = httpx.post(
            f"{server.url}/images", headers=headers, files={"file": ("w.jpg", jpeg)}, timeout=60
        )
        assert warm.status_code == 201
        assert server.process is not None
        processes = server_processes(server.process.pid)
        before = {pid: peak_rss_kib(pid) for pid in processes}
        size = 200 * mib
        head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="b.jpg"'
        head += "\r\nContent-Type: image/jpeg\r\n\r\n"
        tail = f"\r\n--{BOUNDARY}--\r\n".encode()
        padding = size - len(jpeg)

        def body() -> Iterator[bytes]:
            yield head.encode() + jpeg  # a real JPEG; what follows its end is padding
            sent = 0
            block = secrets.token_bytes(mib)
            while sent < padding:
                piece = block[: min(mib, padding - sent)]
                sent += len(piece)
                yield piece
            yield tail

        response = httpx.post(
            f"{server.url}/images",
            content=body(),
            headers={**headers, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
            timeout=600,
        )

        assert response.status_code == 201, response.text
        assert response.json()["size"] == size
        growth = {pid: peak_rss_kib(pid) - before[pid] for pid in processes}
        assert max(growth.values()) < 64 * 1024, f"peak RSS grew by {growth} KiB"
    finally:
        server.stop()
