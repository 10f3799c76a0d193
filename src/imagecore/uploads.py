"""The upload use cases: an image sent through the API, and a direct upload (a slot, then the
bytes to the slot's target, then completion). Bytes are stored and made durable before the
metadata that makes them an image, so a crash in between leaves only bytes no image holds."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

import attrs

from imagecore import blob_keys, validation
from imagecore.commands import DirectUploadCommand, UploadCommand
from imagecore.details import ImageDetails, LateFields
from imagecore.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    Unauthenticated,
    UnsupportedMediaType,
    VersionConflict,
)
from imagecore.lifecycle import finish_delete
from imagecore.lookups import find_image
from imagecore.model import (
    ACCEPTED_CONTENT_TYPES,
    THUMBNAIL_JOB,
    Image,
    ImageFacts,
    ImageState,
    Job,
    ThumbnailStatus,
)
from imagecore.ports import (
    BlobStore,
    Clock,
    IdGenerator,
    ImageInspector,
    ImageRepository,
    JobQueue,
    UploadTargets,
)
from imagecore.results import Stored, UploadSlot
from imagecore.retry import retry_on_conflict

HEAD_BYTES = 1024 * 1024
"""How much of an upload is read before it is accepted: enough for any sane image header."""

DEFAULT_MAX_UPLOAD_BYTES = 50 * 1024 * 1024
DEFAULT_MAX_DIRECT_UPLOAD_BYTES = 500 * 1024 * 1024
DEFAULT_MAX_PIXELS = 100_000_000
DEFAULT_URL_TTL = timedelta(seconds=900)

# The refusals of a file itself: they close a direct upload's slot, as the file will not change.
_REFUSED_FILE = (InvalidInput, UnsupportedMediaType, PayloadTooLarge)

log = logging.getLogger("imagecore.uploads")


def _within_limit(chunks: Iterable[bytes], max_bytes: int) -> Iterator[bytes]:
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > max_bytes:
            raise PayloadTooLarge(f"the file is larger than the limit of {max_bytes} bytes")
        yield chunk


def _read_head(chunks: Iterator[bytes], size: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    for chunk in chunks:
        parts.append(chunk)
        total += len(chunk)
        if total >= size:
            break
    return b"".join(parts)  # one copy: growing a bytearray cost a millisecond per upload


@attrs.frozen
class Uploads:
    """Without ``upload_targets`` there are no direct uploads; without ``jobs`` no thumbnail
    is ever asked for."""

    repository: ImageRepository
    blobs: BlobStore
    inspector: ImageInspector
    clock: Clock
    ids: IdGenerator
    limits: validation.Limits
    max_upload_bytes: int
    max_direct_upload_bytes: int
    max_pixels: int
    url_ttl: timedelta
    jobs: JobQueue | None
    upload_targets: UploadTargets | None

    def store_upload(self, caller: str, command: UploadCommand) -> Stored:
        """Store the bytes, then the metadata. The image is visible only once both are stored;
        if storing the metadata fails, the bytes are removed again. An image of the caller's
        with the bytes the command names by their SHA-256 is the answer, without reading the
        bytes (``created`` is then False)."""
        expected_sha256 = validation.content_sha256(command.content_sha256)
        details = ImageDetails.validated(command, self.limits)  # fails before any byte is read
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
            blob_key=blob_keys.original_key(caller, image_id),
            max_bytes=self.max_upload_bytes,
            expected_sha256=expected_sha256,
            late_fields=command.late_fields,
            slot=None,
        )
        assert image is not None  # only a slot's claim can be lost
        return Stored(image, created=True)

    def create_upload(self, caller: str, command: DirectUploadCommand) -> UploadSlot:
        """A slot for a direct upload: the details are checked and kept now, and the image
        appears under the slot's id once its bytes have arrived and passed validation."""
        if self.upload_targets is None:
            raise InvalidInput("this server takes no direct uploads: POST the image to /images")
        details = ImageDetails.validated(command, self.limits)
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
            blob_key=blob_keys.original_key(caller, upload_id),
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
            blob_keys.upload_key(caller, upload_id), self.max_direct_upload_bytes, expires_at
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
        slot = find_image(self.repository, upload_id)
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
        owner, upload_id = blob_keys.parse_upload_key(key)
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
        except _REFUSED_FILE:
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
        claimed = slot.claimed(self.clock.now())
        try:
            self.repository.replace(claimed, slot.version)
        except VersionConflict:
            return None
        try:
            return self._store(
                slot.user_id,
                ImageDetails.of_slot(slot),
                chunks,
                image_id=slot.image_id,
                blob_key=blob_keys.claimed_original_key(slot.blob_key, claimed.version),
                max_bytes=self.max_direct_upload_bytes,
                expected_sha256=None,
                late_fields=None,
                slot=claimed,
            )
        except _REFUSED_FILE:
            finish_delete(self.repository, self.blobs, claimed)
            raise

    def _store(
        self,
        caller: str,
        details: ImageDetails,
        chunks: Iterable[bytes],
        *,
        image_id: str,
        blob_key: str,
        max_bytes: int,
        expected_sha256: str | None,
        late_fields: LateFields | None,
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
            details = details.with_late(late_fields, self.limits)
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
                metadata=details.metadata_with_exif(facts, self.limits),
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

    def _unused_id(self, now: datetime) -> str:
        """A new id no image holds: the bytes are stored under it before the metadata claims it,
        so a taken id would overwrite another image's bytes."""

        def attempt() -> str:
            image_id = self.ids.new_id(now)
            if self.repository.get(image_id) is not None:
                raise AlreadyExists(image_id)
            return image_id

        return retry_on_conflict(
            attempt, "could not find an unused image id: try again", retry_on=(AlreadyExists,)
        )
