"""HEIC and AVIF uploads through a real server, on every backend."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support.api_assertions import assert_matches_schema
from tests.support.api_client import Api
from tests.support.heif_images import (
    CAMERA_MAKE,
    CAMERA_MODEL,
    CAPTURED_AT,
    POSITION,
    avif_bytes,
    heic_bytes,
    phone_exif,
)

ROTATED_A_QUARTER = 6


@pytest.mark.parametrize(
    ("make", "content_type"),
    [(heic_bytes, "image/heic"), (avif_bytes, "image/avif")],
    ids=["heic", "avif"],
)
def test_a_phone_photo_in_heif_is_accepted_with_its_displayed_size_and_exif(
    api: Api, alice: str, make: Callable[..., bytes], content_type: str
) -> None:
    data = make(64, 48, exif=phone_exif(ROTATED_A_QUARTER))

    response = api.upload(alice, data, filename="IMG_0001.HEIC", client_type="image/heic")

    assert response.status_code == 201, response.text
    image = response.json()
    assert_matches_schema(image, "Image")
    assert image["content_type"] == content_type
    assert (image["width"], image["height"]) == (48, 64)  # as shown: the container turns it
    assert image["size"] == len(data)
    assert image["metadata"] == {
        "camera_make": CAMERA_MAKE,
        "camera_model": CAMERA_MODEL,
        "captured_at": CAPTURED_AT,
        "gps_latitude": POSITION.latitude,
        "gps_longitude": POSITION.longitude,
    }
    _, download = api.download(alice, image["image_id"])
    assert download.status_code == 200
    assert download.headers["content-type"] == content_type
    assert download.content == data
