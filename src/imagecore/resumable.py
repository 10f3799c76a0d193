"""Upload sessions whose bytes come through the service (the embedded server's tus), kept in a
partial blob under the session's upload key, appended in order, each request's bytes durable
before it is answered. When the last byte arrives the bytes pass exactly the checks of any
upload and the slot becomes the image, under the session's id; the partial blob goes.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator

import attrs

from imagecore import blob_keys
from imagecore.commands import NewResumableUpload
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
from imagecore.model import Image, ImageState
from imagecore.ports import PartialBlobs, PartialWriter
from imagecore.upload_sessions import SessionSlots, UploadSession, session_of
from imagecore.uploads import HEAD_BYTES, Uploads

CHECKSUM_ALGORITHMS = ("sha256", "sha1", "md5")
"""The algorithms a piece's checksum may be in, strongest first."""


@attrs.frozen
class Checksum:
    """What a client says the bytes of one request hash to."""

    algorithm: str
    digest: bytes


@attrs.frozen
class ResumableUploads:
    """Without ``partials`` this service keeps no partial bytes, and takes no upload session's
    bytes through itself."""

    slots: SessionSlots
    partials: PartialBlobs | None

    @property
    def uploads(self) -> Uploads:
        return self.slots.uploads

    def open_session(self, caller: str, command: NewResumableUpload) -> UploadSession:
        """A new session for a file of ``command.size`` bytes, its fields checked now."""
        partials = self._partials()
        slot = self.slots.new(caller, command)
        key = blob_keys.upload_key(caller, slot.image_id)
        partials.create(key)
        try:
            self.uploads.repository.add(slot)
        except BaseException:
            partials.delete(key)
            raise
        return session_of(slot, 0)

    def session(self, caller: str, upload_id: str) -> UploadSession:
        """Where the caller's session stands. A session whose bytes are all there but that did
        not become an image (the process that took its last byte died) becomes it now."""
        slot = self.slots.owned(caller, upload_id)
        if slot.state is ImageState.ACTIVE:
            return UploadSession(slot.image_id, slot.size, slot.size, slot.created_at, slot)
        if self.slots.expired(slot):
            raise Gone("this upload expired: start a new upload")
        key = blob_keys.upload_key(caller, upload_id)
        received = self._partials().size(key)
        if received is None:
            raise Gone("this upload's bytes are no longer kept: start a new upload")
        if received == slot.size:
            # Another request holding it, or finishing it this moment, makes the image.
            with contextlib.suppress(Locked, Conflict):
                return self.append(caller, upload_id, received, iter(()))
        return session_of(slot, received)

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
        slot = self.slots.open(caller, upload_id)
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
        slot = self.slots.owned(caller, upload_id)
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
            self.uploads.facts_of(head)
        except (InvalidInput, UnsupportedMediaType):
            self._close(slot)
            raise

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
            return session_of(self._slot, received)
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
