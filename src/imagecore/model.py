"""The image and the values around it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import attrs

MetadataValue = str | int | float | bool | None
"""Metadata is a flat JSON object: its values are scalars, never objects or arrays."""


class Visibility(StrEnum):
    PRIVATE = "private"
    PUBLIC = "public"


class ThumbnailStatus(StrEnum):
    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


class ImageState(StrEnum):
    """Where an image is in its life. Only ACTIVE images are ever shown to anyone.

    UPLOADING is a direct upload's slot: the details are known, the bytes have not arrived.
    DELETING is the tombstone written before any blob is removed; DELETED means the blobs are
    gone and only the tombstone remains, so that a repeated DELETE still answers 204.
    """

    UPLOADING = "uploading"
    ACTIVE = "active"
    DELETING = "deleting"
    DELETED = "deleted"


class SortOrder(StrEnum):
    DESC = "desc"
    ASC = "asc"


ACCEPTED_CONTENT_TYPES: tuple[str, ...] = (
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/heic",
    "image/heif",
    "image/avif",
)

RENDITION_CONTENT_TYPES: tuple[str, ...] = ("image/avif", "image/webp", "image/jpeg")
"""What renditions may be encoded as, best first: every rendition is made in JPEG and WebP, and
in AVIF where the renderer has an encoder for it."""


def _frozen_metadata(value: Mapping[str, MetadataValue]) -> Mapping[str, MetadataValue]:
    return MappingProxyType(dict(value))


@attrs.frozen
class GeoPosition:
    """Where a photo was taken, in decimal degrees (WGS 84), as its EXIF GPS tags say."""

    latitude: float
    longitude: float


def _frozen_fields(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


@attrs.frozen
class BytePatch:
    """Bytes of a file to be replaced by ``data``, as long as what they replace, from
    ``offset``: how an original loses its location without being re-encoded."""

    offset: int
    data: bytes

    @property
    def end(self) -> int:
        return self.offset + len(self.data)


@attrs.frozen
class ImageFacts:
    """What the bytes themselves say, read from the header without decoding the pixels.

    The EXIF facts are None where the image carries none, or carries values no camera could
    have written (they are dropped, never trusted).
    """

    content_type: str
    width: int
    height: int
    camera_make: str | None = None
    camera_model: str | None = None
    orientation: int | None = None
    """EXIF orientation, 1 (upright) to 8."""
    captured_at: str | None = None
    """When the photo was taken, as EXIF says: ISO 8601 ``YYYY-MM-DDTHH:MM:SS``, with the UTC
    offset (``+02:00``) only where the image records one; EXIF time is the camera's local time."""
    position: GeoPosition | None = None
    location_patches: tuple[BytePatch, ...] = ()
    """What makes the file's own record of where it was taken and of the camera's serial
    numbers unreadable (EXIF GPS, serials), the file otherwise unchanged; empty where it has
    none."""

    @property
    def pixels(self) -> int:
        return self.width * self.height


@attrs.frozen
class StoredBlob:
    size: int
    sha256: str


@attrs.frozen
class ByteRange:
    """Bytes ``start`` to ``end`` inclusive, as in an HTTP Range header."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


@attrs.frozen
class UploadTarget:
    """Where a client posts a direct upload's bytes, and the form fields to send with them."""

    url: str
    fields: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_fields)


@attrs.frozen
class PartTarget:
    """Where a client PUTs one part of a multipart upload: the URL, and the headers it must
    send with the part (the part's checksum, signed into the URL, so the store verifies it)."""

    url: str
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_fields)


@attrs.frozen
class ReceivedPart:
    """A part of a multipart upload the store holds: its number (from 1), its size in bytes,
    the entity tag the store gave it, and its SHA-256 in base64 where the store tells it."""

    number: int
    size: int
    etag: str
    checksum: str | None = None


@attrs.frozen
class Placeholder:
    """What a client draws where an image will be before any of its bytes arrive: a blurhash
    (https://blurha.sh) of it, its dominant colour (``#rrggbb``) and its aspect ratio (width over
    height, as it is shown: upright)."""

    blurhash: str
    dominant_color: str
    aspect_ratio: float


@attrs.frozen
class Rendition:
    """A scaled copy of an image, made once by the background worker: its name (``thumbnail``,
    ``preview``), its size in pixels, and the formats it is kept in, best first."""

    name: str
    width: int
    height: int
    content_types: tuple[str, ...]


@attrs.frozen
class RenditionSize:
    """A rendition to make: its name and the longest side it may have, in pixels."""

    name: str
    max_side: int


@attrs.frozen
class RenderedRendition:
    """A rendition as the renderer made it: its size and its bytes in each format, best first."""

    name: str
    width: int
    height: int
    encodings: Mapping[str, bytes]

    @property
    def rendition(self) -> Rendition:
        return Rendition(self.name, self.width, self.height, tuple(self.encodings))


@attrs.frozen
class Rendered:
    """Everything made from one decode of an image: its renditions and its placeholder."""

    renditions: tuple[RenderedRendition, ...]
    placeholder: Placeholder


@attrs.frozen
class Job:
    """Background work on one image. ``kind`` says what: today only THUMBNAIL_JOB.
    ``user_id`` is the image's owner, whose jobs a queue may weigh against other users' so
    that no one user's jobs hold everyone else's back; None where it is not known (a job
    queued before the field existed)."""

    kind: str
    image_id: str
    user_id: str | None = None


THUMBNAIL_JOB = "thumbnail"

RECORD_RETENTION = timedelta(days=30)
"""How long a store keeps a record nothing will use again: a deleted image's tombstone (a
repeated DELETE answers 204 meanwhile), an upload slot after it can no longer take bytes."""
LONGEST_UPLOAD_LINK = timedelta(days=7)
"""No direct-upload link lives longer (S3's limit on a presigned URL's life)."""


@attrs.frozen
class Position:
    """A place in the list order: every list is ordered by (created_at, image_id)."""

    created_at: datetime
    image_id: str


@attrs.frozen(eq=True)
class Image:
    image_id: str
    user_id: str
    filename: str
    content_type: str
    size: int
    width: int
    height: int
    sha256: str
    blob_key: str
    created_at: datetime
    updated_at: datetime
    title: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, MetadataValue] = attrs.field(
        factory=dict, converter=_frozen_metadata, eq=attrs.cmp_using(eq=lambda a, b: a == b)
    )
    visibility: Visibility = Visibility.PRIVATE
    version: int = 1
    thumbnail_status: ThumbnailStatus = ThumbnailStatus.PENDING
    state: ImageState = ImageState.ACTIVE
    edit_version: int | None = None
    """The version at which the metadata a client may change last changed; None when that is
    ``version`` itself. Background work (a thumbnail settling) moves ``version`` on, so the
    resource's ETag changes, but not this: an If-Match naming any version since is still
    current for a change of the metadata."""
    claims_content: bool = False
    """Whether this image claims its bytes for its owner: it was uploaded with their SHA-256
    declared, and while it is ACTIVE no other image of the owner claiming the same bytes may be
    stored beside it (see ImageRepository), so uploads that declare the hash never make two
    images of one file, however many arrive at once. A direct upload's slot (UPLOADING) asked
    for with the file's SHA-256 claims it already: ``sha256`` is then the hash its bytes must
    have, and the claim is checked once they make it ACTIVE. Never shown to clients."""
    resumable_until: datetime | None = None
    """A resumable upload's slot (UPLOADING): the moment it stops taking bytes. None for every
    other image, a one-shot direct upload's slot included (that expires with its link)."""
    upload_handle: str | None = None
    """The store's own name for the bytes a resumable upload holds so far (S3's multipart
    upload id); None where the store needs none. Never shown to clients."""
    renditions: tuple[Rendition, ...] = ()
    """Made with the thumbnail; empty until then (and for images made before renditions)."""
    placeholder: Placeholder | None = None
    """Made with the thumbnail; None until then."""
    share_location: bool = False
    """Whether the owner shows everyone where the image was taken: its ``gps_*`` metadata and
    the position in the original file. Off unless the owner turns it on."""
    location_patches: tuple[BytePatch, ...] = ()
    """What the original's copy for other people changes (ImageFacts.location_patches). Never
    shown to clients."""

    @property
    def last_edit(self) -> int:
        return self.version if self.edit_version is None else self.edit_version

    def is_current_for_edit(self, version: int) -> bool:
        """Whether a client that saw ``version`` saw the metadata as it is now."""
        return self.last_edit <= version <= self.version

    @property
    def position(self) -> Position:
        return Position(self.created_at, self.image_id)

    @property
    def is_active(self) -> bool:
        return self.state is ImageState.ACTIVE

    @property
    def holds_content_claim(self) -> bool:
        """Whether this image holds the claim on its owner's copy of its bytes: it claims them
        and is ACTIVE. A tombstone releases the claim, so the same bytes can be uploaded again."""
        return self.claims_content and self.is_active

    @property
    def outstanding_jobs(self) -> tuple[Job, ...]:
        """The background work this image still needs: an active image whose thumbnail is
        pending needs a thumbnail job. A store that keeps jobs beside images (SQLite) writes
        these with the image, so a job acknowledged with its image is never lost."""
        if self.is_active and self.thumbnail_status is ThumbnailStatus.PENDING:
            return (Job(THUMBNAIL_JOB, self.image_id, user_id=self.user_id),)
        return ()

    @property
    def is_public(self) -> bool:
        return self.visibility is Visibility.PUBLIC

    def is_visible_to(self, caller: str) -> bool:
        return self.is_active and (self.user_id == caller or self.visibility is Visibility.PUBLIC)

    @property
    def etag(self) -> str:
        """The resource's entity tag: changes with every metadata version."""
        return f'"v{self.version}"'

    @property
    def content_etag(self) -> str:
        """The download's entity tag: the content hash, the same for identical bytes."""
        return f'"{self.sha256}"'

    # The state transitions. Each is a new version, so a write of it is conditional on the
    # version it was made from (ImageRepository.replace).

    def edited(self, changes: Mapping[str, Any], now: datetime) -> Image:
        """The owner's metadata changed: a new version, and the metadata's own."""
        return attrs.evolve(
            self, version=self.version + 1, edit_version=None, updated_at=now, **changes
        )

    @property
    def forgettable_after(self) -> datetime | None:
        """When a store may drop this record by itself (DynamoDB's time to live): a tombstone
        whose bytes are gone, or an upload slot long past the end of its link or session, once
        kept for RECORD_RETENTION. None while anything may still need it."""
        if self.state is ImageState.DELETED:
            return self.updated_at + RECORD_RETENTION
        if self.state is ImageState.UPLOADING:
            closes = self.resumable_until or self.created_at + LONGEST_UPLOAD_LINK
            return closes + RECORD_RETENTION
        return None

    @property
    def is_resumable_slot(self) -> bool:
        return self.state is ImageState.UPLOADING and self.resumable_until is not None

    def claimed(self, now: datetime) -> Image:
        """A direct-upload slot taken by the bytes that arrived for it."""
        return attrs.evolve(self, version=self.version + 1, updated_at=now)

    def tombstoned(self, now: datetime) -> Image:
        """Marked for deletion: invisible at once, its bytes still to be removed."""
        return attrs.evolve(
            self, state=ImageState.DELETING, version=self.version + 1, updated_at=now
        )

    def erased(self) -> Image:
        """Its bytes gone: only a tombstone that says nothing of what the image was."""
        return attrs.evolve(
            self,
            state=ImageState.DELETED,
            filename="",
            title="",
            description="",
            tags=(),
            metadata={},
            renditions=(),
            placeholder=None,
            location_patches=(),
            version=self.version + 1,
        )

    def with_thumbnail(
        self,
        status: ThumbnailStatus,
        renditions: tuple[Rendition, ...] = (),
        placeholder: Placeholder | None = None,
    ) -> Image:
        """The thumbnail settled, with the other renditions and the placeholder made with it:
        a new version, but the metadata a client may change did not change, so an If-Match
        naming the version before still holds for an edit."""
        return attrs.evolve(
            self,
            thumbnail_status=status,
            renditions=renditions,
            placeholder=placeholder,
            version=self.version + 1,
            edit_version=self.last_edit,
        )

    def rendition(self, name: str) -> Rendition | None:
        return next((made for made in self.renditions if made.name == name), None)


def version_from_etag(tag: str) -> int | None:
    """The version an ``If-Match`` value names: ``3``, ``"v3"`` or ``W/"v3"``; None for ``*``.

    Raises ValueError for anything that could never name a version.
    """
    text = tag.strip()
    if text == "*":
        return None
    match = _VERSION_TAG.fullmatch(text)
    if match is None:
        raise ValueError(tag)
    return int(match["quoted"] or match["bare"])


_VERSION_TAG = re.compile(r'(?:W/)?"v(?P<quoted>[0-9]{1,18})"|(?P<bare>[0-9]{1,18})')
