"""Resumable uploads: a file of any size sent over as many requests as it takes, surviving a
dropped connection, a closed laptop or a restart of either side.

An upload session is an upload slot (an UPLOADING record, as a direct upload's) that stays open
until ``resumable_until`` and whose bytes so far are kept in a partial blob under the slot's
upload key, appended in order. When the last byte arrives the bytes pass exactly the checks of
any upload and the slot becomes the image, under the session's id; the partial blob goes.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta

import attrs

from imagecore import blob_keys, validation
from imagecore.commands import NewResumableUpload, PartUrlsRequest
from imagecore.details import ImageDetails
from imagecore.errors import (
    ChecksumMismatch,
    Conflict,
    Gone,
    InvalidInput,
    Locked,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from imagecore.lifecycle import finish_delete
from imagecore.lookups import find_image
from imagecore.model import ACCEPTED_CONTENT_TYPES, Image, ImageState, PartTarget, ReceivedPart
from imagecore.ports import MultipartUploads, PartialBlobs, PartialWriter
from imagecore.results import Stored
from imagecore.uploads import HEAD_BYTES, Uploads

DEFAULT_SESSION_TTL = timedelta(hours=24)

CHECKSUM_ALGORITHMS = ("sha256", "sha1", "md5")
"""The algorithms a piece's checksum may be in, strongest first."""

MiB = 1024 * 1024
MIN_PART_BYTES = 8 * MiB
"""The smallest part the server asks for (S3 takes 5 MiB and up but for the last part)."""
MAX_PART_BYTES = 5 * 1024 * MiB
"""S3's largest part."""
MAX_PARTS = 10_000
"""The most parts one multipart upload may have (S3's limit)."""
MAX_PART_URLS = 100
"""The most part URLs one request may ask for."""
_SHOWN_NUMBERS = 20
_USE_TUS = "this server takes resumable uploads by tus at /files/"


def part_size_for(size: int) -> int:
    """The size of every part of a file of ``size`` bytes but the last: a whole number of MiB,
    at least MIN_PART_BYTES, and big enough that the file takes at most MAX_PARTS parts."""
    least = -(-size // MAX_PARTS)
    return max(MIN_PART_BYTES, -(-least // MiB) * MiB)


def _numbers(numbers: Sequence[int]) -> str:
    shown = ", ".join(str(number) for number in numbers[:_SHOWN_NUMBERS])
    more = len(numbers) - _SHOWN_NUMBERS
    return shown + (f" and {more} more" if more > 0 else "")


@attrs.frozen
class Checksum:
    """What a client says the bytes of one request hash to."""

    algorithm: str
    digest: bytes


@attrs.frozen
class UploadSession:
    """A resumable upload as its owner sees it. ``image`` is what it became once whole: the new
    image, or the caller's image that had these bytes already."""

    upload_id: str
    size: int
    received: int
    expires_at: datetime
    image: Image | None = None
    part_size: int | None = None
    """Sent in parts to the blob store (a multipart upload): the size of every part but the
    last. None for a session whose bytes come through the service (tus)."""
    parts: tuple[ReceivedPart, ...] = ()
    """The parts the blob store holds, by number, while the session is open."""
    completed: bool = False
    """Whether the parts were joined into the file: the image appears once it passed the
    checks of any upload (``image``, once it has)."""

    @property
    def image_id(self) -> str | None:
        return None if self.image is None else self.image.image_id

    @property
    def part_count(self) -> int | None:
        if self.part_size is None:
            return None
        return max(1, -(-self.size // self.part_size))


@attrs.frozen
class PartUrls:
    """Where to PUT each part asked for, by number, and until when the URLs work."""

    targets: tuple[tuple[int, PartTarget], ...]
    expires_at: datetime


def _session_of(slot: Image, received: int) -> UploadSession:
    assert slot.resumable_until is not None
    return UploadSession(slot.image_id, slot.size, received, slot.resumable_until)


@attrs.frozen
class ResumableUploads:
    """Without ``partials`` this service keeps no partial bytes, and takes no resumable upload
    in pieces through itself."""

    uploads: Uploads
    partials: PartialBlobs | None
    session_ttl: timedelta = DEFAULT_SESSION_TTL
    multipart: MultipartUploads | None = None
    """Where clients send the parts of a file straight to the blob store (S3); None where the
    bytes come through the service instead (tus, with ``partials``)."""

    @property
    def max_bytes(self) -> int:
        return self.uploads.max_resumable_upload_bytes

    def open_session(self, caller: str, command: NewResumableUpload) -> UploadSession:
        """A new session for a file of ``command.size`` bytes, its fields checked now."""
        partials = self._partials()
        slot = self._new_slot(caller, command)
        key = blob_keys.upload_key(caller, slot.image_id)
        partials.create(key)
        try:
            self.uploads.repository.add(slot)
        except BaseException:
            partials.delete(key)
            raise
        return _session_of(slot, 0)

    def session(self, caller: str, upload_id: str) -> UploadSession:
        """Where the caller's session stands. A session whose bytes are all there but that did
        not become an image (the process that took its last byte died) becomes it now."""
        slot = self._slot(caller, upload_id)
        if slot.state is ImageState.ACTIVE:
            return UploadSession(slot.image_id, slot.size, slot.size, slot.created_at, slot)
        key = blob_keys.upload_key(caller, upload_id)
        received = self._partials().size(key)
        if received is None:
            raise Gone("this upload's bytes are no longer kept: start a new upload")
        if received == slot.size:
            # Another request holding it, or finishing it this moment, makes the image.
            with contextlib.suppress(Locked, Conflict):
                return self.append(caller, upload_id, received, iter(()))
        return _session_of(slot, received)

    def begin_append(
        self, caller: str, upload_id: str, offset: int, checksum: Checksum | None = None
    ) -> Appending:
        """Bytes about to be added to the caller's session at ``offset``, which must be the
        number it holds: ``write`` them as they arrive, then ``commit``. Only one request at a
        time appends to a session (Locked for any other)."""
        if checksum is not None and checksum.algorithm not in CHECKSUM_ALGORITHMS:
            raise InvalidInput(
                f"checksums in {checksum.algorithm} are not supported: use "
                + ", ".join(CHECKSUM_ALGORITHMS)
            )
        slot = self._slot(caller, upload_id)
        if slot.state is ImageState.ACTIVE:
            raise Conflict(f"this upload is complete: it is the image /images/{slot.image_id}")
        if self.uploads.clock.now() > self.uploads.slot_expires_at(slot):
            raise Gone("this upload expired: start a new upload")
        key = blob_keys.upload_key(caller, upload_id)
        try:
            writer = self._partials().appender(key, offset, slot.size)
        except NotFound:
            raise Gone("this upload's bytes are no longer kept: start a new upload") from None
        return Appending(self, slot, key, offset, writer, checksum)

    def append(
        self,
        caller: str,
        upload_id: str,
        offset: int,
        chunks: Iterator[bytes],
        checksum: Checksum | None = None,
    ) -> UploadSession:
        """``begin_append`` with all the bytes at once."""
        appending = self.begin_append(caller, upload_id, offset, checksum)
        try:
            for chunk in chunks:
                appending.write(chunk)
        except BaseException:
            appending.abort()
            raise
        return appending.commit()

    def cancel(self, caller: str, upload_id: str) -> None:
        """End the caller's session and drop the bytes it holds. Cancelling a complete upload
        is refused (Conflict): delete the image instead."""
        slot = self._slot(caller, upload_id)
        if slot.state is ImageState.ACTIVE:
            raise Conflict(
                f"this upload is complete: delete the image /images/{slot.image_id} instead"
            )
        self._close(slot)

    def _close(self, slot: Image) -> None:
        finish_delete(self.uploads.repository, self.uploads.blobs, slot)
        self._partials().delete(blob_keys.upload_key(slot.user_id, slot.image_id))

    def _finish(self, slot: Image, received: int) -> UploadSession:
        """The bytes are all there: the checks of any upload, then the image."""
        key = blob_keys.upload_key(slot.user_id, slot.image_id)
        partials = self._partials()
        try:
            stored = self.uploads.complete_slot(
                slot, partials.open(key), lambda blob_key: partials.mover(key, blob_key)
            )
        except Conflict:
            raise
        except BaseException:
            # A refused file closed the slot; its bytes go with it. Anything else (a full disk,
            # a crash) leaves both, and the next look at the session finishes it.
            current = self.uploads.repository.get(slot.image_id)
            if current is None or current.state is not ImageState.UPLOADING:
                self._partials().delete(key)
            raise
        self._partials().delete(key)
        return UploadSession(slot.image_id, slot.size, received, slot.created_at, stored.image)

    def _check_head(self, slot: Image, head: bytes) -> None:
        """Refuse a file that is no image as soon as its head is in: the session is closed and
        the client told now, not after it sent gigabytes more."""
        try:
            facts = self.uploads.inspector.inspect(head)
            if facts is None or facts.content_type not in ACCEPTED_CONTENT_TYPES:
                raise UnsupportedMediaType("the file is not a JPEG, PNG, GIF or WebP image")
            if facts.pixels > self.uploads.max_pixels:
                raise UnsupportedMediaType(
                    f"the image is {facts.width} x {facts.height} pixels, more than the limit "
                    f"of {self.uploads.max_pixels / 1e6:g} megapixels"
                )
        except UnsupportedMediaType:
            self._close(slot)
            raise

    def _new_slot(self, caller: str, command: NewResumableUpload) -> Image:
        details = ImageDetails.validated(command, self.uploads.limits)
        size = command.size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise InvalidInput("size must be the file's size in bytes, a whole number above 0")
        if size > self.max_bytes:
            raise PayloadTooLarge(f"the file is larger than the limit of {self.max_bytes} bytes")
        content_type = command.content_type
        if content_type is not None and content_type not in ACCEPTED_CONTENT_TYPES:
            raise UnsupportedMediaType(
                "content_type must be that of a JPEG, PNG, GIF or WebP image: "
                + ", ".join(ACCEPTED_CONTENT_TYPES)
            )
        now = self.uploads.clock.now()
        return self.uploads.new_slot(
            caller,
            details,
            str(content_type or ""),
            size,
            validation.content_sha256(command.sha256),
            now,
            resumable_until=now + self.session_ttl,
        )

    def _slot(self, caller: str, upload_id: str) -> Image:
        """The caller's session, or the image it became; NotFound for anyone else's."""
        if not validation.is_image_id(upload_id):
            raise NotFound("no such upload")
        slot = find_image(self.uploads.repository, upload_id)
        if slot is None or slot.user_id != caller:
            raise NotFound("no such upload")
        if slot.state is ImageState.ACTIVE:  # the session became this image (its id is theirs)
            return slot
        if slot.state is not ImageState.UPLOADING or slot.resumable_until is None:
            if slot.state in (ImageState.DELETING, ImageState.DELETED):
                raise Gone("this upload was cancelled, expired, or its file refused")
            raise NotFound("no such upload")
        return slot

    # Sessions whose bytes go straight to the blob store, in parts (S3 multipart uploads).

    def open_multipart(self, caller: str, command: NewResumableUpload) -> UploadSession | Stored:
        """A new session for a file of ``command.size`` bytes sent in parts straight to the
        blob store, its fields checked now; the server chooses the part size. With the file's
        SHA-256, an image of the caller's that has it is the answer instead (``created``
        False) and no session is made; otherwise the file must have that hash."""
        multipart = self._multipart()
        slot = self._new_slot(caller, command)
        if part_size_for(slot.size) > MAX_PART_BYTES:
            raise PayloadTooLarge(f"a file of {slot.size} bytes takes more than {MAX_PARTS} parts")
        if slot.claims_content:
            existing = self.uploads.repository.find_by_content(caller, slot.sha256)
            if existing is not None:
                return Stored(existing, created=False)
        key = blob_keys.upload_key(caller, slot.image_id)
        slot = attrs.evolve(slot, upload_handle=multipart.start(key))
        try:
            self.uploads.repository.add(slot)
        except BaseException:
            assert slot.upload_handle is not None
            multipart.abort(key, slot.upload_handle)
            raise
        return self._multipart_session(slot, ())

    def part_targets(self, caller: str, upload_id: str, request: PartUrlsRequest) -> PartUrls:
        """Where to PUT the parts asked for (at most MAX_PART_URLS), each with the headers to
        send it with: a part is ``part_size`` bytes but the last, which is the rest, and the
        blob store refuses bytes that are not the size, or do not have the SHA-256, its URL was
        made for. The URLs work until the URL lifetime ends, or the session does."""
        multipart = self._multipart()
        slot = self._open_parts_slot(caller, upload_id)
        wanted = self._wanted_parts(request, slot.size)
        now = self.uploads.clock.now()
        assert slot.resumable_until is not None
        assert slot.upload_handle is not None
        expires_at = min(now + self.uploads.url_ttl, slot.resumable_until)
        key = blob_keys.upload_key(caller, upload_id)
        part_size = part_size_for(slot.size)
        targets = tuple(
            (
                number,
                multipart.part_url(
                    key,
                    slot.upload_handle,
                    number,
                    self._part_bytes(slot.size, part_size, number),
                    checksum,
                    expires_at,
                ),
            )
            for number, checksum in wanted
        )
        return PartUrls(targets, expires_at)

    def multipart_session(self, caller: str, upload_id: str) -> UploadSession:
        """Where the caller's session stands: the parts the blob store holds (resume by sending
        the others), or that it was completed, or the image it became."""
        multipart = self._multipart()
        slot = self._slot(caller, upload_id)
        if slot.state is ImageState.ACTIVE:
            return self._became(slot)
        if self.uploads.clock.now() > self.uploads.slot_expires_at(slot):
            raise Gone("this upload expired: start a new upload")
        handle = self._handle(slot)
        try:
            parts = multipart.parts(blob_keys.upload_key(caller, upload_id), handle)
        except NotFound:
            # Within an open session only completion ends the multipart upload: a cancel
            # closes the session first, and the store drops stale uploads after the session.
            return self._multipart_session(slot, (), completed=True)
        return self._multipart_session(slot, tuple(parts))

    def complete(self, caller: str, upload_id: str) -> UploadSession:
        """Join the parts into the file, which then becomes the image as a direct upload does
        (checked as any upload, by the worker the file's arrival wakes). Every part must be
        there, each of its size: else Conflict, naming the parts missing. Completing again
        answers the same."""
        multipart = self._multipart()
        slot = self._slot(caller, upload_id)
        if slot.state is ImageState.ACTIVE:
            return self._became(slot)
        if self.uploads.clock.now() > self.uploads.slot_expires_at(slot):
            raise Gone("this upload expired: start a new upload")
        key = blob_keys.upload_key(caller, upload_id)
        handle = self._handle(slot)
        try:
            held = {part.number: part for part in multipart.parts(key, handle)}
        except NotFound:  # completed before (see multipart_session)
            return self._multipart_session(slot, (), completed=True)
        part_size = part_size_for(slot.size)
        count = max(1, -(-slot.size // part_size))
        missing = [number for number in range(1, count + 1) if number not in held]
        wrong = [
            number
            for number, part in sorted(held.items())
            if number > count or part.size != self._part_bytes(slot.size, part_size, number)
        ]
        if missing or wrong:
            problems = []
            if missing:
                problems.append(f"parts {_numbers(missing)} are missing")
            if wrong:
                problems.append(f"parts {_numbers(wrong)} are not of the size asked for")
            raise Conflict(
                f"the upload is not whole: {'; '.join(problems)}. Send them, then complete again"
            )
        with contextlib.suppress(NotFound):  # a concurrent completion came first
            multipart.complete(key, handle, [held[number] for number in range(1, count + 1)])
        return self._multipart_session(slot, (), completed=True)

    def cancel_multipart(self, caller: str, upload_id: str) -> None:
        """End the caller's session and drop the parts it holds. Cancelling a complete upload
        is refused (Conflict): delete the image instead."""
        multipart = self._multipart()
        slot = self._slot(caller, upload_id)
        if slot.state is ImageState.ACTIVE:
            raise Conflict(
                f"this upload is complete: delete the image /images/{slot.image_id} instead"
            )
        key = blob_keys.upload_key(caller, upload_id)
        handle = self._handle(slot)
        if self.uploads.clock.now() <= self.uploads.slot_expires_at(slot):
            try:
                multipart.parts(key, handle)
            except NotFound:
                raise Conflict(
                    "this upload is complete: its image appears at "
                    f"/images/{slot.image_id} once its file passed the checks"
                ) from None
        # The session closes first: stopped in between, the parts it left are dropped by the
        # store's own rule for stale uploads, while a session left open would say complete.
        finish_delete(self.uploads.repository, self.uploads.blobs, slot)
        multipart.abort(key, handle)

    def _became(self, image: Image) -> UploadSession:
        return UploadSession(
            image.image_id,
            image.size,
            image.size,
            image.created_at,
            image,
            part_size=part_size_for(image.size),
            completed=True,
        )

    def _multipart_session(
        self, slot: Image, parts: tuple[ReceivedPart, ...], completed: bool = False
    ) -> UploadSession:
        assert slot.resumable_until is not None
        received = slot.size if completed else sum(part.size for part in parts)
        return UploadSession(
            slot.image_id,
            slot.size,
            received,
            slot.resumable_until,
            part_size=part_size_for(slot.size),
            parts=parts,
            completed=completed,
        )

    def _open_parts_slot(self, caller: str, upload_id: str) -> Image:
        slot = self._slot(caller, upload_id)
        if slot.state is ImageState.ACTIVE:
            raise Conflict(f"this upload is complete: it is the image /images/{slot.image_id}")
        if self.uploads.clock.now() > self.uploads.slot_expires_at(slot):
            raise Gone("this upload expired: start a new upload")
        return slot

    @staticmethod
    def _handle(slot: Image) -> str:
        if slot.upload_handle is None:  # a session of the bytes through the service (tus)
            raise NotFound("no such upload")
        return slot.upload_handle

    @staticmethod
    def _part_bytes(size: int, part_size: int, number: int) -> int:
        return min(part_size, size - (number - 1) * part_size)

    @staticmethod
    def _wanted_parts(request: PartUrlsRequest, size: int) -> list[tuple[int, str]]:
        """The part numbers and checksums asked for, checked: each number once, from 1 to the
        part count, each checksum a SHA-256 in base64."""
        count = max(1, -(-size // part_size_for(size)))
        parts = request.parts
        if not isinstance(parts, list) or not parts:
            raise InvalidInput("parts must be a list of {number, sha256} objects, not empty")
        if len(parts) > MAX_PART_URLS:
            raise InvalidInput(f"ask for at most {MAX_PART_URLS} part URLs at a time")
        wanted: list[tuple[int, str]] = []
        for part in parts:
            if not isinstance(part, Mapping) or set(part) != {"number", "sha256"}:
                raise InvalidInput("each part must be an object of number and sha256, only")
            number, checksum = part["number"], part["sha256"]
            if isinstance(number, bool) or not isinstance(number, int):
                raise InvalidInput("a part's number must be a whole number")
            if not 1 <= number <= count:
                raise InvalidInput(f"part numbers run from 1 to {count}, not {number}")
            if any(number == seen for seen, _ in wanted):
                raise InvalidInput(f"part {number} is asked for twice")
            try:
                valid = isinstance(checksum, str) and (
                    len(base64.b64decode(checksum, validate=True)) == hashlib.sha256().digest_size
                )
            except (binascii.Error, ValueError):
                valid = False
            if not valid:
                raise InvalidInput(
                    f"the sha256 of part {number} must be the part's SHA-256 in base64"
                )
            assert isinstance(checksum, str)
            wanted.append((number, checksum))
        return wanted

    def check_multipart(self) -> None:
        """InvalidInput, pointing to tus, where files are not sent in parts to the blob store:
        so a client is told so before anything else of its request is read."""
        self._multipart()

    def _multipart(self) -> MultipartUploads:
        if self.multipart is None:
            raise InvalidInput(_USE_TUS)
        return self.multipart

    def _partials(self) -> PartialBlobs:
        if self.partials is None:
            raise InvalidInput(
                "this server keeps no partial uploads: ask POST /upload-sessions for part URLs"
            )
        return self.partials


class Appending:
    """Bytes on their way into a session, from one request. ``write`` each piece, then
    ``commit`` (which makes the image once the last byte is in) or ``abort``. One thread at a
    time; successive calls may come from different threads."""

    def __init__(
        self,
        resumable: ResumableUploads,
        slot: Image,
        key: str,
        offset: int,
        writer: PartialWriter,
        checksum: Checksum | None,
    ) -> None:
        self._resumable = resumable
        self._slot = slot
        self._key = key
        self._offset = offset
        self._writer = writer
        self._checksum = checksum
        self._hash = None if checksum is None else hashlib.new(checksum.algorithm)
        self._head = bytearray() if offset < HEAD_BYTES else None
        self.written = 0

    @property
    def verifies_checksum(self) -> bool:
        """Whether the bytes must match a checksum: then a request cut short keeps none."""
        return self._checksum is not None

    def write(self, data: bytes) -> None:
        """The next piece. PayloadTooLarge past the session's size."""
        try:
            self._writer.write(data)
        except PayloadTooLarge:
            raise PayloadTooLarge(
                f"the upload is {self._slot.size} bytes: these bytes would go past its end"
            ) from None
        self.written += len(data)
        if self._hash is not None:
            self._hash.update(data)
        if self._head is not None and len(self._head) < HEAD_BYTES:
            self._head += data[: HEAD_BYTES - len(self._head)]

    def commit(self) -> UploadSession:
        """Keep the bytes written (durably), and make the image if they were the last. Raises
        ChecksumMismatch, keeping none, if they are not those the checksum names."""
        try:
            checksum, digest = self._checksum, self._hash
            if checksum is not None and digest is not None and digest.digest() != checksum.digest:
                raise ChecksumMismatch(
                    f"the bytes sent do not have the {checksum.algorithm} checksum given: none "
                    "of them were kept, send them again"
                )
            received = self._offset + self.written
            whole = received == self._slot.size
            head_in = self._head is not None and self._offset + len(self._head) >= HEAD_BYTES
            if self._head is not None and received and (head_in or whole):
                self._resumable._check_head(self._slot, self._head_bytes())
            received = self._writer.commit()
        except BaseException:
            self._writer.abort()
            raise
        if received < self._slot.size:
            return _session_of(self._slot, received)
        return self._resumable._finish(self._slot, received)

    def abort(self) -> None:
        """Keep none of this request's bytes."""
        self._writer.abort()

    def _head_bytes(self) -> bytes:
        """The file's first bytes: those held before this request, then this request's."""
        assert self._head is not None
        if self._offset == 0:
            return bytes(self._head)
        held = bytearray()
        for chunk in self._resumable._partials().open(self._key):
            held += chunk
            if len(held) >= self._offset:
                break
        return bytes(held[: self._offset]) + bytes(self._head)
