"""The thumbnail job: queued by every upload, retried until its last attempt, its renditions and
placeholder made from one render, stored beside the original and served once ready; a
thumbnail never gets in the way of a delete or an edit."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta

import pytest

from adapters.memory import MemoryBlobStore
from imagecore.blob_keys import rendition_key
from imagecore.commands import UploadCommand
from imagecore.errors import InvalidInput, NotAcceptable, NotFound
from imagecore.model import THUMBNAIL_JOB, Job, Rendered, Rendition, RenditionSize, ThumbnailStatus
from imagecore.service import ImageService
from imagecore.uploads import DEFAULT_URL_TTL
from tests.support.doubles import FakeClock, FakeRenderer, RecordingJobs, make_service


@pytest.fixture
def service(service_with_worker: ImageService) -> ImageService:
    """The service of these tests queues its jobs and has a renderer (conftest.py)."""
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
    service: ImageService, blobs: MemoryBlobStore, renderer: FakeRenderer, png: bytes
) -> None:
    image = service.store_upload("alice", UploadCommand(chunks=[png], filename="sea.png")).image

    service.run_job(Job(THUMBNAIL_JOB, image.image_id), final_attempt=False)

    ready = service.get("alice", image.image_id)
    assert ready.thumbnail_status is ThumbnailStatus.READY
    assert ready.version == image.version + 1, "the resource changed, so its ETag does"
    assert renderer.calls == [(RenditionSize("thumbnail", 256), RenditionSize("preview", 1440))]
    formats = ("image/webp", "image/jpeg")
    assert ready.renditions == (
        Rendition("thumbnail", 256, 170, formats),
        Rendition("preview", 1440, 960, formats),
    )
    assert ready.placeholder == FakeRenderer.PLACEHOLDER
    assert rendition_key(image.blob_key, ready.renditions[1], "image/webp") == (
        image.blob_key + "/renditions/preview-1440x960.webp"
    )
    found = service.thumbnail("alice", image.image_id)
    assert b"".join(found.open()) == b"thumbnail:image/webp:" + png[:8]
    assert (found.content_type, found.filename) == ("image/webp", "sea-thumbnail.webp")
    assert found.etag != service.download("alice", image.image_id).etag
    assert len(blobs.keys()) == 1 + 2 * 2, "the original and two renditions in two formats"


def test_a_rendition_is_served_in_the_first_format_the_caller_accepts_that_it_has(
    service: ImageService, png: bytes
) -> None:
    image = service.store_upload(
        "alice", UploadCommand(chunks=[png], filename="sea.png", visibility="public")
    ).image
    service.run_job(Job(THUMBNAIL_JOB, image.image_id), final_attempt=True)

    webp = service.rendition("bob", image.image_id, "preview", ("image/avif", "image/webp"))
    jpeg = service.rendition("bob", image.image_id, "preview", ("image/jpeg", "image/webp"))

    assert b"".join(webp.open()) == b"preview:image/webp:" + png[:8]
    assert (jpeg.content_type, jpeg.filename) == ("image/jpeg", "sea-preview.jpg")
    assert webp.etag != jpeg.etag
    with pytest.raises(NotAcceptable, match="image/webp, image/jpeg"):
        service.rendition("bob", image.image_id, "preview", ("image/avif",))
    with pytest.raises(NotFound, match="no rendition 'poster'"):
        service.rendition("bob", image.image_id, "poster", ("image/jpeg",))
    with pytest.raises(NotFound, match="no such image"):
        service.rendition("carol", "01JD0000000000000000000009", "preview", ("image/jpeg",))


def test_no_rendition_until_they_are_made(service: ImageService, png: bytes) -> None:
    image = service.store_upload("alice", UploadCommand(chunks=[png])).image
    with pytest.raises(NotFound, match="not ready"):
        service.rendition("alice", image.image_id, "preview", ("image/jpeg",))


def test_a_jpeg_gets_a_jpeg_thumbnail(
    service: ImageService, renderer: FakeRenderer, jpeg: bytes
) -> None:
    image = service.store_upload("alice", UploadCommand(chunks=[jpeg])).image
    service.run_job(Job(THUMBNAIL_JOB, image.image_id), final_attempt=True)
    assert service.thumbnail("alice", image.image_id).content_type == "image/jpeg"


def test_a_failing_job_raises_to_be_retried_then_is_marked_failed_on_its_last_attempt(
    service: ImageService, renderer: FakeRenderer, blobs: MemoryBlobStore, png: bytes
) -> None:
    renderer.failures = 5
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
    service: ImageService, renderer: FakeRenderer, blobs: MemoryBlobStore, png: bytes
) -> None:
    renderer.too_costly = True
    image = service.store_upload("alice", UploadCommand(chunks=[png])).image

    status = service.run_job(Job(THUMBNAIL_JOB, image.image_id), final_attempt=False)

    assert status is ThumbnailStatus.FAILED
    assert service.get("alice", image.image_id).thumbnail_status is ThumbnailStatus.FAILED
    assert service.run_job(Job(THUMBNAIL_JOB, image.image_id), final_attempt=False) is None
    assert len(renderer.calls) == 1, "a refusal for cost is never tried again"
    assert blobs.keys() == [image.blob_key]


def test_a_settled_thumbnail_is_not_made_again(
    service: ImageService, renderer: FakeRenderer, png: bytes
) -> None:
    image = service.store_upload("alice", UploadCommand(chunks=[png])).image
    service.run_job(Job(THUMBNAIL_JOB, image.image_id), final_attempt=True)
    assert service.run_job(Job(THUMBNAIL_JOB, image.image_id), final_attempt=True) is None
    assert len(renderer.calls) == 1


def test_no_thumbnail_until_it_is_ready_and_none_for_whom_the_image_is_hidden(
    service: ImageService, png: bytes
) -> None:
    image = service.store_upload("alice", UploadCommand(chunks=[png])).image
    with pytest.raises(NotFound, match="pending"):
        service.thumbnail("alice", image.image_id)
    service.run_job(Job(THUMBNAIL_JOB, image.image_id), final_attempt=True)
    with pytest.raises(NotFound, match="no such image"):
        service.thumbnail("bob", image.image_id)


def test_deleting_an_image_deletes_its_renditions(
    service: ImageService, blobs: MemoryBlobStore, png: bytes
) -> None:
    image = service.store_upload("alice", UploadCommand(chunks=[png])).image
    service.run_job(Job(THUMBNAIL_JOB, image.image_id), final_attempt=True)

    service.delete("alice", image.image_id)

    assert blobs.keys() == []


def test_a_thumbnail_made_while_its_image_was_deleted_is_removed(
    service: ImageService, blobs: MemoryBlobStore, renderer: FakeRenderer, png: bytes
) -> None:
    image = service.store_upload("alice", UploadCommand(chunks=[png])).image
    original = renderer.render

    def render_then_delete(chunks: Iterable[bytes], sizes: Sequence[RenditionSize]) -> Rendered:
        made = original(chunks, sizes)
        service.delete("alice", image.image_id)  # the owner deletes it meanwhile
        return made

    renderer.render = render_then_delete  # type: ignore[method-assign]
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


def test_a_public_images_rendition_links_last_a_day_and_a_private_ones_the_usual_while(
    clock: FakeClock, png: bytes
) -> None:
    """A public rendition never changes and anyone may see it: a link that lasts lets
    browsers keep it. Links to anything private last as long as every other link. Renditions
    may be served as stored (a CDN's links); an original needs its name and type asked for."""
    asked: list[tuple[timedelta, bool]] = []

    class LinkingBlobs(MemoryBlobStore):
        def presigned_get(
            self,
            key: str,
            ttl: timedelta,
            filename: str,
            content_type: str,
            *,
            as_stored: bool = False,
        ) -> str | None:
            asked.append((ttl, as_stored))
            return f"https://blobs.example/{key}"

    service = make_service(
        clock, blobs=LinkingBlobs(), jobs=RecordingJobs(), renderer=FakeRenderer()
    )
    public = service.store_upload("alice", UploadCommand(chunks=[png], visibility="public"))
    private = service.store_upload("alice", UploadCommand(chunks=[png]))
    for stored in (public, private):
        service.run_job(Job(THUMBNAIL_JOB, stored.image.image_id), final_attempt=True)

    service.rendition("alice", public.image.image_id, "preview", ("image/webp",))
    service.rendition("alice", private.image.image_id, "preview", ("image/webp",))
    service.download("alice", public.image.image_id)

    assert asked == [(timedelta(days=1), True), (DEFAULT_URL_TTL, True), (DEFAULT_URL_TTL, False)]
