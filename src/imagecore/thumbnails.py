"""The thumbnail use case: the background job that makes an image's thumbnail once its bytes
are stored, and the rules of what a thumbnail is."""

from __future__ import annotations

import logging

import attrs

from imagecore import blob_keys
from imagecore.errors import InvalidInput, ThumbnailTooCostly
from imagecore.lookups import find_image
from imagecore.model import THUMBNAIL_JOB, Image, Job, ThumbnailStatus
from imagecore.ports import BlobStore, ImageRepository, Thumbnailer
from imagecore.retry import retry_on_conflict

DEFAULT_THUMBNAIL_SIDE = 256
DEFAULT_THUMBNAIL_TIMEOUT_SECONDS = 30
"""How long one thumbnail may take before it is stopped and marked failed."""

log = logging.getLogger("imagecore.thumbnails")


THUMBNAIL_CONTENT_TYPES = ("image/jpeg", "image/webp")


def thumbnail_content_type(image: Image) -> str:
    """A photo's thumbnail is a JPEG; formats that may carry transparency get a WebP, which
    keeps it."""
    jpeg, webp = THUMBNAIL_CONTENT_TYPES
    return jpeg if image.content_type == "image/jpeg" else webp


def thumbnail_filename(image: Image) -> str:
    stem = image.filename.rsplit(".", 1)[0] or "image"
    extension = thumbnail_content_type(image).removeprefix("image/").replace("jpeg", "jpg")
    return f"{stem}-thumbnail.{extension}"


@attrs.frozen
class Thumbnails:
    """Without a ``thumbnailer`` no thumbnail is ever made: they stay pending."""

    repository: ImageRepository
    blobs: BlobStore
    thumbnailer: Thumbnailer | None
    thumbnail_side: int

    def run_job(self, job: Job, final_attempt: bool) -> ThumbnailStatus | None:
        """Do one background job, and say what it settled. Raises if it failed and should be
        tried again."""
        if job.kind == THUMBNAIL_JOB:
            return self.make_thumbnail(job.image_id, final_attempt)
        raise InvalidInput(f"no job of kind {job.kind!r}")

    def make_thumbnail(self, image_id: str, final_attempt: bool = True) -> ThumbnailStatus | None:
        """Make the image's thumbnail and mark it ready. A failure raises, to be tried again,
        unless this is the final attempt: then the thumbnail is marked failed. An image the
        thumbnailer refuses for its cost (ThumbnailTooCostly) is marked failed at once: it
        would cost the same again. None if there was nothing to do (the image is gone, or its
        thumbnail is already settled)."""
        image = find_image(self.repository, image_id)
        if (
            image is None
            or not image.is_active
            or image.thumbnail_status is not ThumbnailStatus.PENDING
            or self.thumbnailer is None
        ):
            return None
        key = blob_keys.thumbnail_key(image.blob_key)
        try:
            thumbnail = self.thumbnailer.thumbnail(
                self.blobs.open(image.blob_key), self.thumbnail_side, thumbnail_content_type(image)
            )
            self.blobs.put(key, [thumbnail])
        except ThumbnailTooCostly as refusal:
            log.warning("thumbnail of image %s refused for its cost: %s", image_id, refusal)
            return self._settle(image_id, ThumbnailStatus.FAILED, key)
        except Exception:
            if not final_attempt:
                raise
            log.warning("thumbnail of image %s failed for good", image_id, exc_info=True)
            return self._settle(image_id, ThumbnailStatus.FAILED, key)
        return self._settle(image_id, ThumbnailStatus.READY, key)

    def _settle(self, image_id: str, status: ThumbnailStatus, key: str) -> ThumbnailStatus | None:
        def attempt() -> ThumbnailStatus | None:
            current = self.repository.get(image_id)
            if current is None or not current.is_active:
                self.blobs.delete(key)  # deleted meanwhile: its thumbnail goes too
                return None
            if current.thumbnail_status is not ThumbnailStatus.PENDING:
                return None
            self.repository.replace(current.with_thumbnail(status), current.version)
            return status

        return retry_on_conflict(
            attempt, "the image kept changing while its thumbnail was recorded"
        )
