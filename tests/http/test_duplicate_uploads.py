"""Uploads a client skips through a real server, on each backend: a declared SHA-256 (or an
If-None-Match of it) of an image already stored answers with that image, bytes without the
declared hash are refused, and identical uploads declaring it at once make one image."""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from adapters.filesystem import FilesystemBlobStore
from adapters.s3 import S3BlobStore
from entrypoints.container import BLOB_DIR
from imagecore.blob_keys import is_under, original_key
from tests.support.api_assertions import assert_error
from tests.support.api_client import Api
from tests.support.fake_aws import moto_server
from tests.support.http_server import ServerProcess
from tests.support.sample_images import image_bytes


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


def stored_keys(server: ServerProcess, prefix: str) -> list[str] | None:
    """The keys under ``prefix`` in a running server's blob store, read from outside it; None on
    the memory backend, whose store lives in the server's process only."""
    backend = server.environ["IMAGECORE_BACKEND"]
    if backend == "filesystem":
        keys = FilesystemBlobStore(server.data_dir / BLOB_DIR).keys()
    elif backend == "aws":
        keys = S3BlobStore(moto_server().clients().s3, server.environ["IMAGECORE_BUCKET"]).keys()
    else:
        return None
    return [key for key in keys if key.startswith(prefix)]


def test_identical_uploads_declaring_the_hash_at_once_make_one_image(api: Api, alice: str) -> None:
    data = image_bytes(width=41, height=29)
    headers = {
        **api.auth(alice),
        "Content-Type": "image/png",
        "X-Content-SHA256": hashlib.sha256(data).hexdigest(),
    }
    uploads = 20

    def upload(_: int) -> httpx.Response:
        # Past a user's IMAGECORE_MAX_UPLOADS_PER_USER uploads under way the server answers
        # 429: a client tries again after Retry-After, as this one does.
        while True:
            response = api.client.post("/images", content=data, headers=headers)
            if response.status_code != 429:
                return response
            time.sleep(float(response.headers["retry-after"]))

    with ThreadPoolExecutor(max_workers=uploads) as pool:
        responses = list(pool.map(upload, range(uploads)))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * (uploads - 1) + [201], [response.text for response in responses]
    image_ids = {response.json()["image_id"] for response in responses}
    assert len(image_ids) == 1
    (image_id,) = image_ids
    assert [image["image_id"] for image in api.list_all(alice, user_id=alice)] == [image_id]

    api.settled(alice, image_id)  # its thumbnail, if any, is stored too
    keys = stored_keys(api.server, f"images/{alice}/")
    if keys is not None:
        # Reconcile removes the bytes of no image: every key left must be this image's.
        original = original_key(alice, image_id)
        assert original in keys
        assert [key for key in keys if not is_under(key, original)] == [], "orphaned bytes"
