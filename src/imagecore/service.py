"""The use cases: every rule of the product lives here, expressed over the ports."""

from __future__ import annotations

import contextlib
import itertools
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Final

import attrs

from imagecore import validation
from imagecore.cursor import CursorCodec
from imagecore.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    Unauthenticated,
    UnsupportedMediaType,
    VersionConflict,
)
from imagecore.model import (
    ACCEPTED_CONTENT_TYPES,
    THUMBNAIL_JOB,
    ByteRange,
    Image,
    ImageFacts,
    ImageState,
    Job,
    MetadataValue,
    ThumbnailStatus,
    Visibility,
)
from imagecore.ports import (
    BlobStore,
    Clock,
    IdGenerator,
    ImageInspector,
    ImageRepository,
    JobQueue,
    Thumbnailer,
    UploadTargets,
)
from imagecore.query import ListQuery

HEAD_BYTES = 1024 * 1024
"""How much of an upload is read before it is accepted: enough for any sane image header."""

_WRITE_ATTEMPTS = 5
_SHA256 = re.compile(r"[0-9a-f]{64}")

log = logging.getLogger("imagecore.service")

IMAGES_PREFIX = "images"
UPLOADS_PREFIX = "uploads"
ORPHAN_GRACE = timedelta(hours=1)
"""How old bytes no image holds must be before reconcile removes them: an upload stores its
bytes before its metadata, so younger ones may be an upload still under way."""


def upload_key(owner: str, upload_id: str) -> str:
    """Where a client's direct upload lands; the upload id becomes the image's id."""
    return f"{UPLOADS_PREFIX}/{owner}/{upload_id}"


def thumbnail_key(image: Image) -> str:
    """Where an image's thumbnail lives: under the original's key, so it goes where that goes."""
    return f"{image.blob_key}/thumbnail"


def thumbnail_content_type(image: Image) -> str:
    """A photo's thumbnail is a JPEG; formats that may carry transparency get a WebP, which
    keeps it."""
    return "image/jpeg" if image.content_type == "image/jpeg" else "image/webp"


EXIF_METADATA_KEYS = ("camera_make", "camera_model", "captured_at", "gps_latitude", "gps_longitude")
"""The metadata keys an image's EXIF fills in, unless the client set them."""


def exif_metadata(facts: ImageFacts) -> dict[str, MetadataValue]:
    found: dict[str, MetadataValue] = {
        "camera_make": facts.camera_make,
        "camera_model": facts.camera_model,
        "captured_at": facts.captured_at,
    }
    if facts.position is not None:
        found["gps_latitude"] = facts.position.latitude
        found["gps_longitude"] = facts.position.longitude
    return {key: value for key, value in found.items() if value is not None}


def parse_upload_key(key: str) -> tuple[str, str]:
    """The owner and upload id of a direct upload's key; InvalidInput for any other key."""
    prefix, _, rest = key.partition("/")
    owner, _, upload_id = rest.partition("/")
    if prefix != UPLOADS_PREFIX or not validation.is_image_id(upload_id):
        raise InvalidInput(f"{key!r} is not a direct upload's key")
    try:
        validation.user_id(owner)
    except InvalidInput:
        raise InvalidInput(f"{key!r} is not a direct upload's key") from None
    return owner, upload_id


class _Unset(Enum):
    UNSET = "UNSET"


UNSET: Final = _Unset.UNSET


@attrs.frozen
class ImageFields:
    """What a client says about a new image, as it arrived (unvalidated)."""

    filename: object = None
    title: object = None
    description: object = None
    tags: object = None
    metadata: object = None
    visibility: object = None


@attrs.frozen
class UploadCommand(ImageFields):
    """A new image: its bytes as chunks, and what the client said about it.

    ``content_sha256`` is the SHA-256 the client says the bytes have: if the caller already has
    an image with those bytes, it is the answer and the bytes are not read; otherwise the bytes
    must have that hash. ``late_fields`` gives the fields that arrive only after the bytes (a
    form that sends the file first); it is called once the bytes are read, and what it returns
    overrides the fields above.
    """

    chunks: Iterable[bytes] = attrs.field(kw_only=True)
    content_sha256: object = None
    late_fields: Callable[[], Mapping[str, object]] | None = None


@attrs.frozen
class DirectUploadCommand(ImageFields):
    """A request for a direct upload slot: what the client says of the file to come."""

    content_type: object = None
    size: object = None

    @classmethod
    def from_mapping(cls, data: object) -> DirectUploadCommand:
        if not isinstance(data, Mapping):
            raise InvalidInput("the body must be a JSON object")
        known = [field.name for field in attrs.fields(cls)]
        unknown = sorted(str(key) for key in data if key not in known)
        if unknown:
            raise InvalidInput(f"unknown fields {', '.join(unknown)}: send {', '.join(known)}")
        return cls(**{str(key): value for key, value in data.items()})


@attrs.frozen
class UploadSlot:
    """Where and until when the client may send the bytes of the image ``upload_id`` becomes."""

    upload_id: str
    url: str
    fields: Mapping[str, str]
    expires_at: datetime
    max_bytes: int


@attrs.frozen
class Stored:
    """The outcome of an upload: the image, and whether it is new or one the caller had."""

    image: Image
    created: bool


@attrs.frozen
class _Details:
    """The validated fields of a new image."""

    filename: str
    title: str
    description: str
    tags: tuple[str, ...]
    metadata: dict[str, MetadataValue]
    visibility: Visibility


_UPDATABLE = ("title", "description", "tags", "metadata", "visibility")


@attrs.frozen
class UpdateCommand:
    """The fields a client wants changed; UNSET ones stay as they are."""

    title: object = UNSET
    description: object = UNSET
    tags: object = UNSET
    metadata: object = UNSET
    visibility: object = UNSET

    @classmethod
    def from_mapping(cls, data: object) -> UpdateCommand:
        if not isinstance(data, Mapping):
            raise InvalidInput("the body must be a JSON object")
        unknown = sorted(str(key) for key in data if key not in _UPDATABLE)
        if unknown:
            raise InvalidInput(
                f"cannot update {', '.join(unknown)}: only {', '.join(_UPDATABLE)} may change"
            )
        return cls(**{str(key): value for key, value in data.items()})


@attrs.frozen
class Page:
    images: Sequence[Image]
    next_cursor: str | None


@attrs.frozen
class ReconcileReport:
    deletes_finished: int
    blobs_checked: int
    orphans_removed: int


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


def _within_limit(chunks: Iterable[bytes], max_bytes: int) -> Iterator[bytes]:
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > max_bytes:
            raise PayloadTooLarge(f"the file is larger than the limit of {max_bytes} bytes")
        yield chunk


def _content_sha256(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _SHA256.fullmatch(value.strip().lower()):
        raise InvalidInput("a content SHA-256 is 64 hexadecimal digits")
    return value.strip().lower()


def _read_head(chunks: Iterator[bytes], size: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    for chunk in chunks:
        parts.append(chunk)
        total += len(chunk)
        if total >= size:
            break
    return b"".join(parts)  # one copy: growing a bytearray cost a millisecond per upload


@attrs.define
class ImageService:
    """Upload, list, get, download, update and delete images on behalf of a caller.

    ``caller`` is always an authenticated user id. An image another user owns is NotFound unless
    it is public, and then it may be read but never changed.

    Without ``jobs`` no thumbnail is ever made (they stay pending); without ``upload_targets``
    there are no direct uploads.
    """

    repository: ImageRepository
    blobs: BlobStore
    inspector: ImageInspector
    clock: Clock
    ids: IdGenerator
    cursors: CursorCodec
    max_upload_bytes: int = 50 * 1024 * 1024
    url_ttl: timedelta = timedelta(seconds=900)
    limits: validation.Limits = validation.DEFAULT_LIMITS
    max_direct_upload_bytes: int = 500 * 1024 * 1024
    max_pixels: int = 100_000_000
    thumbnail_side: int = 256
    jobs: JobQueue | None = None
    thumbnailer: Thumbnailer | None = None
    upload_targets: UploadTargets | None = None

    def upload(self, caller: str, command: UploadCommand) -> Image:
        """Store the bytes, then the metadata. The image is visible only once both are stored;
        if storing the metadata fails, the bytes are removed again."""
        return self.store_upload(caller, command).image

    def store_upload(self, caller: str, command: UploadCommand) -> Stored:
        """As ``upload``, but an image of the caller's with the bytes the command names by
        their SHA-256 is the answer, without reading the bytes (``created`` is then False)."""
        expected_sha256 = _content_sha256(command.content_sha256)
        details = self._details(command)  # fails before any byte is read
        if expected_sha256 is not None:
            existing = self.repository.find_by_content(caller, expected_sha256)
            if existing is not None:
                return Stored(existing, created=False)
        image_id = self._unused_id(self.clock.now())
        image = self._store(
            caller,
            details,
            command.chunks,
            image_id=image_id,
            blob_key=f"{IMAGES_PREFIX}/{caller}/{image_id}",
            max_bytes=self.max_upload_bytes,
            expected_sha256=expected_sha256,
            late_fields=command.late_fields,
            slot=None,
        )
        assert image is not None  # only a slot's claim can be lost
        return Stored(image, created=True)

    # --- direct uploads ---------------------------------------------------------------------

    def create_upload(self, caller: str, command: DirectUploadCommand) -> UploadSlot:
        """A slot for a direct upload: the details are checked and kept now, and the image
        appears under the slot's id once its bytes have arrived and passed validation."""
        if self.upload_targets is None:
            raise InvalidInput("this server takes no direct uploads: POST the image to /images")
        details = self._details(command)
        if command.content_type not in ACCEPTED_CONTENT_TYPES:
            raise UnsupportedMediaType(
                "content_type must be that of a JPEG, PNG, GIF or WebP image: "
                + ", ".join(ACCEPTED_CONTENT_TYPES)
            )
        size = command.size
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise InvalidInput("size must be the file's size in bytes, a whole number above 0")
        if size is not None and size > self.max_direct_upload_bytes:
            raise PayloadTooLarge(
                f"the file is larger than the limit of {self.max_direct_upload_bytes} bytes"
            )
        now = self.clock.now()
        upload_id = self._unused_id(now)
        slot = Image(
            image_id=upload_id,
            user_id=caller,
            filename=details.filename,
            content_type=str(command.content_type),
            size=size or 0,
            width=0,
            height=0,
            sha256="",
            blob_key=f"{IMAGES_PREFIX}/{caller}/{upload_id}",
            created_at=now,
            updated_at=now,
            title=details.title,
            description=details.description,
            tags=details.tags,
            metadata=details.metadata,
            visibility=details.visibility,
            state=ImageState.UPLOADING,
        )
        self.repository.add(slot)
        expires_at = now + self.url_ttl
        target = self.upload_targets.target(
            upload_key(caller, upload_id), self.max_direct_upload_bytes, expires_at
        )
        return UploadSlot(
            upload_id=upload_id,
            url=target.url,
            fields=target.fields,
            expires_at=expires_at,
            max_bytes=self.max_direct_upload_bytes,
        )

    def receive_upload(self, upload_id: str, chunks: Iterable[bytes]) -> Image:
        """The bytes of a direct upload, sent to this service itself (the embedded server's
        upload URL, whose signature the entrypoint checked): stored as the slot's image."""
        slot = self._find(upload_id)
        if slot is None or slot.state is ImageState.DELETED:
            raise NotFound("no such upload")
        if slot.state is not ImageState.UPLOADING:
            raise Conflict("this upload slot has been used: ask for a new one")
        if self.clock.now() > slot.created_at + self.url_ttl:
            raise Unauthenticated("the upload link has expired: ask for a new one")
        image = self._fill_slot(slot, chunks)
        if image is None:
            raise Conflict("another upload to this slot came first: ask for a new one")
        return image

    def complete_upload(self, key: str) -> Image | None:
        """Make an image of bytes a client uploaded directly to ``uploads/<user>/<upload id>``
        (the object store enforced the slot's size, type and expiry): validated as any upload
        is, stored as the slot's image, the uploaded object removed.

        Bytes that fail validation are removed, the slot is closed, and the error propagates.
        Safe to repeat, as queues deliver at least once: None when there is nothing (left) to do.
        """
        owner, upload_id = parse_upload_key(key)
        slot = self.repository.get(upload_id)
        if slot is None or slot.user_id != owner or slot.state is not ImageState.UPLOADING:
            self.blobs.delete(key)  # done before, or no slot was ever given for these bytes
            return None
        try:
            chunks = self.blobs.open(key)
        except KeyError:
            return None
        try:
            image = self._fill_slot(slot, chunks)
        except (InvalidInput, UnsupportedMediaType, PayloadTooLarge):
            self.blobs.delete(key)
            raise
        if image is not None:
            self.blobs.delete(key)
        return image

    def _fill_slot(self, slot: Image, chunks: Iterable[bytes]) -> Image | None:
        """Claim the slot, store the bytes under a key of this claim's own, then turn the slot
        into the image. A claim is a new version of the slot: whoever claimed last wins, and
        the bytes of a claim that lost are removed (or, after a crash, left to reconcile).
        None if the slot was taken from under us. A refused file closes the slot."""
        claimed = attrs.evolve(slot, version=slot.version + 1, updated_at=self.clock.now())
        try:
            self.repository.replace(claimed, slot.version)
        except VersionConflict:
            return None
        details = _Details(
            filename=slot.filename,
            title=slot.title,
            description=slot.description,
            tags=slot.tags,
            metadata=dict(slot.metadata),
            visibility=slot.visibility,
        )
        try:
            return self._store(
                slot.user_id,
                details,
                chunks,
                image_id=slot.image_id,
                blob_key=f"{slot.blob_key}/r{claimed.version}",
                max_bytes=self.max_direct_upload_bytes,
                expected_sha256=None,
                late_fields=None,
                slot=claimed,
            )
        except (InvalidInput, UnsupportedMediaType, PayloadTooLarge):
            self._finish_delete(claimed)
            raise

    # --- thumbnails -------------------------------------------------------------------------

    def run_job(self, job: Job, final_attempt: bool) -> None:
        """Do one background job. Raises if it failed and should be tried again."""
        if job.kind == THUMBNAIL_JOB:
            self.make_thumbnail(job.image_id, final_attempt)
        else:
            raise InvalidInput(f"no job of kind {job.kind!r}")

    def make_thumbnail(self, image_id: str, final_attempt: bool = True) -> ThumbnailStatus | None:
        """Make the image's thumbnail and mark it ready. A failure raises, to be tried again,
        unless this is the final attempt: then the thumbnail is marked failed. None if there
        was nothing to do (the image is gone, or its thumbnail is already settled)."""
        image = self._find(image_id)
        if (
            image is None
            or not image.is_active
            or image.thumbnail_status is not ThumbnailStatus.PENDING
            or self.thumbnailer is None
        ):
            return None
        key = thumbnail_key(image)
        try:
            thumbnail = self.thumbnailer.thumbnail(
                self.blobs.open(image.blob_key), self.thumbnail_side, thumbnail_content_type(image)
            )
            self.blobs.put(key, [thumbnail])
        except Exception:
            if not final_attempt:
                raise
            log.warning("thumbnail of image %s failed for good", image_id, exc_info=True)
            return self._settle_thumbnail(image_id, ThumbnailStatus.FAILED, key)
        return self._settle_thumbnail(image_id, ThumbnailStatus.READY, key)

    def _settle_thumbnail(
        self, image_id: str, status: ThumbnailStatus, key: str
    ) -> ThumbnailStatus | None:
        for _ in range(_WRITE_ATTEMPTS):
            current = self.repository.get(image_id)
            if current is None or not current.is_active:
                self.blobs.delete(key)  # deleted meanwhile: its thumbnail goes too
                return None
            if current.thumbnail_status is not ThumbnailStatus.PENDING:
                return None
            try:
                settled = attrs.evolve(
                    current,
                    thumbnail_status=status,
                    version=current.version + 1,
                    edit_version=current.last_edit,
                )
                self.repository.replace(settled, current.version)
            except VersionConflict:
                continue
            return status
        raise Conflict("the image kept changing while its thumbnail was recorded")

    def thumbnail(self, caller: str, image_id: str) -> Download:
        """The image's thumbnail, once it is ready."""
        image = self.get(caller, image_id)
        if image.thumbnail_status is not ThumbnailStatus.READY:
            raise NotFound(f"the thumbnail is not ready: it is {image.thumbnail_status.value}")
        key = thumbnail_key(image)
        content_type = thumbnail_content_type(image)
        stem = image.filename.rsplit(".", 1)[0] or "image"
        filename = f"{stem}-thumbnail.{content_type.removeprefix('image/').replace('jpeg', 'jpg')}"
        presigned = self.blobs.presigned_get(key, self.url_ttl, filename, content_type)
        return Download(
            image=image,
            content_type=content_type,
            filename=filename,
            etag=f'"{image.sha256}-t{self.thumbnail_side}"',
            size=None,
            presigned_url=presigned,
            local_path=None if presigned else self.blobs.local_path(key),
            open=lambda byte_range: self.blobs.open(key, byte_range),
        )

    # --- reconcile --------------------------------------------------------------------------

    def reconcile(self, grace: timedelta = ORPHAN_GRACE) -> ReconcileReport:
        """Finish every delete that was interrupted and close the direct-upload slots that
        expired more than ``grace`` ago, then remove the bytes no image holds that were stored
        more than ``grace`` ago (younger ones may be an upload still under way)."""
        finished = 0
        now = self.clock.now()
        for unsettled in self.repository.unsettled():
            if (
                unsettled.state is ImageState.DELETING
                or unsettled.created_at + self.url_ttl + grace < now
            ):
                self._finish_delete(unsettled)
                finished += 1
        checked = removed = 0
        for key in self.blobs.stored_before(now - grace):
            checked += 1
            if not self._holds(key):
                self.blobs.delete(key)
                removed += 1
        return ReconcileReport(
            deletes_finished=finished, blobs_checked=checked, orphans_removed=removed
        )

    def _holds(self, key: str) -> bool:
        """Whether an image that is not yet deleted holds these bytes, as original or derivative.
        Keys outside the service's prefixes are not its own, so they are held by definition."""
        parts = key.split("/")
        if parts[0] not in (IMAGES_PREFIX, UPLOADS_PREFIX):
            return True
        image = self._find(parts[2]) if len(parts) >= 3 else None
        if image is None or image.state is ImageState.DELETED:
            return False
        if parts[0] == UPLOADS_PREFIX:
            return image.state is ImageState.UPLOADING
        return key == image.blob_key or key.startswith(image.blob_key + "/")

    # --- storing ----------------------------------------------------------------------------

    def _details(self, command: ImageFields) -> _Details:
        return _Details(
            filename=validation.filename(command.filename, self.limits),
            title=validation.title(command.title, self.limits),
            description=validation.description(command.description, self.limits),
            tags=validation.tags(command.tags, self.limits),
            metadata=validation.metadata(command.metadata, self.limits),
            visibility=validation.visibility(command.visibility),
        )

    def _late_details(
        self, details: _Details, late_fields: Callable[[], Mapping[str, object]] | None
    ) -> _Details:
        if late_fields is None:
            return details
        late = dict(late_fields())
        if not late:
            return details
        given = {**attrs.asdict(details, recurse=False), **late}
        return self._details(ImageFields(**given))

    def _with_exif(self, metadata: dict[str, MetadataValue], facts: ImageFacts) -> dict[str, Any]:
        """The client's metadata plus what the EXIF says, where the client said nothing; the
        EXIF is left out if the two together would break a metadata limit."""
        merged = {**exif_metadata(facts), **metadata}
        try:
            return validation.metadata(merged, self.limits)
        except InvalidInput:
            return metadata

    def _facts(self, head: bytes) -> ImageFacts:
        if not head:
            raise InvalidInput("the file is empty")
        facts = self.inspector.inspect(head)
        if facts is None or facts.content_type not in ACCEPTED_CONTENT_TYPES:
            raise UnsupportedMediaType("the file is not a JPEG, PNG, GIF or WebP image")
        if facts.pixels > self.max_pixels:
            raise UnsupportedMediaType(
                f"the image is {facts.width} x {facts.height} pixels, more than the limit of "
                f"{self.max_pixels / 1e6:g} megapixels"
            )
        return facts

    def _store(
        self,
        caller: str,
        details: _Details,
        chunks: Iterable[bytes],
        *,
        image_id: str,
        blob_key: str,
        max_bytes: int,
        expected_sha256: str | None,
        late_fields: Callable[[], Mapping[str, object]] | None,
        slot: Image | None,
    ) -> Image | None:
        """Store the bytes under ``blob_key``, then the image: added, or in place of the
        claimed ``slot`` (None if that was claimed again meanwhile). Whatever fails after the
        bytes are stored removes them again."""
        limited = _within_limit(chunks, max_bytes)
        head = _read_head(limited, HEAD_BYTES)
        facts = self._facts(head)
        stored = self.blobs.put(blob_key, itertools.chain((head,), limited))
        try:
            if expected_sha256 is not None and stored.sha256 != expected_sha256:
                raise InvalidInput(
                    f"the file's SHA-256 is {stored.sha256}, not the {expected_sha256} declared"
                )
            details = self._late_details(details, late_fields)
            now = self.clock.now()
            image = Image(
                image_id=image_id,
                user_id=caller,
                filename=details.filename,
                content_type=facts.content_type,
                size=stored.size,
                width=facts.width,
                height=facts.height,
                sha256=stored.sha256,
                blob_key=blob_key,
                created_at=now,
                updated_at=now,
                title=details.title,
                description=details.description,
                tags=details.tags,
                metadata=self._with_exif(details.metadata, facts),
                visibility=details.visibility,
                version=1 if slot is None else slot.version + 1,
                thumbnail_status=ThumbnailStatus.PENDING,
            )
            if slot is None:
                self.repository.add(image)
            else:
                self.repository.replace(image, slot.version)
        except VersionConflict:
            self.blobs.delete(blob_key)
            return None
        except BaseException:
            self._discard_unless_stored(image_id, blob_key)
            raise
        self._enqueue_thumbnail(image)
        return image

    def _discard_unless_stored(self, image_id: str, blob_key: str) -> None:
        """Remove the bytes of an image whose metadata write failed, unless the write took
        effect after all: an error (a timeout, say) can come after the commit, and then the
        bytes are a visible image's. Where that cannot be told they stay, for reconcile."""
        try:
            stored = self.repository.get(image_id)
        except Exception:
            log.warning("kept the bytes %s for reconcile", blob_key, exc_info=True)
            return
        if stored is None or stored.blob_key != blob_key:
            self.blobs.delete(blob_key)

    def _enqueue_thumbnail(self, image: Image) -> None:
        if self.jobs is None:
            return
        try:
            self.jobs.enqueue(Job(kind=THUMBNAIL_JOB, image_id=image.image_id))
        except Exception:  # the image is stored; a thumbnail is never worth failing it for
            log.warning("no thumbnail job for image %s", image.image_id, exc_info=True)

    def list_images(self, caller: str, query: ListQuery, cursor: str | None = None) -> Page:
        """One page of the images the caller may see that match the query, and a cursor to the
        next page while there is one."""
        after = self.cursors.decode(cursor, query, caller) if cursor else None
        found = self.repository.list(query, caller, after, query.limit + 1)
        images = list(found[: query.limit])
        next_cursor = None
        if len(found) > query.limit:
            next_cursor = self.cursors.encode(images[-1].position, query, caller)
        return Page(images, next_cursor)

    def get(self, caller: str, image_id: str) -> Image:
        image = self._find(image_id)
        if image is None or not image.is_visible_to(caller):
            raise NotFound("no such image")
        return image

    def download(self, caller: str, image_id: str) -> Download:
        image = self.get(caller, image_id)
        key = image.blob_key
        presigned = self.blobs.presigned_get(key, self.url_ttl, image.filename, image.content_type)
        return Download(
            image=image,
            content_type=image.content_type,
            filename=image.filename,
            etag=image.content_etag,
            size=image.size,
            presigned_url=presigned,
            local_path=None if presigned else self.blobs.local_path(key),
            open=lambda byte_range: self.blobs.open(key, byte_range),
        )

    def update(
        self,
        caller: str,
        image_id: str,
        command: UpdateCommand,
        expected_version: int | None = None,
    ) -> Image:
        """Change the owner's metadata. With ``expected_version`` the change applies only if the
        metadata has not changed since that version (else PreconditionFailed); without it, a
        concurrent change is retried over."""
        changes = self._validated_changes(command)
        for _ in range(_WRITE_ATTEMPTS):
            current = self._owned_active(caller, image_id)
            if expected_version is not None and not current.is_current_for_edit(expected_version):
                raise PreconditionFailed(
                    f"the image changed since version {expected_version}: it is at version "
                    f"{current.version}"
                )
            if not changes:
                return current
            updated = attrs.evolve(
                current,
                version=current.version + 1,
                edit_version=None,
                updated_at=self.clock.now(),
                **changes,
            )
            try:
                self.repository.replace(updated, current.version)
            except VersionConflict:
                continue  # read again: the precondition is checked against what won
            return updated
        raise Conflict("the image kept changing during the update: try again")

    def delete(self, caller: str, image_id: str) -> None:
        """Tombstone the image (it vanishes at once), then remove its bytes, then its metadata.
        Deleting an image the caller already deleted succeeds again."""
        for _ in range(_WRITE_ATTEMPTS):
            current = self._find(image_id)
            if current is None or current.user_id != caller:
                raise NotFound("no such image")
            if current.state is ImageState.DELETED:
                return
            if current.state is ImageState.ACTIVE:
                tombstone = attrs.evolve(
                    current,
                    state=ImageState.DELETING,
                    version=current.version + 1,
                    updated_at=self.clock.now(),
                )
                try:
                    self.repository.replace(tombstone, current.version)
                except VersionConflict:
                    continue
                current = tombstone
            self._finish_delete(current)
            return
        raise Conflict("the image kept changing during the delete: try again")

    def _finish_delete(self, tombstone: Image) -> None:
        """Remove the bytes (thumbnail first, so a failure leaves the original to find them
        by), then blank the record. Works on a DELETING tombstone and on an UPLOADING slot."""
        if tombstone.state is ImageState.UPLOADING:
            self.blobs.delete(upload_key(tombstone.user_id, tombstone.image_id))
        self.blobs.delete(thumbnail_key(tombstone))
        self.blobs.delete(tombstone.blob_key)
        gone = attrs.evolve(
            tombstone,
            state=ImageState.DELETED,
            filename="",
            title="",
            description="",
            tags=(),
            metadata={},
            version=tombstone.version + 1,
        )
        with contextlib.suppress(VersionConflict):  # another delete of it finished first
            self.repository.replace(gone, tombstone.version)

    def _unused_id(self, now: datetime) -> str:
        """A new id no image holds: the bytes are stored under it before the metadata claims it,
        so a taken id would overwrite another image's bytes."""
        for _ in range(_WRITE_ATTEMPTS):
            image_id = self.ids.new_id(now)
            if self.repository.get(image_id) is None:
                return image_id
        raise Conflict("could not find an unused image id: try again")

    def _find(self, image_id: str) -> Image | None:
        return self.repository.get(image_id) if validation.is_image_id(image_id) else None

    def _owned_active(self, caller: str, image_id: str) -> Image:
        image = self._find(image_id)
        if image is None or image.user_id != caller or not image.is_active:
            raise NotFound("no such image")
        return image

    def _validated_changes(self, command: UpdateCommand) -> dict[str, Any]:
        rules: dict[str, Callable[[object], object]] = {
            "title": lambda value: validation.title(value, self.limits),
            "description": lambda value: validation.description(value, self.limits),
            "tags": lambda value: validation.tags(value, self.limits),
            "metadata": lambda value: validation.metadata(value, self.limits),
            "visibility": validation.visibility,
        }
        changes: dict[str, Any] = {}
        for field, rule in rules.items():
            value = getattr(command, field)
            if value is not UNSET:
                changes[field] = rule(value)
        return changes
