"""The thumbnail use case: the background job that, once an image's bytes are stored, makes its
renditions (the thumbnail and the preview, in each format) and its placeholder from one decode,
and the copy of its original that people other than the owner download (privacy.py); and the
rules of what a thumbnail is."""

from __future__ import annotations

import logging

import attrs

from imagecore import blob_keys
from imagecore.errors import InvalidInput, ThumbnailTooCostly
from imagecore.lookups import find_image
from imagecore.model import (
    THUMBNAIL_JOB,
    Image,
    Job,
    Placeholder,
    Rendered,
    Rendition,
    RenditionSize,
    ThumbnailStatus,
)
from imagecore.ports import BlobStore, ImageRepository, Renderer
from imagecore.privacy import patched
from imagecore.retry import retry_on_conflict

DEFAULT_THUMBNAIL_SIDE = 256
DEFAULT_PREVIEW_SIDE = 1440
THUMBNAIL = "thumbnail"
PREVIEW = "preview"
RENDITION_NAMES = (THUMBNAIL, PREVIEW)
DEFAULT_THUMBNAIL_TIMEOUT_SECONDS = 30
"""How long one thumbnail may take before it is stopped and marked failed."""

log = logging.getLogger("imagecore.thumbnails")


THUMBNAIL_CONTENT_TYPES = ("image/jpeg", "image/webp")


def thumbnail_content_type(image: Image) -> str:
    """What GET /images/{id}/thumbnail serves: a photo's thumbnail (a JPEG's, or a HEIC's,
    as phones take them) is a JPEG; formats that may carry transparency get a WebP, which
    keeps it."""
    jpeg, webp = THUMBNAIL_CONTENT_TYPES
    return jpeg if image.content_type in ("image/jpeg", "image/heic") else webp


def thumbnail_filename(image: Image) -> str:
    return rendition_filename(image, THUMBNAIL, thumbnail_content_type(image))


def rendition_filename(image: Image, name: str, content_type: str) -> str:
    stem = image.filename.rsplit(".", 1)[0] or "image"
    return f"{stem}-{name}.{blob_keys.extension(content_type)}"


def rendition_sizes(thumbnail_side: int, preview_side: int) -> tuple[RenditionSize, ...]:
    return (RenditionSize(THUMBNAIL, thumbnail_side), RenditionSize(PREVIEW, preview_side))


@attrs.frozen
class Thumbnails:
    """Without a ``renderer`` no thumbnail is ever made: they stay pending."""

    repository: ImageRepository
    blobs: BlobStore
    renderer: Renderer | None
    sizes: tuple[RenditionSize, ...]

    def run_job(self, job: Job, final_attempt: bool) -> ThumbnailStatus | None:
        """Do one background job, and say what it settled. Raises if it failed and should be
        tried again."""
        if job.kind == THUMBNAIL_JOB:
            return self.make_thumbnail(job.image_id, final_attempt)
        raise InvalidInput(f"no job of kind {job.kind!r}")

    def make_thumbnail(self, image_id: str, final_attempt: bool = True) -> ThumbnailStatus | None:
        """Make the image's renditions and placeholder, and the copy of its original others
        download where that differs, and mark its thumbnail ready. A failure raises, to be
        tried again, unless this is the final attempt: then the thumbnail is marked failed
        (the copy for others is made first, so that a failed thumbnail leaves the original
        downloadable). An image the renderer refuses for its cost (ThumbnailTooCostly) is
        marked failed at once: it would cost the same again. None if there was nothing to do
        (the image is gone, or its thumbnail is already settled)."""
        image = find_image(self.repository, image_id)
        if (
            image is None
            or not image.is_active
            or image.thumbnail_status is not ThumbnailStatus.PENDING
            or self.renderer is None
        ):
            return None
        written: list[str] = []
        try:
            written.extend(self._shared_original(image))
            rendered = self.renderer.render(self.blobs.open(image.blob_key), self.sizes)
            written.extend(self._store(image, rendered))
        except ThumbnailTooCostly as refusal:
            log.warning("thumbnail of image %s refused for its cost: %s", image_id, refusal)
            return self._settle(image_id, ThumbnailStatus.FAILED, written)
        except Exception:
            if not final_attempt:
                raise
            log.warning("thumbnail of image %s failed for good", image_id, exc_info=True)
            return self._settle(image_id, ThumbnailStatus.FAILED, written)
        return self._settle(
            image_id,
            ThumbnailStatus.READY,
            written,
            tuple(made.rendition for made in rendered.renditions),
            rendered.placeholder,
        )

    def _shared_original(self, image: Image) -> list[str]:
        if not image.location_patches:
            return []
        key = blob_keys.shared_original_key(image.blob_key)
        self.blobs.put(
            key,
            patched(self.blobs.open(image.blob_key), image.location_patches),
            image.content_type,
        )
        return [key]

    def _store(self, image: Image, rendered: Rendered) -> list[str]:
        keys = []
        for made in rendered.renditions:
            for content_type, data in made.encodings.items():
                key = blob_keys.rendition_key(image.blob_key, made.rendition, content_type)
                self.blobs.put(key, [data], content_type)
                keys.append(key)
        return keys

    def _settle(
        self,
        image_id: str,
        status: ThumbnailStatus,
        written: list[str],
        renditions: tuple[Rendition, ...] = (),
        placeholder: Placeholder | None = None,
    ) -> ThumbnailStatus | None:
        def attempt() -> ThumbnailStatus | None:
            current = self.repository.get(image_id)
            if current is None or not current.is_active:
                for key in written:  # deleted meanwhile: what was made for it goes too
                    self.blobs.delete(key)
                return None
            if current.thumbnail_status is not ThumbnailStatus.PENDING:
                return None
            self.repository.replace(
                current.with_thumbnail(status, renditions, placeholder), current.version
            )
            return status

        return retry_on_conflict(
            attempt, "the image kept changing while its thumbnail was recorded"
        )
