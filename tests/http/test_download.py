"""GET /images/{id}/download through a real server, on each backend: the original bytes with their
headers, whole however large, by byte range, revalidated by ETag, and only for who may read the
image."""

from __future__ import annotations

import hashlib

import pytest

from tests.support.api_assertions import assert_error
from tests.support.api_client import Api, path
from tests.support.sample_images import image_bytes, large_png


def test_download_returns_the_original_bytes_with_their_headers(api: Api, alice: str) -> None:
    data = image_bytes("image/jpeg", 40, 30)
    image = api.uploaded(alice, data=data, filename="Strand im Mai é.jpg")
    answer, response = api.download(alice, image["image_id"])
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["content-length"] == str(len(data))
    assert answer.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert answer.headers["x-content-type-options"] == "nosniff"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''Strand%20im%20Mai%20%C3%A9.jpg" in disposition


def test_download_of_a_large_image_is_complete(api: Api, alice: str) -> None:
    data = large_png(1024 * 1024)
    image = api.uploaded(alice, data=data)
    _, response = api.download(alice, image["image_id"])
    assert hashlib.sha256(response.content).hexdigest() == image["sha256"]


def test_download_honours_if_none_match(api: Api, alice: str) -> None:
    image = api.uploaded(alice)
    etag = f'"{image["sha256"]}"'
    answer, _ = api.download(alice, image["image_id"], **{"If-None-Match": etag})
    assert answer.status_code == 304
    assert answer.headers["etag"] == etag


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=0-9", 0, 9), ("bytes=10-", 10, None), ("bytes=-5", -5, None), ("bytes=3-3", 3, 3),
     ("bytes=5-100000", 5, None)],
)  # fmt: skip
def test_download_honours_a_byte_range_with_206(
    api: Api, alice: str, header: str, start: int, end: int | None
) -> None:
    data = image_bytes("image/png", 20, 20)
    image = api.uploaded(alice, data=data)
    _, response = api.download(alice, image["image_id"], Range=header)
    expected = data[start:] if end is None else data[start : end + 1]
    assert response.status_code == 206
    assert response.content == expected
    first = start if start >= 0 else len(data) + start
    assert (
        response.headers["content-range"]
        == f"bytes {first}-{first + len(expected) - 1}/{len(data)}"
    )


def test_a_range_beyond_the_end_is_416(api: Api, alice: str) -> None:
    image = api.uploaded(alice)
    answer, _ = api.download(alice, image["image_id"], Range=f"bytes={image['size']}-")
    assert_error(answer, 416, "RangeNotSatisfiable")


def test_a_range_with_a_stale_if_range_gets_the_whole_image(api: Api, alice: str) -> None:
    image = api.uploaded(alice)
    answer, response = api.download(
        alice, image["image_id"], **{"Range": "bytes=0-3", "If-Range": '"stale"'}
    )
    if answer.status_code == 307:
        # Where the blob store serves the bytes, the server never does, not even the whole
        # image a stale If-Range asks for: S3 honours the If-Range (not its ETag) itself.
        assert answer.content == b""
        pytest.skip("moto's S3 ignores If-Range (S3 honours it): the bytes are S3's to send")
    assert response.status_code == 200
    assert len(response.content) == image["size"]


def test_download_of_another_users_private_image_is_404(api: Api, alice: str, bob: str) -> None:
    image = api.uploaded(alice)
    assert_error(api.client.get(path(image, "/download"), headers=api.auth(bob)), 404, "NotFound")
