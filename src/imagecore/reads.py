"""The use cases that only read: list, get, and the bytes of an image or of its renditions,
each as the caller may see it (privacy.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import attrs

from imagecore import blob_keys
from imagecore.cursor import CursorCodec
from imagecore.errors import NotAcceptable, NotFound
from imagecore.lookups import find_image, visible
from imagecore.model import Image, ThumbnailStatus
from imagecore.ports import BlobStore, ImageRepository
from imagecore.privacy import hides_location_from, shown_to
from imagecore.query import ListQuery
from imagecore.recent_reads import IMAGES_KEPT, PAGES_KEPT, RecentReads
from imagecore.results import Download, Page
from imagecore.thumbnails import (
    RENDITION_NAMES,
    THUMBNAIL,
    rendition_filename,
    thumbnail_content_type,
    thumbnail_filename,
)

PUBLIC_RENDITION_URL_TTL = timedelta(days=1)
"""How long a link to a public image's rendition lives: what it names never changes and anyone
may see it, so a link that lasts lets browsers keep it (a CDN's links are one per window of
this length: adapters.cloudfront)."""


@attrs.frozen
class Reads:
    repository: ImageRepository
    blobs: BlobStore
    cursors: CursorCodec
    url_ttl: timedelta
    thumbnail_side: int
    recent_pages: RecentReads[Page] = attrs.field(factory=lambda: RecentReads(PAGES_KEPT))
    recent_images: RecentReads[Image] = attrs.field(factory=lambda: RecentReads(IMAGES_KEPT))

    def list_images(self, caller: str, query: ListQuery, cursor: str | None = None) -> Page:
        """One page of the images the caller may see that match the query, and a cursor to the
        next page while there is one. A page read again while no write was committed is the
        one kept from before (see recent_reads)."""
        after = self.cursors.decode(cursor, query, caller) if cursor else None
        expires = self.cursors.expiry()
        # Read before the list: a write committed meanwhile changes the revision the page is
        # kept under, so it is never served after the write.
        revision = self.repository.revision()
        key = None if revision is None else (revision, caller, query, after, expires)
        if key is not None:
            kept = self.recent_pages.get(key)
            if kept is not None:
                return kept
        found = self.repository.list(query, caller, after, query.limit + 1)
        images = [shown_to(image, caller) for image in found.images[: query.limit]]
        next_cursor = None
        if len(found.images) > query.limit:
            next_cursor = self.cursors.encode(images[-1].position, query, caller, expires)
        elif found.read_up_to is not None:
            # Short, not ended: the store read its budget; the next page goes on from there.
            next_cursor = self.cursors.encode(found.read_up_to, query, caller, expires)
        page = Page(images, next_cursor)
        if key is not None:
            self.recent_pages.put(key, page)
        return page

    def get(self, caller: str, image_id: str) -> Image:
        """The image, if the caller may see it: its owner always, anyone if it is public. An
        image read again while no write was committed is the one kept from before."""
        revision = self.repository.revision()  # before the read: see list_images
        key = None if revision is None else (revision, image_id)
        image = None if key is None else self.recent_images.get(key)
        if image is None:
            image = find_image(self.repository, image_id)
            if image is not None and key is not None:
                self.recent_images.put(key, image)
        return shown_to(visible(image, caller), caller)

    def download(self, caller: str, image_id: str) -> Download:
        """The image's original bytes, as they were uploaded; to anyone but the owner, without
        the file's record of where it was taken (unless the owner shares it), from the copy
        made with the thumbnail: until then, NotFound."""
        image = self.get(caller, image_id)
        key, etag = image.blob_key, image.content_etag
        if image.location_patches and hides_location_from(image, caller):
            if image.thumbnail_status is ThumbnailStatus.PENDING:
                raise NotFound("the image is still being processed: try again in a moment")
            key, etag = blob_keys.shared_original_key(image.blob_key), f'"{image.sha256}-shared"'
        return self._download(image, key, image.content_type, image.filename, etag, size=image.size)

    def thumbnail(self, caller: str, image_id: str) -> Download:
        """The image's thumbnail, once it is ready, in the format that keeps what the original
        has: JPEG for a JPEG, else WebP (which keeps transparency)."""
        image = self.get(caller, image_id)
        if image.thumbnail_status is not ThumbnailStatus.READY:
            raise NotFound(f"the thumbnail is not ready: it is {image.thumbnail_status.value}")
        content_type = thumbnail_content_type(image)
        if image.rendition(THUMBNAIL) is None:  # made before renditions were
            return self._download(
                image,
                blob_keys.thumbnail_key(image.blob_key),
                content_type,
                thumbnail_filename(image),
                f'"{image.sha256}-t{self.thumbnail_side}"',
                size=None,
            )
        return self._rendition(image, THUMBNAIL, (content_type,))

    def rendition(
        self, caller: str, image_id: str, name: str, acceptable: Sequence[str]
    ) -> Download:
        """The rendition ``name`` of the image, once made, in the first of the ``acceptable``
        content types (the client's preference, best first) it is kept in; NotAcceptable if
        it is kept in none of them."""
        return self._rendition(self.get(caller, image_id), name, acceptable)

    def _rendition(self, image: Image, name: str, acceptable: Sequence[str]) -> Download:
        rendition = image.rendition(name)
        if rendition is None:
            if name not in RENDITION_NAMES:
                raise NotFound(f"no rendition {name!r}: there are {', '.join(RENDITION_NAMES)}")
            raise NotFound(f"the {name} is not ready: the thumbnail is {image.thumbnail_status}")
        chosen = next((kind for kind in acceptable if kind in rendition.content_types), None)
        if chosen is None:
            raise NotAcceptable(
                f"the {name} is kept as {', '.join(rendition.content_types)}: accept one of them"
            )
        key = blob_keys.rendition_key(image.blob_key, rendition, chosen)
        return self._download(
            image,
            key,
            chosen,
            rendition_filename(image, name, chosen),
            f'"{image.sha256}-{name}-{rendition.width}x{rendition.height}.'
            f'{blob_keys.extension(chosen)}"',
            size=None,
            url_ttl=max(self.url_ttl, PUBLIC_RENDITION_URL_TTL) if image.is_public else None,
            as_stored=True,  # put with its type by the thumbnail job
        )

    def _download(
        self,
        image: Image,
        key: str,
        content_type: str,
        filename: str,
        etag: str,
        *,
        size: int | None,
        url_ttl: timedelta | None = None,
        as_stored: bool = False,
    ) -> Download:
        presigned = self.blobs.presigned_get(
            key, url_ttl or self.url_ttl, filename, content_type, as_stored=as_stored
        )
        return Download(
            image=image,
            content_type=content_type,
            filename=filename,
            etag=etag,
            size=size,
            presigned_url=presigned,
            local_path=None if presigned else self.blobs.local_path(key),
            open=lambda byte_range: self.blobs.open(key, byte_range),
        )
