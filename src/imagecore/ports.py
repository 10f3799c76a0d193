"""The ports: what the domain needs from the outside world, in the domain's own words.

Every adapter of a port passes the same contract suite (tests/contract), so the use cases can
rely on exactly what these docstrings promise and nothing more.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from imagecore.model import ByteRange, Image, ImageFacts, Position, StoredBlob
from imagecore.query import ListQuery


class ImageRepository(Protocol):
    """Image metadata. Writes are atomic per image; reads see every committed write."""

    def add(self, image: Image) -> None:
        """Store a new image. Raises AlreadyExists if its id is taken."""

    def get(self, image_id: str) -> Image | None:
        """The image with this id in whatever state it is, or None."""

    def replace(self, image: Image, expected_version: int) -> None:
        """Store ``image`` over the stored one only if that one is at ``expected_version``.

        Raises VersionConflict if the stored version differs or the image does not exist.
        """

    def list(
        self, query: ListQuery, caller: str, after: Position | None, limit: int
    ) -> Sequence[Image]:
        """Up to ``limit`` ACTIVE images that ``query.matches(image, caller)``, in ``query.order``
        by (created_at, image_id), strictly after ``after`` in that order when it is given."""

    def unfinished_deletes(self) -> Iterator[Image]:
        """Every image in the DELETING state: a delete began and has not finished. This reads
        the whole repository and is meant for the occasional reconciliation only."""


class BlobStore(Protocol):
    """Image bytes under opaque keys. A key never names a half-written blob."""

    def put(self, key: str, chunks: Iterable[bytes]) -> StoredBlob:
        """Store the bytes under ``key``, replacing any. If ``chunks`` raises, nothing is stored
        under the key and nothing is left behind; the error propagates."""

    def open(self, key: str, byte_range: ByteRange | None = None) -> Iterator[bytes]:
        """The stored bytes (or the inclusive range of them). Raises KeyError if there are none."""

    def delete(self, key: str) -> None:
        """Remove the blob; removing a missing blob is not an error."""

    def exists(self, key: str) -> bool: ...

    def stored_before(self, moment: datetime) -> Iterator[str]:
        """The keys of every blob last written before ``moment``, derivatives included, in no
        particular order. Lists the whole store: for the occasional reconciliation only."""

    def presigned_get(
        self, key: str, ttl: timedelta, filename: str, content_type: str
    ) -> str | None:
        """A short-lived URL a client can fetch the bytes from directly, where the store has one."""

    def local_path(self, key: str) -> str | None:
        """A file on this machine holding exactly the bytes, where the store keeps them so."""


class ImageInspector(Protocol):
    """Reads what an image is from the first bytes of it, without decoding the pixels."""

    def inspect(self, head: bytes) -> ImageFacts | None:
        """The facts of a JPEG, PNG, GIF or WebP whose header is in ``head``; None for anything
        else, including a header that is truncated or malformed."""


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""


class IdGenerator(Protocol):
    def new_id(self, now: datetime) -> str:
        """A new, unique image id that sorts by ``now``: 26 characters of Crockford base32."""
