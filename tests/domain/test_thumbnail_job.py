"""The thumbnail job: queued by every upload, retried until its last attempt, stored beside the
original and served once ready; a thumbnail never gets in the way of a delete or an edit."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from adapters.memory import MemoryBlobStore
from imagecore.blob_keys import thumbnail_key
from imagecore.commands import UploadCommand
from imagecore.errors import InvalidInput, NotFound
from imagecore.model import THUMBNAIL_JOB, Job, ThumbnailStatus
from imagecore.service import ImageService
from tests.support.doubles import FakeThumbnailer, RecordingJobs


@pytest.fixture
def service(service_with_worker: ImageService) -> ImageService:
    """The service of these tests queues its jobs and has a thumbnailer (conftest.py)."""
    return service_with_worker


def test_an_upload_queues_its_thumbnail_job(
    service: ImageService, jobs: RecordingJobs, png: bytes
) -> None:
    image = service.store_upload("alice", UploadCommand(chunks=[png])).image

    assert jobs.jobs == [Job(kind=THUMBNAIL_JOB, image_id=image.image_id, user_id="alice")]
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
    service.run_job(Job(THUMBNAIL_JOB, image.image_id), final_attempt=True)
    assert thumbnailer.calls == [(256, "image/jpeg")]
    assert service.thumbnail("alice", image.image_id).content_type == "image/jpeg"


def test_a_failing_job_raises_to_be_retried_then_is_marked_failed_on_its_last_attempt(
    service: ImageService, thumbnailer: FakeThumbnailer, blobs: MemoryBlobStore, png: bytes
) -> None:
    thumbnailer.failures = 5
    image = service.store_upload("alice", UploadCommand(chunks=[png])).image

    with pytest.raises(OSError):
        service.run_job(Job(THUMBNAIL_JOB, image.image_id), final_attempt=False)
    assert service.get("alice", image.image_id).thumbnail_status is ThumbnailStatus.PENDING

    assert (
        service.run_job(Job(THUMBNAIL_JOB, image.image_id), final_attempt=True)
        is ThumbnailStatus.FAILED
    )
    assert service.get("alice", image.image_id).thumbnail_status is ThumbnailStatus.FAILED
    assert blobs.keys() == [image.blob_key]
    with pytest.raises(NotFound, match="failed"):
        service.thumbnail("alice", image.image_id)


def test_an_image_too_costly_to_decode_fails_at_once_without_a_retry(
    service: ImageService, thumbnailer: FakeThumbnailer, blobs: MemoryBlobStore, png: bytes
) -> None:
    thumbnailer.too_costly = True
    image = service.store_upload("alice", UploadCommand(chunks=[png])).image

    status = service.run_job(Job(THUMBNAIL_JOB, image.image_id), final_attempt=False)

    assert status is ThumbnailStatus.FAILED
    assert service.get("alice", image.image_id).thumbnail_status is ThumbnailStatus.FAILED
    assert service.run_job(Job(THUMBNAIL_JOB, image.image_id), final_attempt=False) is None
    assert len(thumbnailer.calls) == 1, "a refusal for cost is never tried again"
    assert blobs.keys() == [image.blob_key]


def test_a_settled_thumbnail_is_not_made_again(
    service: ImageService, thumbnailer: FakeThumbnailer, png: bytes
) -> None:
    image = service.store_upload("alice", UploadCommand(chunks=[png])).image
    service.run_job(Job(THUMBNAIL_JOB, image.image_id), final_attempt=True)
    assert service.run_job(Job(THUMBNAIL_JOB, image.image_id), final_attempt=True) is None
    assert len(thumbnailer.calls) == 1


def test_no_thumbnail_until_it_is_ready_and_none_for_whom_the_image_is_hidden(
    service: ImageService, png: bytes
) -> None:
    image = service.store_upload("alice", UploadCommand(chunks=[png])).image
    with pytest.raises(NotFound, match="pending"):
        service.thumbnail("alice", image.image_id)
    service.run_job(Job(THUMBNAIL_JOB, image.image_id), final_attempt=True)
    with pytest.raises(NotFound, match="no such image"):
        service.thumbnail("bob", image.image_id)


def test_deleting_an_image_deletes_its_thumbnail(
    service: ImageService, blobs: MemoryBlobStore, png: bytes
) -> None:
    image = service.store_upload("alice", UploadCommand(chunks=[png])).image
    service.run_job(Job(THUMBNAIL_JOB, image.image_id), final_attempt=True)

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
    assert service.run_job(Job(THUMBNAIL_JOB, image.image_id), final_attempt=True) is None
    assert blobs.keys() == []


def test_an_unknown_job_is_an_error(service: ImageService) -> None:
    with pytest.raises(InvalidInput):
        service.run_job(Job("resize", "01JD0000000000000000000009"), final_attempt=True)


def test_an_if_match_from_before_the_thumbnail_still_holds_for_an_edit(
    service: ImageService, png: bytes
) -> None:
    from imagecore.commands import UpdateCommand
    from imagecore.errors import PreconditionFailed

    image = service.store_upload("alice", UploadCommand(chunks=[png])).image
    service.run_job(
        Job(THUMBNAIL_JOB, image.image_id), final_attempt=True
    )  # version 2, but the metadata is as it was

    edited = service.update("alice", image.image_id, UpdateCommand(title="a"), image.version)

    assert (edited.title, edited.version, edited.thumbnail_status) == (
        "a",
        3,
        ThumbnailStatus.READY,
    )
    with pytest.raises(PreconditionFailed):
        service.update("alice", image.image_id, UpdateCommand(title="b"), image.version + 1)
