"""Uploads over the memory adapters: what is stored of the bytes and of the fields that come
with them, and that a refused or failed upload stores nothing."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from datetime import datetime

import pytest
from PIL import Image as PILImage

from adapters.memory import MemoryBlobStore, MemoryImageRepository
from imagecore import validation
from imagecore.commands import UploadCommand
from imagecore.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from imagecore.model import Image, ImageState, ThumbnailStatus, Visibility
from imagecore.query import ListQuery
from imagecore.service import ImageService
from imagecore.uploads import HEAD_BYTES
from tests.support.doubles import FakeClock, crockford, make_service
from tests.support.sample_images import image_bytes
from tests.support.use_cases import read_all, upload


def assert_nothing_stored(
    service: ImageService, repository: MemoryImageRepository, blobs: MemoryBlobStore
) -> None:
    assert blobs.keys() == []
    assert not repository.list(ListQuery(), "alice", None, 100).images


@pytest.mark.parametrize(
    ("content_type", "size"),
    [("image/png", (4, 3)), ("image/jpeg", (16, 9)), ("image/gif", (1, 1)), ("image/webp", (7, 5))],
)
def test_upload_stores_the_bytes_and_what_they_say_about_themselves(
    service: ImageService,
    repository: MemoryImageRepository,
    clock: FakeClock,
    content_type: str,
    size: tuple[int, int],
) -> None:
    data = image_bytes(content_type, *size)
    image = upload(service, "alice", data, filename="photo.bin")
    assert image.content_type == content_type
    assert (image.width, image.height) == size
    assert image.size == len(data)
    assert image.sha256 == hashlib.sha256(data).hexdigest()
    assert image.user_id == "alice"
    assert image.filename == "photo.bin"
    assert image.created_at == image.updated_at == clock.now()
    assert image.version == 1
    assert image.thumbnail_status is ThumbnailStatus.PENDING
    assert image.state is ImageState.ACTIVE
    assert validation.is_image_id(image.image_id)
    assert repository.get(image.image_id) == image
    assert service.get("alice", image.image_id) == image
    assert read_all(service, "alice", image.image_id) == data


def test_upload_keeps_the_validated_metadata(service: ImageService, png: bytes) -> None:
    image = upload(
        service,
        "alice",
        png,
        filename="../../secret/beach.png",
        title="  Sunset ",
        description="On the beach\nat seven",
        tags=["Beach", "SUNSET", "beach"],
        metadata={"camera": "X100V", "iso": 400},
        visibility="public",
    )
    assert image.filename == "beach.png"
    assert image.title == "Sunset"
    assert image.description == "On the beach\nat seven"
    assert image.tags == ("beach", "sunset")
    assert dict(image.metadata) == {"camera": "X100V", "iso": 400}
    assert image.visibility is Visibility.PUBLIC
    assert service.get("alice", image.image_id) == image


def test_upload_defaults_to_a_private_untitled_image(service: ImageService, png: bytes) -> None:
    image = upload(service, "alice", png)
    assert image.visibility is Visibility.PRIVATE
    assert (image.title, image.description, image.tags, dict(image.metadata)) == ("", "", (), {})
    assert image.filename == "image"


def test_the_content_type_comes_from_the_bytes_not_the_file_name(
    service: ImageService, jpeg: bytes
) -> None:
    assert upload(service, "alice", jpeg, filename="pretend.png").content_type == "image/jpeg"


def test_an_upload_arriving_in_tiny_chunks_is_stored_whole(
    service: ImageService, png: bytes
) -> None:
    image = service.store_upload(
        "alice", UploadCommand(chunks=[png[i : i + 1] for i in range(len(png))])
    ).image
    assert read_all(service, "alice", image.image_id) == png
    assert image.sha256 == hashlib.sha256(png).hexdigest()


def test_a_large_upload_is_stored_byte_for_byte(service: ImageService, png: bytes) -> None:
    data = png + bytes(range(256)) * (3 * HEAD_BYTES // 256)  # trailing data after the image
    image = upload(service, "alice", data)
    assert image.size == len(data)
    assert image.sha256 == hashlib.sha256(data).hexdigest()
    assert read_all(service, "alice", image.image_id) == data


@pytest.mark.parametrize("chunks", [[], [b""], [b"", b"", b""]])
def test_an_empty_file_is_invalid_input_and_stores_nothing(
    service: ImageService,
    repository: MemoryImageRepository,
    blobs: MemoryBlobStore,
    chunks: list[bytes],
) -> None:
    with pytest.raises(InvalidInput, match="empty"):
        service.store_upload("alice", UploadCommand(chunks=chunks))
    assert_nothing_stored(service, repository, blobs)


@pytest.mark.parametrize(
    "data",
    [
        b"hello, world",
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        b"%PDF-1.7\n",
        b"\x89PNG\r\n\x1a\n",  # a PNG signature and nothing after it
        b"GIF89a",
        b"\xff\xd8\xff",
        bytes(4096),
    ],
)
def test_bytes_that_are_not_an_accepted_image_are_unsupported_and_store_nothing(
    service: ImageService,
    repository: MemoryImageRepository,
    blobs: MemoryBlobStore,
    data: bytes,
) -> None:
    with pytest.raises(UnsupportedMediaType):
        upload(service, "alice", data, filename="photo.png")
    assert_nothing_stored(service, repository, blobs)


def test_an_image_in_another_format_is_unsupported(service: ImageService) -> None:
    buffer = io.BytesIO()
    PILImage.new("RGB", (2, 2)).save(buffer, format="BMP")
    with pytest.raises(UnsupportedMediaType):
        upload(service, "alice", buffer.getvalue())


@pytest.mark.parametrize("max_bytes", [10, 1024, HEAD_BYTES + 10])
def test_a_file_over_the_limit_is_too_large_and_stores_nothing(
    clock: FakeClock,
    repository: MemoryImageRepository,
    blobs: MemoryBlobStore,
    png: bytes,
    max_bytes: int,
) -> None:
    service = make_service(clock, repository=repository, blobs=blobs, max_upload_bytes=max_bytes)
    data = png + bytes(max_bytes + 1 - len(png)) if max_bytes > len(png) else png
    assert len(data) > max_bytes
    with pytest.raises(PayloadTooLarge):
        upload(service, "alice", data)
    assert_nothing_stored(service, repository, blobs)


def test_a_file_exactly_at_the_limit_is_accepted(clock: FakeClock, png: bytes) -> None:
    service = make_service(clock, max_upload_bytes=len(png))
    assert upload(service, "alice", png).size == len(png)


def test_invalid_metadata_on_upload_stores_nothing(
    service: ImageService, repository: MemoryImageRepository, blobs: MemoryBlobStore, png: bytes
) -> None:
    with pytest.raises(InvalidInput):
        upload(service, "alice", png, metadata={"nested": {"no": 1}})
    with pytest.raises(InvalidInput):
        upload(service, "alice", png, tags="a,b")
    with pytest.raises(InvalidInput):
        upload(service, "alice", png, visibility="friends")
    assert_nothing_stored(service, repository, blobs)


class _FailingRepository(MemoryImageRepository):
    def add(self, image: Image) -> None:
        raise ConnectionError("the metadata store is down")


def test_when_storing_the_metadata_fails_the_bytes_are_removed(
    clock: FakeClock, blobs: MemoryBlobStore, png: bytes
) -> None:
    repository = _FailingRepository()
    service = make_service(clock, repository=repository, blobs=blobs)
    with pytest.raises(ConnectionError):
        upload(service, "alice", png)
    assert blobs.keys() == []


class _RepeatingIds:
    """Breaks the IdGenerator promise of uniqueness: every id is the same."""

    def new_id(self, now: datetime) -> str:
        return crockford(77)


def test_an_upload_whose_id_is_taken_never_harms_the_image_holding_it(
    clock: FakeClock, blobs: MemoryBlobStore, png: bytes, jpeg: bytes
) -> None:
    # ImageRepository.add may raise AlreadyExists; the bytes of the image that already holds the
    # id must survive the failed upload (README.md, Guarantees: no image without its bytes).
    service = make_service(clock, _RepeatingIds(), blobs=blobs)
    first = upload(service, "alice", png)
    with pytest.raises(Exception):  # noqa: B017 - which error is not the point here
        upload(service, "alice", jpeg)
    assert service.get("alice", first.image_id) == first
    assert read_all(service, "alice", first.image_id) == png


def test_when_reading_the_upload_fails_nothing_is_stored(
    service: ImageService, repository: MemoryImageRepository, blobs: MemoryBlobStore, png: bytes
) -> None:
    def broken_stream() -> Iterator[bytes]:
        yield png
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        service.store_upload("alice", UploadCommand(chunks=broken_stream()))
    assert_nothing_stored(service, repository, blobs)


def test_a_file_recording_its_location_in_too_many_places_to_hide_is_refused(
    service: ImageService, repository: MemoryImageRepository, blobs: MemoryBlobStore
) -> None:
    """What hides a file's location is kept in its record, which a store bounds (a DynamoDB
    item holds 400 KB): a file made to need more is refused, and nothing of it is kept."""
    properties = " ".join(f'exif:GPSLatitude{n}="48,51.{n}N"' for n in range(300))
    xmp = f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description {properties}/></x:xmpmeta>'
    out = io.BytesIO()
    PILImage.new("RGB", (8, 6)).save(out, "JPEG", xmp=xmp.encode())

    with pytest.raises(InvalidInput, match="more places than the 256"):
        service.store_upload("alice", UploadCommand(chunks=[out.getvalue()]))

    assert_nothing_stored(service, repository, blobs)
