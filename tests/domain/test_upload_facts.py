"""What an upload learns from its bytes: its size in pixels, held to the pixel limit before
anything is stored, and the camera, time and place in its EXIF, which fill the metadata the
client left unset."""

from __future__ import annotations

import attrs
import pytest

from adapters.memory import MemoryBlobStore
from imagecore.commands import UploadCommand
from imagecore.errors import UnsupportedMediaType
from imagecore.model import GeoPosition, ImageFacts
from imagecore.service import ImageService
from tests.support.doubles import make_service


class FakeInspector:
    """Says the facts the test chose for any bytes that start like a PNG."""

    def __init__(self, facts: ImageFacts) -> None:
        self.facts = facts

    def inspect(self, head: bytes) -> ImageFacts | None:
        return self.facts if head.startswith(b"\x89PNG") else None


def with_facts(facts: ImageFacts, **more: object) -> ImageService:
    service = make_service(**more)  # type: ignore[arg-type]
    return attrs.evolve(service, inspector=FakeInspector(facts))


def test_an_image_over_the_pixel_limit_is_refused_before_anything_is_stored(png: bytes) -> None:
    blobs = MemoryBlobStore()
    service = with_facts(
        ImageFacts("image/png", 100_000, 100_000), blobs=blobs, max_pixels=100_000_000
    )

    with pytest.raises(UnsupportedMediaType, match=r"100000 x 100000 pixels.*100 megapixels"):
        service.store_upload("alice", UploadCommand(chunks=[png]))
    assert blobs.keys() == []


def test_an_image_at_the_pixel_limit_is_taken(png: bytes) -> None:
    service = with_facts(ImageFacts("image/png", 10_000, 10_000), max_pixels=100_000_000)
    assert service.store_upload("alice", UploadCommand(chunks=[png])).image.width == 10_000


EXIF = ImageFacts(
    "image/png",
    4,
    3,
    camera_make="Canon",
    camera_model="EOS R5",
    orientation=6,
    captured_at="2026-07-01T12:30:00+02:00",
    position=GeoPosition(latitude=48.858222, longitude=2.2945),
)


def test_exif_camera_time_and_place_fill_the_metadata(png: bytes) -> None:
    image = (
        with_facts(EXIF)
        .store_upload("alice", UploadCommand(chunks=[png], metadata={"k": "v"}))
        .image
    )

    assert dict(image.metadata) == {
        "k": "v",
        "camera_make": "Canon",
        "camera_model": "EOS R5",
        "captured_at": "2026-07-01T12:30:00+02:00",
        "gps_latitude": 48.858222,
        "gps_longitude": 2.2945,
    }


def test_what_the_client_set_wins_over_the_exif(png: bytes) -> None:
    mine = {"camera_model": "my phone", "captured_at": None}
    image = with_facts(EXIF).store_upload("alice", UploadCommand(chunks=[png], metadata=mine)).image

    assert image.metadata["camera_model"] == "my phone"
    assert image.metadata["captured_at"] is None
    assert image.metadata["camera_make"] == "Canon"


def test_exif_that_would_break_the_metadata_limits_is_left_out(png: bytes) -> None:
    full = {f"key{n}": n for n in range(50)}  # the most keys metadata may have
    image = with_facts(EXIF).store_upload("alice", UploadCommand(chunks=[png], metadata=full)).image
    assert dict(image.metadata) == full
