"""Uploads a client skips through a real server, on each backend: a declared SHA-256 (or an
If-None-Match of it) of an image already stored answers with that image, and bytes without the
declared hash are refused."""

from __future__ import annotations

import hashlib

from tests.support.api_assertions import assert_error
from tests.support.api_client import Api
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
