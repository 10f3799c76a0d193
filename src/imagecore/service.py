"""The use cases: every rule of the product lives here, expressed over the ports."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Final

import attrs

from imagecore import validation
from imagecore.cursor import CursorCodec
from imagecore.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    UnsupportedMediaType,
    VersionConflict,
)
from imagecore.model import (
    ACCEPTED_CONTENT_TYPES,
    ByteRange,
    Image,
    ImageState,
    ThumbnailStatus,
)
from imagecore.ports import BlobStore, Clock, IdGenerator, ImageInspector, ImageRepository
from imagecore.query import ListQuery

HEAD_BYTES = 1024 * 1024
"""How much of an upload is read before it is accepted: enough for any sane image header."""

_WRITE_ATTEMPTS = 5

IMAGES_PREFIX = "images"
UPLOADS_PREFIX = "uploads"
ORPHAN_GRACE = timedelta(hours=1)
"""How old bytes no image holds must be before reconcile removes them: an upload stores its
bytes before its metadata, so younger ones may be an upload still under way."""


def upload_key(owner: str, upload_id: str) -> str:
    """Where a client's direct upload lands; the upload id becomes the image's id."""
    return f"{UPLOADS_PREFIX}/{owner}/{upload_id}"


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
class UploadCommand:
    """A new image: its bytes as chunks, and what the client said about it (unvalidated)."""

    chunks: Iterable[bytes]
    filename: object = None
    title: object = None
    description: object = None
    tags: object = None
    metadata: object = None
    visibility: object = None


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
    """An image's bytes, in the fastest forms the blob store offers: a URL the client can fetch
    itself, a local file the server can send, and always a stream."""

    image: Image
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


def _read_head(chunks: Iterator[bytes], size: int) -> bytes:
    head = bytearray()
    for chunk in chunks:
        head += chunk
        if len(head) >= size:
            break
    return bytes(head)


@attrs.define
class ImageService:
    """Upload, list, get, download, update and delete images on behalf of a caller.

    ``caller`` is always an authenticated user id. An image another user owns is NotFound unless
    it is public, and then it may be read but never changed.
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

    def upload(self, caller: str, command: UploadCommand) -> Image:
        """Store the bytes, then the metadata. The image is visible only once both are stored;
        if storing the metadata fails, the bytes are removed again."""
        return self._store(caller, command, image_id=None)

    def complete_upload(self, key: str) -> Image | None:
        """Make an image of bytes a client uploaded directly to ``uploads/<user>/<upload id>``:
        validated as any upload is, stored under the upload id, the uploaded object removed.

        Bytes that fail validation are removed too, and the error propagates. Safe to repeat, as
        queues deliver at least once: None when there is nothing (left) to do.
        """
        owner, upload_id = parse_upload_key(key)
        if self.repository.get(upload_id) is not None:  # done before (and maybe deleted since)
            self.blobs.delete(key)
            return None
        try:
            chunks = self.blobs.open(key)
        except KeyError:
            return None
        try:
            image = self._store(owner, UploadCommand(chunks=chunks), image_id=upload_id)
        except (InvalidInput, UnsupportedMediaType, PayloadTooLarge):
            self.blobs.delete(key)
            raise
        except AlreadyExists:  # a second delivery of the same upload finished first
            return None
        self.blobs.delete(key)
        return image

    def reconcile(self, grace: timedelta = ORPHAN_GRACE) -> ReconcileReport:
        """Finish every delete that was interrupted, then remove the bytes no image holds that
        were stored more than ``grace`` ago (younger ones may be an upload still under way)."""
        finished = 0
        for tombstone in self.repository.unfinished_deletes():
            self._finish_delete(tombstone)
            finished += 1
        checked = removed = 0
        for key in self.blobs.stored_before(self.clock.now() - grace):
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
        return (
            image is not None
            and image.state is not ImageState.DELETED
            and (key == image.blob_key or key.startswith(image.blob_key + "/"))
        )

    def _store(self, caller: str, command: UploadCommand, image_id: str | None) -> Image:
        title = validation.title(command.title, self.limits)
        description = validation.description(command.description, self.limits)
        tags = validation.tags(command.tags, self.limits)
        metadata = validation.metadata(command.metadata, self.limits)
        visibility = validation.visibility(command.visibility)
        filename = validation.filename(command.filename, self.limits)

        chunks = _within_limit(command.chunks, self.max_upload_bytes)
        head = _read_head(chunks, HEAD_BYTES)
        if not head:
            raise InvalidInput("the file is empty")
        facts = self.inspector.inspect(head)
        if facts is None or facts.content_type not in ACCEPTED_CONTENT_TYPES:
            raise UnsupportedMediaType("the file is not a JPEG, PNG, GIF or WebP image")

        now = self.clock.now()
        if image_id is None:
            image_id = self._unused_id(now)
        blob_key = f"{IMAGES_PREFIX}/{caller}/{image_id}"
        stored = self.blobs.put(blob_key, itertools.chain((head,), chunks))
        image = Image(
            image_id=image_id,
            user_id=caller,
            filename=filename,
            content_type=facts.content_type,
            size=stored.size,
            width=facts.width,
            height=facts.height,
            sha256=stored.sha256,
            blob_key=blob_key,
            created_at=now,
            updated_at=now,
            title=title,
            description=description,
            tags=tags,
            metadata=metadata,
            visibility=visibility,
            thumbnail_status=ThumbnailStatus.PENDING,
        )
        try:
            self.repository.add(image)
        except AlreadyExists:
            # Only a chosen id can be taken (new ones are checked first), and then only by an
            # earlier delivery of the same direct upload, which owns these very bytes now.
            raise
        except BaseException:
            self.blobs.delete(blob_key)
            raise
        return image

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
        """Change the owner's metadata. With ``expected_version`` the change applies only to that
        version (else PreconditionFailed); without it, a concurrent change is retried over."""
        changes = self._validated_changes(command)
        for _ in range(_WRITE_ATTEMPTS):
            current = self._owned_active(caller, image_id)
            if expected_version is not None and current.version != expected_version:
                raise PreconditionFailed(
                    f"the image is at version {current.version}, not {expected_version}"
                )
            if not changes:
                return current
            updated = attrs.evolve(
                current, version=current.version + 1, updated_at=self.clock.now(), **changes
            )
            try:
                self.repository.replace(updated, current.version)
            except VersionConflict:
                if expected_version is not None:
                    raise PreconditionFailed(
                        f"the image changed since version {expected_version}"
                    ) from None
                continue
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
