"""What an upload learns from its bytes (size in pixels, EXIF), the thumbnail job, and uploads
a client can skip because it already has the image."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

import attrs
import pytest

from adapters.memory import MemoryBlobStore, MemoryImageRepository
from imagecore.blob_keys import thumbnail_key
from imagecore.commands import UploadCommand
from imagecore.errors import InvalidInput, NotFound, UnsupportedMediaType
from imagecore.model import THUMBNAIL_JOB, GeoPosition, ImageFacts, Job, ThumbnailStatus
from imagecore.service import ImageService

from .support import FakeClock, RecordingJobs, make_service


class FakeInspector:
    """Says the facts the test chose for any bytes that start like a PNG."""

    def __init__(self, facts: ImageFacts) -> None:
        self.facts = facts

    def inspect(self, head: bytes) -> ImageFacts | None:
        return self.facts if head.startswith(b"\x89PNG") else None


class FakeThumbnailer:
    """Fails the first ``failures`` times, then makes a recognisable thumbnail."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.calls: list[tuple[int, str]] = []

    def thumbnail(self, chunks: Iterable[bytes], max_side: int, content_type: str) -> bytes:
        self.calls.append((max_side, content_type))
        data = b"".join(chunks)
        if self.failures > 0:
            self.failures -= 1
            raise OSError("cannot decode")
        return b"thumb:" + data[:8]


@pytest.fixture
def jobs() -> RecordingJobs:
    return RecordingJobs()


@pytest.fixture
def thumbnailer() -> FakeThumbnailer:
    return FakeThumbnailer()


@pytest.fixture
def service(
    clock: FakeClock,
    repository: MemoryImageRepository,
    blobs: MemoryBlobStore,
    jobs: RecordingJobs,
    thumbnailer: FakeThumbnailer,
) -> ImageService:
    return make_service(
        clock, repository=repository, blobs=blobs, jobs=jobs, thumbnailer=thumbnailer
    )


def with_facts(facts: ImageFacts, **more: object) -> ImageService:
    service = make_service(**more)  # type: ignore[arg-type]
    return attrs.evolve(service, inspector=FakeInspector(facts))


# --- pixels and EXIF ----------------------------------------------------------------------------


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


# --- thumbnails ---------------------------------------------------------------------------------


def test_an_upload_queues_its_thumbnail_job(
    service: ImageService, jobs: RecordingJobs, png: bytes
) -> None:
    image = service.store_upload("alice", UploadCommand(chunks=[png])).image

    assert jobs.jobs == [Job(kind=THUMBNAIL_JOB, image_id=image.image_id)]
    assert image.thumbnail_status is ThumbnailStatus.PENDING


def test_a_queue_that_is_down_never_fails_the_upload(
    service: ImageService, jobs: RecordingJobs, png: bytes
) -> None:
    jobs.refuse = True
    image = service.store_upload("alice", UploadCommand(chunks=[png])).image
    assert service.get("alice", image.image_id).thumbnail_status is ThumbnailStatus.PENDING


def test_the_job_stores_the_thumbnail_under_the_original_and_marks_it_ready(
    service: ImageService, blobs: MemoryBlobStore, thumbnailer: FakeThumbnailer, png: bytes
) -> None:
    image = service.store_upload("alice", UploadCommand(chunks=[png], filename="sea.png")).image

    service.run_job(Job(THUMBNAIL_JOB, image.image_id), final_attempt=False)

    ready = service.get("alice", image.image_id)
    assert ready.thumbnail_status is ThumbnailStatus.READY
    assert ready.version == image.version + 1, "the resource changed, so its ETag does"
    assert thumbnailer.calls == [(256, "image/webp")]
    assert thumbnail_key(image.blob_key) == image.blob_key + "/thumbnail"
    found = service.thumbnail("alice", image.image_id)
    assert b"".join(found.open()) == b"thumb:" + png[:8]
    assert (found.content_type, found.filename) == ("image/webp", "sea-thumbnail.webp")
    assert found.etag != service.download("alice", image.image_id).etag


def test_a_jpeg_gets_a_jpeg_thumbnail(
    service: ImageService, thumbnailer: FakeThumbnailer, jpeg: bytes
) -> None:
    image = service.store_upload("alice", UploadCommand(chunks=[jpeg])).image
    service.make_thumbnail(image.image_id)
    assert thumbnailer.calls == [(256, "image/jpeg")]
    assert service.thumbnail("alice", image.image_id).content_type == "image/jpeg"


def test_a_failing_job_raises_to_be_retried_then_is_marked_failed_on_its_last_attempt(
    service: ImageService, thumbnailer: FakeThumbnailer, blobs: MemoryBlobStore, png: bytes
) -> None:
    thumbnailer.failures = 5
    image = service.store_upload("alice", UploadCommand(chunks=[png])).image

    with pytest.raises(OSError):
        service.make_thumbnail(image.image_id, final_attempt=False)
    assert service.get("alice", image.image_id).thumbnail_status is ThumbnailStatus.PENDING

    assert service.make_thumbnail(image.image_id, final_attempt=True) is ThumbnailStatus.FAILED
    assert service.get("alice", image.image_id).thumbnail_status is ThumbnailStatus.FAILED
    assert blobs.keys() == [image.blob_key]
    with pytest.raises(NotFound, match="failed"):
        service.thumbnail("alice", image.image_id)


def test_a_settled_thumbnail_is_not_made_again(
    service: ImageService, thumbnailer: FakeThumbnailer, png: bytes
) -> None:
    image = service.store_upload("alice", UploadCommand(chunks=[png])).image
    service.make_thumbnail(image.image_id)
    assert service.make_thumbnail(image.image_id) is None
    assert len(thumbnailer.calls) == 1


def test_no_thumbnail_until_it_is_ready_and_none_for_whom_the_image_is_hidden(
    service: ImageService, png: bytes
) -> None:
    image = service.store_upload("alice", UploadCommand(chunks=[png])).image
    with pytest.raises(NotFound, match="pending"):
        service.thumbnail("alice", image.image_id)
    service.make_thumbnail(image.image_id)
    with pytest.raises(NotFound, match="no such image"):
        service.thumbnail("bob", image.image_id)


def test_deleting_an_image_deletes_its_thumbnail(
    service: ImageService, blobs: MemoryBlobStore, png: bytes
) -> None:
    image = service.store_upload("alice", UploadCommand(chunks=[png])).image
    service.make_thumbnail(image.image_id)

    service.delete("alice", image.image_id)

    assert blobs.keys() == []


def test_a_thumbnail_made_while_its_image_was_deleted_is_removed(
    service: ImageService, blobs: MemoryBlobStore, thumbnailer: FakeThumbnailer, png: bytes
) -> None:
    image = service.store_upload("alice", UploadCommand(chunks=[png])).image
    original = thumbnailer.thumbnail

    def thumbnail_then_delete(chunks: Iterable[bytes], side: int, content_type: str) -> bytes:
        made = original(chunks, side, content_type)
        service.delete("alice", image.image_id)  # the owner deletes it meanwhile
        return made

    thumbnailer.thumbnail = thumbnail_then_delete  # type: ignore[method-assign]
    assert service.make_thumbnail(image.image_id) is None
    assert blobs.keys() == []


def test_an_unknown_job_is_an_error(service: ImageService) -> None:
    with pytest.raises(InvalidInput):
        service.run_job(Job("resize", "01JD0000000000000000000009"), final_attempt=True)


# --- duplicates ---------------------------------------------------------------------------------


def never_read() -> Iterator[bytes]:
    raise AssertionError("the bytes were read")
    yield b""  # pragma: no cover


def test_a_known_hash_answers_with_the_callers_image_without_reading_the_bytes(
    service: ImageService, png: bytes
) -> None:
    first = service.store_upload("alice", UploadCommand(chunks=[png])).image

    stored = service.store_upload(
        "alice", UploadCommand(chunks=never_read(), content_sha256=first.sha256.upper())
    )

    assert (stored.image, stored.created) == (first, False)


def test_another_users_or_a_deleted_image_is_no_duplicate(
    service: ImageService, png: bytes
) -> None:
    sha = hashlib.sha256(png).hexdigest()
    bobs = service.store_upload("bob", UploadCommand(chunks=[png], visibility="public")).image
    gone = service.store_upload("alice", UploadCommand(chunks=[png])).image
    service.delete("alice", gone.image_id)

    stored = service.store_upload("alice", UploadCommand(chunks=[png], content_sha256=sha))

    assert stored.created
    assert stored.image.image_id not in (bobs.image_id, gone.image_id)


def test_bytes_that_do_not_have_the_declared_hash_are_refused_and_removed(
    service: ImageService, blobs: MemoryBlobStore, png: bytes
) -> None:
    with pytest.raises(InvalidInput, match="SHA-256"):
        service.store_upload("alice", UploadCommand(chunks=[png], content_sha256="0" * 64))
    assert blobs.keys() == []


@pytest.mark.parametrize("declared", ["abc", "g" * 64, 12, "0" * 65])
def test_a_declared_hash_must_look_like_one(service: ImageService, declared: object) -> None:
    with pytest.raises(InvalidInput, match="64 hexadecimal"):
        service.store_upload("alice", UploadCommand(chunks=never_read(), content_sha256=declared))


# --- fields that come after the bytes -----------------------------------------------------------


def test_fields_that_arrive_after_the_bytes_are_validated_and_win(
    service: ImageService, png: bytes
) -> None:
    image = service.store_upload(
        "alice",
        UploadCommand(chunks=[png], title="early", late_fields=lambda: {"title": "late"}),
    ).image
    assert image.title == "late"


def test_invalid_late_fields_leave_nothing_behind(
    service: ImageService, blobs: MemoryBlobStore, repository: MemoryImageRepository, png: bytes
) -> None:
    with pytest.raises(InvalidInput):
        service.store_upload(
            "alice", UploadCommand(chunks=[png], late_fields=lambda: {"visibility": "secret"})
        )
    assert blobs.keys() == []
    assert list(repository.unsettled()) == []


def test_an_if_match_from_before_the_thumbnail_still_holds_for_an_edit(
    service: ImageService, png: bytes
) -> None:
    from imagecore.commands import UpdateCommand
    from imagecore.errors import PreconditionFailed

    image = service.store_upload("alice", UploadCommand(chunks=[png])).image
    service.make_thumbnail(image.image_id)  # version 2, but the metadata is as it was

    edited = service.update("alice", image.image_id, UpdateCommand(title="a"), image.version)

    assert (edited.title, edited.version, edited.thumbnail_status) == (
        "a",
        3,
        ThumbnailStatus.READY,
    )
    with pytest.raises(PreconditionFailed):
        service.update("alice", image.image_id, UpdateCommand(title="b"), image.version + 1)
