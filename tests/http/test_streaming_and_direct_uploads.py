"""Uploads as they stream in (form or raw body), the hostile-file corpus, duplicates skipped by
hash, thumbnails, and direct uploads to the embedded server's own link."""

from __future__ import annotations

import contextlib
import hashlib
import io
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.http.conftest import MAX_UPLOAD_BYTES, Api
from tests.http.helpers import assert_error, assert_matches_schema
from tests.http.server import ServerProcess
from tests.images import image_bytes
from tests.malicious import ACCEPTED, EMPTY, malicious_corpus

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


@pytest.mark.parametrize("hostile", malicious_corpus(), ids=lambda hostile: hostile.name)
def test_every_hostile_file_gets_its_answer_and_the_server_stays_healthy(
    api: Api, alice: str, hostile: object
) -> None:
    from tests.malicious import MaliciousFile

    assert isinstance(hostile, MaliciousFile)
    response = api.upload(alice, hostile.data, filename="x.jpg", client_type="image/jpeg")
    if hostile.expected == ACCEPTED:
        assert response.status_code == 201, response.text
        image = response.json()
        assert (image["content_type"], image["width"], image["height"]) == (
            hostile.content_type,
            hostile.width,
            hostile.height,
        )
    elif hostile.expected == EMPTY:
        assert_error(response, 400, "InvalidInput")
    else:
        assert_error(response, 415, "UnsupportedMediaType")
    assert api.client.get("/health").status_code == 200


def test_a_client_skips_uploading_bytes_it_already_stored(api: Api, alice: str) -> None:
    data = image_bytes(width=13, height=5)
    first = api.uploaded(alice, data=data)
    digest = hashlib.sha256(data).hexdigest()

    for header in ({"X-Content-SHA256": digest}, {"If-None-Match": f'"{digest}"'}):
        again = api.client.post(
            "/images",
            content=b"never read",
            headers={**api.auth(alice), "Content-Type": "image/png", **header},
        )
        assert again.status_code == 200, again.text
        assert again.json()["image_id"] == first["image_id"]
    assert len(api.list_all(alice, user_id=alice)) == 1


def test_bytes_that_are_not_what_the_client_declared_are_refused(api: Api, alice: str) -> None:
    response = api.client.post(
        "/images",
        content=image_bytes(),
        headers={**api.auth(alice), "Content-Type": "image/png", "X-Content-SHA256": "0" * 64},
    )
    assert_error(response, 400, "InvalidInput")
    assert api.list_all(alice, user_id=alice) == []


def test_the_thumbnail_appears_and_is_served(api: Api, alice: str) -> None:
    image = api.uploaded(alice, data=image_bytes("image/jpeg", 1000, 400))
    assert image["thumbnail_status"] == "ready"

    response = api.client.get(
        f"/images/{image['image_id']}/thumbnail", headers=api.auth(alice), follow_redirects=True
    )

    assert response.status_code == 200
    with Image.open(io.BytesIO(response.content)) as thumbnail:
        assert (thumbnail.format, thumbnail.size) == ("JPEG", (256, 102))
    hidden = api.client.get(f"/images/{image['image_id']}/thumbnail", headers=api.auth("eve"))
    assert_error(hidden, 404, "NotFound")


# --- direct uploads to the embedded server's link -----------------------------------------------


def embedded_only(api: Api) -> None:
    if api.server.environ.get("IMAGECORE_BACKEND") == "aws":
        pytest.skip("on the aws backend the link is an S3 presigned POST (test_lambda_worker)")


def slot(api: Api, user: str, **details: object) -> dict[str, object]:
    response = api.client.post(
        "/uploads", headers=api.auth(user), json={"content_type": "image/png", **details}
    )
    assert response.status_code == 201, response.text
    assert_matches_schema(response.json(), "UploadSlot")
    return dict(response.json())


def post_to_slot(
    given: dict[str, object], data: bytes, content_type: str = "image/png", **fields: str
) -> httpx.Response:
    return httpx.post(
        str(given["url"]),
        data={**given["fields"], "Content-Type": content_type, **fields},  # type: ignore[dict-item]
        files={"file": ("big.png", data, content_type)},
        timeout=30,
    )


def test_a_direct_upload_to_the_servers_link_becomes_the_image(api: Api, alice: str) -> None:
    embedded_only(api)
    given = slot(api, alice, title="direct", tags=["x"])
    data = image_bytes(width=20, height=10)

    response = post_to_slot(given, data)

    assert response.status_code == 201, response.text
    image = response.json()
    assert (image["image_id"], image["title"], image["tags"]) == (
        given["upload_id"],
        "direct",
        ["x"],
    )
    assert api.client.get(str(given["image_url"]), headers=api.auth(alice)).status_code == 200
    assert_error(post_to_slot(given, data), 409, "Conflict")


def test_a_direct_upload_link_refuses_forged_fields_wrong_types_and_what_it_never_allowed(
    api: Api, alice: str
) -> None:
    embedded_only(api)
    given = slot(api, alice)
    assert_error(post_to_slot(given, image_bytes(), signature="0" * 64), 401, "Unauthenticated")
    assert_error(post_to_slot(given, b"<html></html>", "text/html"), 415, "UnsupportedMediaType")
    assert_error(post_to_slot(given, b"<html></html>"), 415, "UnsupportedMediaType")
    huge = api.client.post(
        "/uploads", headers=api.auth(alice), json={"content_type": "image/png", "size": 2**40}
    )
    assert_error(huge, 413, "PayloadTooLarge")
    assert api.list_all(alice, user_id=alice) == []


# --- memory stays flat while a big upload streams ---------------------------------------------


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
