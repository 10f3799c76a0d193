"""Upload sessions sent in numbered parts straight to the blob store (S3 multipart uploads): the
service hands out part URLs, lists the parts the store holds so a client resumes, and completes
or cancels; no byte of the file passes through it. Once completed the file lands under the
session's upload key, and becomes the image as a direct upload's does (checked by the worker
its arrival wakes).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime

import attrs

from imagecore import blob_keys
from imagecore.commands import NewResumableUpload, PartUrlsRequest
from imagecore.errors import Conflict, Gone, InvalidInput, NotFound, PayloadTooLarge
from imagecore.lifecycle import finish_delete
from imagecore.model import Image, ImageState, PartTarget, ReceivedPart
from imagecore.ports import MultipartUploads
from imagecore.results import Stored
from imagecore.upload_sessions import SessionSlots, UploadSession
from imagecore.uploads import Uploads

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
class PartUrls:
    """Where to PUT each part asked for, by number, and until when the URLs work."""

    targets: tuple[tuple[int, PartTarget], ...]
    expires_at: datetime


@attrs.frozen
class MultipartSessions:
    """Without ``multipart`` no session is sent in parts (tus, through the service, is the
    resumable way then)."""

    slots: SessionSlots
    multipart: MultipartUploads | None

    @property
    def uploads(self) -> Uploads:
        return self.slots.uploads

    def open_multipart(self, caller: str, command: NewResumableUpload) -> UploadSession | Stored:
        """A new session for a file of ``command.size`` bytes sent in parts straight to the
        blob store, its fields checked now; the server chooses the part size. With the file's
        SHA-256, an image of the caller's that has it is the answer instead (``created``
        False) and no session is made; otherwise the file must have that hash."""
        multipart = self._multipart()
        slot = self.slots.new(caller, command)
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
        slot = self.slots.open(caller, upload_id)
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
        slot = self.slots.owned(caller, upload_id)
        if slot.state is ImageState.ACTIVE:
            return self._became(slot)
        if self.slots.expired(slot):
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
        slot = self.slots.owned(caller, upload_id)
        if slot.state is ImageState.ACTIVE:
            return self._became(slot)
        if self.slots.expired(slot):
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
        slot = self.slots.owned(caller, upload_id)
        if slot.state is ImageState.ACTIVE:
            raise Conflict(
                f"this upload is complete: delete the image /images/{slot.image_id} instead"
            )
        key = blob_keys.upload_key(caller, upload_id)
        handle = self._handle(slot)
        if not self.slots.expired(slot):
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
