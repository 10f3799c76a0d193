"""What the use cases answer with, beyond an Image itself."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime

import attrs

from imagecore.model import ByteRange, Image


@attrs.frozen
class Stored:
    """The outcome of an upload: the image, and whether it is new or one the caller had."""

    image: Image
    created: bool


@attrs.frozen
class UploadSlot:
    """Where and until when the client may send the bytes of the image ``upload_id`` becomes."""

    upload_id: str
    url: str
    fields: Mapping[str, str]
    expires_at: datetime
    max_bytes: int


@attrs.frozen
class Page:
    images: Sequence[Image]
    next_cursor: str | None


@attrs.frozen
class ReconcileReport:
    deletes_finished: int
    blobs_checked: int
    orphans_removed: int
    jobs_requeued: int = 0
    """Jobs queued again for images whose background work was still outstanding after the
    grace period (a queue that already holds such a job keeps the one it has)."""


@attrs.frozen
class Download:
    """An image's bytes (or its thumbnail's), in the fastest forms the blob store offers: a URL
    the client can fetch itself, a local file the server can send, and always a stream.
    ``size`` is None where it is not known without reading the bytes."""

    image: Image
    content_type: str
    filename: str
    etag: str
    size: int | None
    presigned_url: str | None
    local_path: str | None
    _open: Callable[[ByteRange | None], Iterator[bytes]]

    def open(self, byte_range: ByteRange | None = None) -> Iterator[bytes]:
        return self._open(byte_range)
