"""POST /images through a real server."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.api_assertions import assert_error, assert_matches_schema
from tests.support.api_client import Api
from tests.support.backend_server import MAX_UPLOAD_BYTES
from tests.support.sample_images import FORMATS, image_bytes, large_png


@pytest.mark.parametrize("content_type", sorted(FORMATS))
def test_upload_decides_the_type_from_the_bytes_not_the_client(
    api: Api, alice: str, content_type: str
) -> None:
    data = image_bytes(content_type, width=31, height=17)
    response = api.upload(alice, data, filename="misleading.txt", client_type="text/plain")
    assert response.status_code == 201, response.text
    image = response.json()
    assert_matches_schema(image, "Image")
    assert image["content_type"] == content_type
    assert (image["width"], image["height"]) == (31, 17)
    assert image["size"] == len(data)
    assert image["user_id"] == alice
    assert image["version"] == 1
    assert image["visibility"] == "private"
    assert response.headers["location"] == f"/images/{image['image_id']}"
    assert response.headers["etag"] == '"v1"'


def test_upload_keeps_title_description_tags_metadata_and_visibility(api: Api, alice: str) -> None:
    image = api.uploaded(
        alice,
        title="  Beach at dusk ",
        description="Warm\nevening",
        tags=" Sunset, beach,sunset ,,",
        metadata=json.dumps({"camera": "X100", "iso": 200, "flash": False, "lens": None}),
        visibility="public",
    )
    assert image["title"] == "Beach at dusk"
    assert image["description"] == "Warm\nevening"
    assert image["tags"] == ["sunset", "beach"]
    assert image["metadata"] == {"camera": "X100", "iso": 200, "flash": False, "lens": None}
    assert image["visibility"] == "public"
    fetched = api.client.get(f"/images/{image['image_id']}", headers=api.auth(alice)).json()
    assert fetched == image


def test_upload_accepts_tags_as_a_json_array(api: Api, alice: str) -> None:
    image = api.uploaded(alice, tags=json.dumps(["Cats", "cats", "dogs"]))
    assert image["tags"] == ["cats", "dogs"]


def test_upload_records_the_sha256_of_the_bytes(api: Api, alice: str) -> None:
    import hashlib

    data = image_bytes("image/jpeg")
    image = api.uploaded(alice, data=data)
    assert image["sha256"] == hashlib.sha256(data).hexdigest()


def test_upload_without_a_token_is_401(api: Api) -> None:
    response = api.client.post("/images", files={"file": ("a.png", image_bytes())})
    assert_error(response, 401, "Unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"


def test_upload_without_a_file_is_400(api: Api, alice: str) -> None:
    response = api.client.post(
        "/images", headers=api.auth(alice), data={"title": "x"}, files={"title": (None, "x")}
    )
    assert_error(response, 400, "InvalidInput")


def test_upload_of_an_empty_file_is_400(api: Api, alice: str) -> None:
    assert_error(api.upload(alice, b""), 400, "InvalidInput")


@pytest.mark.parametrize(
    "data",
    [
        b"hello, this is text",
        b"<svg xmlns='http://www.w3.org/2000/svg'></svg>",
        b"<html><script>alert(1)</script></html>",
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 10,  # a PNG signature with a broken header
        b"\xff\xd8\xff",  # a JPEG that ends after its first marker
        b"PK\x03\x04" + b"\x00" * 100,
    ],
)
def test_upload_of_something_that_is_not_an_image_is_415(api: Api, alice: str, data: bytes) -> None:
    assert_error(api.upload(alice, data, filename="x.jpg", client_type="image/jpeg"), 415,
                 "UnsupportedMediaType")  # fmt: skip


def test_upload_that_is_not_multipart_is_415(api: Api, alice: str) -> None:
    response = api.client.post(
        "/images",
        headers={**api.auth(alice), "Content-Type": "application/json"},
        content=b'{"file": "x"}',
    )
    assert_error(response, 415, "UnsupportedMediaType")


def test_malformed_multipart_is_400(api: Api, alice: str) -> None:
    response = api.client.post(
        "/images",
        headers={**api.auth(alice), "Content-Type": "multipart/form-data; boundary=XYZ"},
        content=b'--XYZ\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n'
        b"\x89PNG-and-then-no-closing-boundary",
    )
    assert response.status_code in (400, 415)
    assert response.json()["request_id"] == response.headers["x-request-id"]


def test_multipart_without_a_boundary_is_400(api: Api, alice: str) -> None:
    response = api.client.post(
        "/images",
        headers={**api.auth(alice), "Content-Type": "multipart/form-data"},
        content=b"whatever",
    )
    assert_error(response, 400, "InvalidInput")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("metadata", "not json"),
        ("metadata", "[1, 2]"),
        ("metadata", json.dumps({"nested": {"a": 1}})),
        ("metadata", json.dumps({f"k{i}": i for i in range(51)})),
        ("tags", "[not json"),
        ("tags", json.dumps([1, 2])),
        ("tags", ",".join(f"t{i}" for i in range(21))),
        ("tags", "x" * 65),
        ("visibility", "friends"),
        ("title", "t" * 201),
        ("description", "d" * 2001),
        ("title", "bell\x07"),
        ("colour", "blue"),
    ],
)
def test_upload_with_invalid_fields_is_400_and_stores_nothing(
    api: Api, alice: str, field: str, value: str
) -> None:
    assert_error(api.upload(alice, **{field: value}), 400, "InvalidInput")
    assert api.list_all(alice, user_id=alice) == []


def test_upload_with_a_field_twice_is_400(api: Api, alice: str) -> None:
    response = api.client.post(
        "/images",
        headers=api.auth(alice),
        files=[("file", ("a.png", image_bytes())), ("title", (None, "a")), ("title", (None, "b"))],
    )
    assert_error(response, 400, "InvalidInput")


def test_upload_of_two_files_is_400(api: Api, alice: str) -> None:
    response = api.client.post(
        "/images",
        headers=api.auth(alice),
        files=[("file", ("a.png", image_bytes())), ("file", ("b.png", image_bytes()))],
    )
    assert_error(response, 400, "InvalidInput")


def test_upload_over_the_limit_is_413_and_stores_nothing(api: Api, alice: str) -> None:
    data = large_png(MAX_UPLOAD_BYTES + 1)
    assert_error(api.upload(alice, data), 413, "PayloadTooLarge")
    assert api.list_all(alice, user_id=alice) == []


def test_upload_just_under_the_limit_is_accepted(api: Api, alice: str) -> None:
    data = large_png(MAX_UPLOAD_BYTES // 2)
    assert api.uploaded(alice, data=data)["size"] == len(data)


def test_chunked_upload_over_the_limit_is_413_without_a_content_length(
    api: Api, alice: str
) -> None:
    boundary = "imagecoreboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    png = image_bytes()

    def body():  # no Content-Length: the server must count as the bytes arrive
        yield head + png
        for _ in range(MAX_UPLOAD_BYTES // 65536 + 8):
            yield b"\x00" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    # A client of its own: the server may close the connection as soon as it has answered 413,
    # before the client has sent everything, and then the client sees no response at all.
    with httpx.Client(base_url=api.server.url, timeout=30) as client:
        try:
            response: httpx.Response | None = client.post(
                "/images",
                headers={
                    **api.auth(alice),
                    "Content-Type": f"multipart/form-data; boundary={boundary}",
                },
                content=body(),
            )
        except httpx.HTTPError:
            response = None
    if response is not None:
        assert_error(response, 413, "PayloadTooLarge")
    assert api.list_all(alice, user_id=alice) == []


def test_a_declared_length_over_the_limit_is_refused_before_the_body(api: Api, alice: str) -> None:
    import socket

    request = (
        f"POST /images HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {api.token(alice)}\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\n"
        f"Content-Length: {100 * MAX_UPLOAD_BYTES}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", api.server.port), timeout=10) as sock:
        sock.sendall(request)  # and not one byte of the body: the answer must not wait for it
        answer = sock.recv(65536).decode("latin-1")
    assert answer.startswith("HTTP/1.1 413"), answer
    assert '"error":"PayloadTooLarge"' in answer


@pytest.mark.parametrize(
    "filename",
    ["../../../../escape.png", "..\\..\\escape.png", "/etc/passwd", "..", "a/../../b.png",
     "con\x00trol.png", "%2e%2e%2fescape.png"],
)  # fmt: skip
def test_path_tricks_in_filenames_write_nothing_outside_the_data_dir(
    api: Api, alice: str, filename: str, data_root: Path
) -> None:
    response = api.upload(alice, filename=filename)
    assert response.status_code == 201, response.text
    stored_name = response.json()["filename"]
    assert "/" not in stored_name
    assert "\\" not in stored_name
    assert stored_name not in ("", ".", "..")
    outside = [
        path
        for path in data_root.rglob("*")
        if "escape" in path.name or path.name in ("passwd", "b.png")
    ]
    assert outside == []


def test_concurrent_uploads_from_many_threads_are_all_stored_once(
    api: Api, alice: str, bob: str
) -> None:
    def upload(n: int) -> str:
        user = alice if n % 2 else bob
        return str(api.uploaded(user, title=f"img {n}", tags="concurrent")["image_id"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(upload, range(40)))
    assert len(set(ids)) == 40
    alices = api.list_all(alice, user_id=alice, limit=7)
    bobs = api.list_all(bob, user_id=bob, limit=7)
    assert sorted(i["image_id"] for i in alices + bobs) == sorted(ids)
    order = [(i["created_at"], i["image_id"]) for i in alices]
    assert order == sorted(order, reverse=True)
