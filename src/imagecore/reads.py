"""The use cases that only read: list, get, and the bytes of an image or of its thumbnail."""

from __future__ import annotations

from datetime import timedelta

import attrs

from imagecore import blob_keys
from imagecore.cursor import CursorCodec
from imagecore.errors import NotFound
from imagecore.lookups import visible_image
from imagecore.model import Image, ThumbnailStatus
from imagecore.ports import BlobStore, ImageRepository
from imagecore.query import ListQuery
from imagecore.recent_pages import RecentPages
from imagecore.results import Download, Page
from imagecore.thumbnails import thumbnail_content_type, thumbnail_filename


@attrs.frozen
class Reads:
    repository: ImageRepository
    blobs: BlobStore
    cursors: CursorCodec
    url_ttl: timedelta
    thumbnail_side: int
    recent_pages: RecentPages = attrs.field(factory=RecentPages)

    def list_images(self, caller: str, query: ListQuery, cursor: str | None = None) -> Page:
        """One page of the images the caller may see that match the query, and a cursor to the
        next page while there is one. A page read again while no write was committed is the
        one kept from before (see recent_pages)."""
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
        images = list(found.images[: query.limit])
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
        """The image, if the caller may see it: its owner always, anyone if it is public."""
        return visible_image(self.repository, caller, image_id)

    def download(self, caller: str, image_id: str) -> Download:
        """The image's original bytes, as they were uploaded."""
        image = self.get(caller, image_id)
        return self._download(
            image,
            image.blob_key,
            image.content_type,
            image.filename,
            image.content_etag,
            size=image.size,
        )

    def thumbnail(self, caller: str, image_id: str) -> Download:
        """The image's thumbnail, once it is ready."""
        image = self.get(caller, image_id)
        if image.thumbnail_status is not ThumbnailStatus.READY:
            raise NotFound(f"the thumbnail is not ready: it is {image.thumbnail_status.value}")
        return self._download(
            image,
            blob_keys.thumbnail_key(image.blob_key),
            thumbnail_content_type(image),
            thumbnail_filename(image),
            f'"{image.sha256}-t{self.thumbnail_side}"',
            size=None,
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
    ) -> Download:
        presigned = self.blobs.presigned_get(key, self.url_ttl, filename, content_type)
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
