"""Upload sessions: a file of any size sent over as many requests as it takes, surviving a
dropped connection, a closed laptop or a restart of either side. Its bytes come one of two ways:
through the service, appended in order (tus: imagecore/resumable.py), or in numbered parts
straight to the blob store (S3 multipart uploads: imagecore/multipart.py).

Either way the session is an upload slot (an UPLOADING record, as a direct upload's) that stays
open until ``resumable_until``, under the id of the image it becomes once its bytes are whole
and have passed exactly the checks of any upload. This module holds what the two share.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs

from imagecore import validation
from imagecore.commands import NewResumableUpload
from imagecore.details import ImageDetails
from imagecore.errors import (
    Conflict,
    Gone,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from imagecore.lookups import find_image
from imagecore.model import ACCEPTED_CONTENT_TYPES, Image, ImageState, ReceivedPart
from imagecore.uploads import Uploads

DEFAULT_SESSION_TTL = timedelta(hours=24)


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


def session_of(slot: Image, received: int) -> UploadSession:
    assert slot.resumable_until is not None
    return UploadSession(slot.image_id, slot.size, received, slot.resumable_until)


@attrs.frozen
class SessionSlots:
    """The records of upload sessions, whichever way their bytes come: made with the client's
    fields checked, and found for their owner only."""

    uploads: Uploads
    session_ttl: timedelta = DEFAULT_SESSION_TTL

    @property
    def max_bytes(self) -> int:
        return self.uploads.max_resumable_upload_bytes

    def new(self, caller: str, command: NewResumableUpload) -> Image:
        """The record of a new session of the caller's, not yet stored: the fields, the size
        and the type the client says the file has, checked now."""
        details = ImageDetails.validated(command, self.uploads.limits)
        size = command.size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise InvalidInput("size must be the file's size in bytes, a whole number above 0")
        if size > self.max_bytes:
            raise PayloadTooLarge(f"the file is larger than the limit of {self.max_bytes} bytes")
        content_type = command.content_type
        if content_type is not None and content_type not in ACCEPTED_CONTENT_TYPES:
            raise UnsupportedMediaType(
                "content_type must be that of a JPEG, PNG, GIF, WebP, HEIC or AVIF image: "
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

    def owned(self, caller: str, upload_id: str) -> Image:
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

    def open(self, caller: str, upload_id: str) -> Image:
        """The caller's session, still taking bytes: Conflict once it became its image, Gone
        once it expired."""
        slot = self.owned(caller, upload_id)
        if slot.state is ImageState.ACTIVE:
            raise Conflict(f"this upload is complete: it is the image /images/{slot.image_id}")
        if self.expired(slot):
            raise Gone("this upload expired: start a new upload")
        return slot

    def expired(self, slot: Image) -> bool:
        return self.uploads.clock.now() > self.uploads.slot_expires_at(slot)
