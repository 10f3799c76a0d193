"""The upload use cases: an image sent through the API, and a direct upload (a slot, then the
bytes to the slot's target, then completion). Bytes are stored and made durable before the
metadata that makes them an image, so a crash in between leaves only bytes no image holds."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta

import attrs

from imagecore import blob_keys, validation
from imagecore.commands import DirectUploadCommand, NewUpload, UploadCommand
from imagecore.details import ImageDetails
from imagecore.errors import (
    AlreadyExists,
    Conflict,
    DuplicateContent,
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
    Image,
    ImageFacts,
    ImageState,
    StoredBlob,
    ThumbnailStatus,
)
from imagecore.ports import (
    BlobCopier,
    BlobStore,
    BlobWriter,
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
DEFAULT_MAX_RESUMABLE_UPLOAD_BYTES = 5 * 1024 * 1024 * 1024
DEFAULT_URL_TTL = timedelta(seconds=900)
MAX_LOCATION_PATCHES = 256
MAX_PATCH_BYTES = 16 * 1024
"""Bounds on what hides a file's location (privacy.py): a camera's EXIF and XMP need a few
patches of a few hundred bytes; only a file made to be hostile needs more."""


# The refusals of a file itself: they close a direct upload's slot, as the file will not change.
_REFUSED_FILE = (InvalidInput, UnsupportedMediaType, PayloadTooLarge)
_CLAIMED_AGAIN = "another upload to this slot came first: ask for a new one"

log = logging.getLogger("imagecore.uploads")


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
    max_resumable_upload_bytes: int = DEFAULT_MAX_RESUMABLE_UPLOAD_BYTES
    copier: BlobCopier | None = None
    """Where the store copies bytes itself: the file of an upload sent in parts is then read
    once (to check it) and copied, not written again through the service."""

    def begin_upload(self, caller: str, upload: NewUpload) -> Stored | IncomingUpload:
        """An upload of the caller's, its fields validated before any byte is read, ready to
        take the bytes as they arrive. An image of the caller's with the bytes the upload names
        by their SHA-256 is the answer instead (``created`` False), and no byte need be read."""
        expected_sha256 = validation.content_sha256(upload.content_sha256)
        details = ImageDetails.validated(upload, self.limits)
        if expected_sha256 is not None:
            existing = self.repository.find_by_content(caller, expected_sha256)
            if existing is not None:
                return Stored(existing, created=False)
        image_id = self._unused_id(self.clock.now())
        return IncomingUpload(
            self,
            owner=caller,
            details=details,
            image_id=image_id,
            blob_key=blob_keys.original_key(caller, image_id),
            max_bytes=self.max_upload_bytes,
            expected_sha256=expected_sha256,
            slot=None,
        )

    def store_upload(self, caller: str, command: UploadCommand) -> Stored:
        """The whole upload at once, its bytes pulled from ``command.chunks``: the image is
        visible only once bytes and metadata are both stored, and a failure leaves nothing."""
        begun = self.begin_upload(caller, command)
        if isinstance(begun, Stored):
            return begun
        begun.write_all(command.chunks)
        try:
            late = None if command.late_fields is None else command.late_fields()
        except BaseException:
            begun.abort()
            raise
        return begun.finish(late)

    def create_upload(self, caller: str, command: DirectUploadCommand) -> UploadSlot | Stored:
        """A slot for a direct upload: the details are checked and kept now, and the image
        appears under the slot's id once its bytes have arrived and passed validation.

        With the file's SHA-256 (``command.sha256``), an image of the caller's with those bytes
        is the answer instead (``created`` False) and no slot is made; otherwise the slot keeps
        the hash, the bytes that fill it must have it, and the image claims them as an upload
        that declared its hash does (``Image.claims_content``)."""
        if self.upload_targets is None:
            raise InvalidInput("this server takes no direct uploads: POST the image to /images")
        details = ImageDetails.validated(command, self.limits)
        if command.content_type not in ACCEPTED_CONTENT_TYPES:
            raise UnsupportedMediaType(
                "content_type must be that of a JPEG, PNG, GIF, WebP, HEIC or AVIF image: "
                + ", ".join(ACCEPTED_CONTENT_TYPES)
            )
        size = command.size
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise InvalidInput("size must be the file's size in bytes, a whole number above 0")
        if size is not None and size > self.max_direct_upload_bytes:
            raise PayloadTooLarge(
                f"the file is larger than the limit of {self.max_direct_upload_bytes} bytes"
            )
        expected_sha256 = validation.content_sha256(command.sha256)
        if expected_sha256 is not None:
            existing = self.repository.find_by_content(caller, expected_sha256)
            if existing is not None:
                return Stored(existing, created=False)
        now = self.clock.now()
        slot = self.new_slot(
            caller, details, str(command.content_type), size or 0, expected_sha256, now
        )
        self.repository.add(slot)
        expires_at = now + self.url_ttl
        target = self.upload_targets.target(
            blob_keys.upload_key(caller, slot.image_id), self.max_direct_upload_bytes, expires_at
        )
        return UploadSlot(
            upload_id=slot.image_id,
            url=target.url,
            fields=target.fields,
            expires_at=expires_at,
            max_bytes=self.max_direct_upload_bytes,
        )

    def new_slot(
        self,
        caller: str,
        details: ImageDetails,
        content_type: str,
        size: int,
        expected_sha256: str | None,
        now: datetime,
        resumable_until: datetime | None = None,
        upload_handle: str | None = None,
    ) -> Image:
        """The record of an upload whose bytes are still to come (not yet stored), under a new
        id that becomes the image's."""
        upload_id = self._unused_id(now)
        return Image(
            image_id=upload_id,
            user_id=caller,
            filename=details.filename,
            content_type=content_type,
            size=size,
            width=0,
            height=0,
            # A slot's hash is the one its bytes must have: the slot is an UPLOADING record,
            # which no lookup by content ever finds, and the claim it makes is checked only
            # once it is ACTIVE.
            sha256=expected_sha256 or "",
            claims_content=expected_sha256 is not None,
            blob_key=blob_keys.original_key(caller, upload_id),
            created_at=now,
            updated_at=now,
            title=details.title,
            description=details.description,
            tags=details.tags,
            metadata=details.metadata,
            visibility=details.visibility,
            state=ImageState.UPLOADING,
            resumable_until=resumable_until,
            upload_handle=upload_handle,
        )

    def complete_slot(
        self,
        slot: Image,
        chunks: Iterable[bytes],
        mover: Callable[[str], BlobWriter | None] = lambda _key: None,
    ) -> Stored:
        """Make the image of an upload slot whose bytes are all held elsewhere (a resumable
        upload's), pulled from ``chunks``: validated as any upload is. ``mover`` gives, for the
        original's key, a writer that stores the held bytes there without copying them, where
        one can (None: they are written). Raises Conflict if the slot was claimed from under
        us; a refused file closes the slot (the error propagates)."""
        incoming = self._claim(slot, mover)
        if incoming is None:
            raise Conflict(_CLAIMED_AGAIN)
        incoming.write_all(chunks)
        return incoming.finish()

    def facts_of(self, head: bytes) -> ImageFacts:
        """What the file whose first bytes are ``head`` is: InvalidInput for an empty file,
        UnsupportedMediaType for one that is no JPEG, PNG, GIF, WebP, HEIC or AVIF, or has more
        pixels than allowed. Decides every upload's fate before its bytes are stored."""
        if not head:
            raise InvalidInput("the file is empty")
        facts = self.inspector.inspect(head)
        if facts is None or facts.content_type not in ACCEPTED_CONTENT_TYPES:
            raise UnsupportedMediaType("the file is not a JPEG, PNG, GIF, WebP, HEIC or AVIF image")
        if facts.pixels > self.max_pixels:
            raise UnsupportedMediaType(
                f"the image is {facts.width} x {facts.height} pixels, more than the limit of "
                f"{self.max_pixels / 1e6:g} megapixels"
            )
        patches = facts.location_patches
        patched_bytes = sum(len(patch.data) for patch in patches)
        if len(patches) > MAX_LOCATION_PATCHES or patched_bytes > MAX_PATCH_BYTES:
            # Every store keeps them in the image's record (a DynamoDB item holds 400 KB).
            raise InvalidInput(
                "the file records its location or camera serial in more places than the "
                f"{MAX_LOCATION_PATCHES} (of {MAX_PATCH_BYTES} bytes in all) that can be hidden "
                "from other people: remove its metadata and upload it again"
            )
        return facts

    def slot_expires_at(self, slot: Image) -> datetime:
        """When an upload slot stops taking bytes."""
        if slot.resumable_until is not None:
            return slot.resumable_until
        return slot.created_at + self.url_ttl

    def begin_receive(self, upload_id: str) -> IncomingUpload:
        """The bytes of a direct upload, about to be sent to this service itself (the embedded
        server's upload URL, whose signature the entrypoint checked): the slot is claimed now,
        and becomes the image once the bytes are whole and accepted."""
        slot = find_image(self.repository, upload_id)
        if slot is None or slot.state is ImageState.DELETED:
            raise NotFound("no such upload")
        if slot.state is not ImageState.UPLOADING or slot.resumable_until is not None:
            raise Conflict("this upload slot has been used: ask for a new one")
        if self.clock.now() > slot.created_at + self.url_ttl:
            raise Unauthenticated("the upload link has expired: ask for a new one")
        incoming = self._claim(slot)
        if incoming is None:
            raise Conflict(_CLAIMED_AGAIN)
        return incoming

    def receive_upload(self, upload_id: str, chunks: Iterable[bytes]) -> Image:
        """``begin_receive`` with all the bytes at once, pulled from ``chunks``."""
        incoming = self.begin_receive(upload_id)
        incoming.write_all(chunks)
        return incoming.finish().image

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
        # The file of a session sent in parts stays as it is under its key (no one may write
        # there again): it is read once to be checked, and the store copies it.
        copier = self.copier if slot.upload_handle is not None else None
        incoming = self._claim(
            slot,
            lambda blob_key: None if copier is None else _CopyingWriter(copier, key, blob_key),
        )
        if incoming is None:
            return None
        try:
            incoming.write_all(chunks)
            image = incoming.finish().image
        except Conflict:  # claimed again meanwhile: that claim makes the image
            return None
        except _REFUSED_FILE:
            self.blobs.delete(key)
            raise
        self.blobs.delete(key)
        return image

    def _claim(
        self, slot: Image, mover: Callable[[str], BlobWriter | None] = lambda _key: None
    ) -> IncomingUpload | None:
        """Claim the slot for bytes about to arrive, which go under a key of this claim's own.
        A claim is a new version of the slot: whoever claimed last wins, and the bytes of a
        claim that lost are removed (or, after a crash, left to reconcile). None if the slot
        was claimed from under us."""
        claimed = slot.claimed(self.clock.now())
        try:
            self.repository.replace(claimed, slot.version)
        except VersionConflict:
            return None
        blob_key = blob_keys.claimed_original_key(slot.blob_key, claimed.version)
        return IncomingUpload(
            self,
            owner=slot.user_id,
            details=ImageDetails.of_slot(slot),
            image_id=slot.image_id,
            blob_key=blob_key,
            writer=mover(blob_key),
            max_bytes=(
                self.max_direct_upload_bytes
                if slot.resumable_until is None
                else self.max_resumable_upload_bytes
            ),
            expected_sha256=claimed.sha256 if claimed.claims_content else None,
            slot=claimed,
        )

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


class IncomingUpload:
    """An upload whose bytes arrive piece by piece: ``write`` each piece as it comes, then
    ``finish`` to make the image, or ``abort`` when the sender is gone.

    The first MiB is held until it tells what the file is, so nothing is stored of a file that
    is refused; from then on each piece goes straight to the blob store, as the sender sends it.
    Whatever ``write`` or ``finish`` raises has already undone what was done (nothing is left
    behind; a direct upload's slot refused for its file is closed); the upload then takes
    nothing more. One thread at a time; successive calls may come from different threads.
    """

    def __init__(
        self,
        uploads: Uploads,
        *,
        owner: str,
        details: ImageDetails,
        image_id: str,
        blob_key: str,
        max_bytes: int,
        expected_sha256: str | None,
        slot: Image | None,
        writer: BlobWriter | None = None,
    ) -> None:
        self._uploads = uploads
        self._given_writer = writer
        self._owner = owner
        self._details = details
        self._image_id = image_id
        self._blob_key = blob_key
        self._max_bytes = max_bytes
        self._expected_sha256 = expected_sha256
        self._slot = slot
        self._head: list[bytes] = []
        self._received = 0
        self._facts: ImageFacts | None = None
        self._writer: BlobWriter | None = None
        self._open = True

    @property
    def owner(self) -> str:
        """Whose image the bytes become."""
        return self._owner

    def write(self, data: bytes) -> None:
        """The next piece of the file. Raises PayloadTooLarge as soon as the bytes cross the
        limit, UnsupportedMediaType (or InvalidInput) once the first MiB shows no image."""
        self._check_open()
        try:
            self._received += len(data)
            if self._received > self._max_bytes:
                raise PayloadTooLarge(
                    f"the file is larger than the limit of {self._max_bytes} bytes"
                )
            if self._writer is not None:
                self._writer.write(data)
                return
            self._head.append(data)
            if self._received >= HEAD_BYTES:
                self._start_storing()
        except BaseException as error:
            self._fail(error)
            raise

    def finish(self, late_fields: Mapping[str, object] | None = None) -> Stored:
        """The bytes are all there: store them durably, then the image, and queue its thumbnail.
        ``late_fields`` are fields that arrived after the bytes (a form that sent the file
        first): validated like the rest, they override them. Raises Conflict if a direct
        upload's slot was claimed again meanwhile (that claim makes the image). Uploads that
        named their bytes by their SHA-256 make one image of them however many arrive at once:
        those that lose the race remove the bytes they stored and answer with the winner's
        image (``created`` False)."""
        self._check_open()
        try:
            if self._writer is None:
                self._start_storing()
            assert self._writer is not None
            stored = self._writer.commit()
        except BaseException as error:
            self._fail(error)
            raise
        self._open = False
        uploads = self._uploads
        try:
            if self._expected_sha256 is not None and stored.sha256 != self._expected_sha256:
                raise InvalidInput(
                    f"the file's SHA-256 is {stored.sha256}, not the {self._expected_sha256} "
                    "declared"
                )
            details = self._details.with_late(late_fields, uploads.limits)
            assert self._facts is not None
            image = self._image(details, self._facts, stored.size, stored.sha256)
            if self._slot is None:
                uploads.repository.add(image)
            else:
                uploads.repository.replace(image, self._slot.version)
        except VersionConflict:
            uploads.blobs.delete(self._blob_key)
            raise Conflict(_CLAIMED_AGAIN) from None
        except DuplicateContent as duplicate:  # a concurrent upload of these bytes came first
            self._discard_unless_stored()
            self._close_duplicate_slot()
            existing = uploads.repository.get(duplicate.image_id)
            if existing is None or not existing.is_active:
                raise Conflict(
                    "the image with these bytes was deleted meanwhile: try again"
                ) from None
            return Stored(existing, created=False)
        except BaseException as error:
            self._discard_unless_stored()
            self._close_refused_slot(error)
            raise
        self._enqueue_thumbnail(image)
        return Stored(image, created=True)

    def write_all(self, chunks: Iterable[bytes]) -> None:
        """``write`` every chunk of ``chunks``; whatever fails, reading or writing, aborts the
        upload first."""
        try:
            for chunk in chunks:
                self.write(chunk)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """The sender is gone: nothing of the bytes is kept. Harmless once finished or failed."""
        self._open = False
        self._head = []
        if self._writer is not None:
            self._writer.abort()

    def _check_open(self) -> None:
        if not self._open:
            raise ValueError("this upload is finished")

    def _start_storing(self) -> None:
        head = b"".join(self._head)  # one copy: growing a bytearray cost a millisecond per upload
        self._head = []
        self._facts = self._facts_of(head)
        self._writer = self._given_writer or self._uploads.blobs.writer(self._blob_key)
        self._writer.write(head)

    def _fail(self, error: BaseException) -> None:
        self.abort()
        self._close_refused_slot(error)

    def _close_refused_slot(self, error: BaseException) -> None:
        """A direct upload's file is what it is: refused once, its slot is closed for good."""
        if self._slot is not None and isinstance(error, _REFUSED_FILE):
            finish_delete(self._uploads.repository, self._uploads.blobs, self._slot)

    def _close_duplicate_slot(self) -> None:
        """A direct upload's slot whose bytes another image holds is closed: its file is that
        image, and the slot would take no other file of the same hash."""
        if self._slot is not None:
            finish_delete(self._uploads.repository, self._uploads.blobs, self._slot)

    def _facts_of(self, head: bytes) -> ImageFacts:
        return self._uploads.facts_of(head)

    def _image(self, details: ImageDetails, facts: ImageFacts, size: int, sha256: str) -> Image:
        now = self._uploads.clock.now()
        return Image(
            image_id=self._image_id,
            user_id=self._owner,
            filename=details.filename,
            content_type=facts.content_type,
            size=size,
            width=facts.width,
            height=facts.height,
            sha256=sha256,
            blob_key=self._blob_key,
            created_at=now,
            updated_at=now,
            title=details.title,
            description=details.description,
            tags=details.tags,
            metadata=details.metadata_with_exif(facts, self._uploads.limits),
            visibility=details.visibility,
            version=1 if self._slot is None else self._slot.version + 1,
            thumbnail_status=ThumbnailStatus.PENDING,
            claims_content=self._expected_sha256 is not None,
            location_patches=facts.location_patches,
        )

    def _discard_unless_stored(self) -> None:
        """Remove the bytes of an image whose metadata write failed, unless the write took
        effect after all: an error (a timeout, say) can come after the commit, and then the
        bytes are a visible image's. Where that cannot be told they stay, for reconcile."""
        repository, blobs = self._uploads.repository, self._uploads.blobs
        try:
            stored = repository.get(self._image_id)
        except Exception:
            log.warning("kept the bytes %s for reconcile", self._blob_key, exc_info=True)
            return
        if stored is None or stored.blob_key != self._blob_key:
            blobs.delete(self._blob_key)

    def _enqueue_thumbnail(self, image: Image) -> None:
        jobs = self._uploads.jobs
        if jobs is None:
            return
        for job in image.outstanding_jobs:
            try:
                jobs.enqueue(job)
            except Exception:  # the image is stored; a thumbnail is never worth failing it for
                log.warning("no %s job for image %s", job.kind, image.image_id, exc_info=True)


class _CopyingWriter:
    """A BlobWriter for bytes the store already holds under ``source``: it only counts and
    hashes them as they are read, and its commit has the store copy them to ``target``."""

    def __init__(self, copier: BlobCopier, source: str, target: str) -> None:
        self._copier = copier
        self._source = source
        self._target = target
        self._digest = hashlib.sha256()
        self._size = 0
        self._open = True

    def write(self, data: bytes) -> None:
        if not self._open:
            raise ValueError("this blob writer is closed")
        self._digest.update(data)
        self._size += len(data)

    def commit(self) -> StoredBlob:
        if not self._open:
            raise ValueError("this blob writer is closed")
        self._open = False
        try:
            self._copier.copy(self._source, self._target)
        except KeyError:
            raise Conflict("the uploaded file went before it was copied: upload it again") from None
        return StoredBlob(size=self._size, sha256=self._digest.hexdigest())

    def abort(self) -> None:
        self._open = False
