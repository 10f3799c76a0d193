"""Renditions, placeholders and location privacy through a real server, on each backend: what
the background job makes appears in the resource and the list, each rendition is served in the
best format the Accept header names, and people other than the owner never learn where a photo
was taken unless the owner shares it."""

from __future__ import annotations

import io
import re

import httpx
import pytest
from PIL import Image

from tests.support.api_assertions import assert_error
from tests.support.api_client import Api, path
from tests.support.sample_images import CAMERA_SERIAL, gps_of, located_jpeg


def photo(width: int = 2000, height: int = 1000) -> bytes:
    picture = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=90)
    return out.getvalue()


def fetched(api: Api, user: str, url: str, **headers: str) -> tuple[httpx.Response, bytes]:
    """The server's answer and the bytes, from it or from the blob store it redirected to."""
    first = api.client.get(url, headers={**api.auth(user), **headers})
    if first.status_code != 307:
        return first, first.content
    return first, httpx.get(first.headers["location"], timeout=30).content


def test_the_renditions_and_placeholder_are_in_the_resource_and_the_list(
    api: Api, alice: str
) -> None:
    image = api.uploaded(alice, data=photo(2000, 1000), visibility="public")

    assert image["thumbnail_status"] == "ready"
    kinds = image["renditions"]["preview"]["content_types"]
    assert kinds[-2:] == ["image/webp", "image/jpeg"]
    assert kinds[0] in ("image/avif", "image/webp")
    assert image["renditions"] == {
        "thumbnail": {
            "width": 256,
            "height": 128,
            "content_types": kinds,
            "url": path(image, "/renditions/thumbnail"),
        },
        "preview": {
            "width": 1440,
            "height": 720,
            "content_types": kinds,
            "url": path(image, "/renditions/preview"),
        },
    }
    placeholder = image["placeholder"]
    assert re.fullmatch(r"[0-9A-Za-z#$%*+,\-.:;=?@\[\]^_{|}~]{28}", placeholder["blurhash"])
    assert re.fullmatch(r"#[0-9a-f]{6}", placeholder["dominant_color"])
    assert placeholder["aspect_ratio"] == 2.0
    listed = api.client.get("/images", params={"user_id": alice}, headers=api.auth("bob")).json()
    assert listed["images"][0]["placeholder"] == placeholder


@pytest.mark.parametrize(
    ("accept", "served", "format_name"),
    [
        ("image/avif,image/webp,image/apng,*/*;q=0.8", "image/avif", "AVIF"),  # a browser's
        ("image/webp,*/*", "image/webp", "WEBP"),
        ("*/*", "image/jpeg", "JPEG"),
        (None, "image/jpeg", "JPEG"),
        ("image/avif;q=0.5, image/webp;q=0.9", "image/webp", "WEBP"),
        ("image/jpeg;q=0, image/webp", "image/webp", "WEBP"),
    ],
)
def test_a_rendition_is_served_in_the_best_format_the_accept_header_names(
    api: Api, alice: str, accept: str | None, served: str, format_name: str
) -> None:
    image = api.uploaded(alice, data=photo(2000, 1000))
    headers = {} if accept is None else {"Accept": accept}

    answer, data = fetched(api, alice, path(image, "/renditions/preview"), **headers)

    assert answer.status_code in (200, 307)
    assert answer.headers["vary"] == "Accept"
    if answer.status_code == 200:
        assert answer.headers["content-type"] == served
        assert answer.headers["cache-control"] == "private, max-age=31536000, immutable"
    with Image.open(io.BytesIO(data)) as picture:
        assert (picture.format, picture.size) == (format_name, (1440, 720))
        assert not picture.getexif(), "a rendition carries no metadata"


def test_a_rendition_no_accepted_format_has_is_not_acceptable(api: Api, alice: str) -> None:
    image = api.uploaded(alice, data=photo(400, 300))

    refused = api.client.get(
        path(image, "/renditions/thumbnail"), headers={**api.auth(alice), "Accept": "image/png"}
    )

    assert_error(refused, 406, "NotAcceptable")
    assert refused.headers["vary"] == "Accept"


def test_renditions_only_for_who_may_see_the_image_and_only_those_named(
    api: Api, alice: str
) -> None:
    image = api.uploaded(alice, data=photo(400, 300))

    hidden = api.client.get(path(image, "/renditions/preview"), headers=api.auth("eve"))
    unknown = api.client.get(path(image, "/renditions/poster"), headers=api.auth(alice))

    assert_error(hidden, 404, "NotFound")
    assert_error(unknown, 404, "NotFound")


def test_only_the_owner_sees_where_a_photo_was_taken_until_they_share_it(
    api: Api, alice: str
) -> None:
    original = located_jpeg()
    image = api.uploaded(alice, data=original, visibility="public")
    assert image["share_location"] is False
    assert {"gps_latitude", "gps_longitude", "camera_make"} <= set(image["metadata"])

    seen = api.client.get(path(image), headers=api.auth("bob")).json()
    listed = api.client.get("/images", params={"user_id": alice}, headers=api.auth("bob")).json()
    answer, shared = fetched(api, "bob", path(image, "/download"))
    _, owned = fetched(api, alice, path(image, "/download"))

    assert not any(key.startswith("gps_") for key in seen["metadata"])
    assert seen["metadata"]["camera_make"] == image["metadata"]["camera_make"]
    assert listed["images"][0]["metadata"] == seen["metadata"]
    assert owned == original
    assert len(shared) == len(original)
    assert shared != original
    assert gps_of(shared) == {}
    assert gps_of(original)
    assert CAMERA_SERIAL.encode() not in shared
    assert CAMERA_SERIAL.encode() in original
    with Image.open(io.BytesIO(shared)) as theirs, Image.open(io.BytesIO(original)) as ours:
        assert theirs.tobytes() == ours.tobytes(), "the pixels are untouched"
    assert answer.headers["etag"] != f'"{image["sha256"]}"'

    shared_now = api.client.patch(
        path(image), headers=api.auth(alice), json={"share_location": True}
    )
    assert shared_now.status_code == 200, shared_now.text
    after = api.client.get(path(image), headers=api.auth("bob")).json()
    _, downloaded = fetched(api, "bob", path(image, "/download"))

    assert after["share_location"] is True
    assert after["metadata"]["gps_latitude"] == image["metadata"]["gps_latitude"]
    assert downloaded == original


def test_share_location_must_be_a_boolean(api: Api, alice: str) -> None:
    image = api.uploaded(alice, data=photo(64, 48))
    refused = api.client.patch(path(image), headers=api.auth(alice), json={"share_location": 1})
    assert_error(refused, 400, "InvalidInput")
