"""In-memory adapters: the fakes of the tests and the `memory` backend. Same behaviour as every
other adapter (the contract suite proves it); nothing survives the process."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import attrs

from adapters.blob_writing import put_through
from imagecore.errors import (
    AlreadyExists,
    Conflict,
    DuplicateContent,
    Locked,
    NotFound,
    PayloadTooLarge,
    VersionConflict,
)
from imagecore.model import (
    ByteRange,
    Image,
    ImageState,
    PartTarget,
    Position,
    ReceivedPart,
    SortOrder,
    StoredBlob,
    ThumbnailStatus,
)
from imagecore.query import Listed, ListQuery

_CHUNK = 64 * 1024


class MemoryImageRepository:
    def __init__(self) -> None:
        self._images: dict[str, Image] = {}
        self._lock = threading.Lock()
        self._writes = 0

    def add(self, image: Image) -> None:
        with self._lock:
            if image.image_id in self._images:
                raise AlreadyExists(image.image_id)
            self._refuse_a_second_claim(image)
            self._images[image.image_id] = image
            self._writes += 1

    def get(self, image_id: str) -> Image | None:
        return self._images.get(image_id)

    def replace(self, image: Image, expected_version: int) -> None:
        with self._lock:
            stored = self._images.get(image.image_id)
            if stored is None or stored.version != expected_version:
                raise VersionConflict(image.image_id)
            self._refuse_a_second_claim(image)
            self._images[image.image_id] = image
            self._writes += 1

    def revision(self) -> int:
        with self._lock:  # a write and its count change together
            return self._writes

    def _refuse_a_second_claim(self, image: Image) -> None:
        """Raises DuplicateContent if another image holds the claim ``image`` would hold.
        Called with the lock held, so the check and the write that follows are one step."""
        if not image.holds_content_claim:
            return
        for other in self._images.values():
            if (
                other.holds_content_claim
                and other.image_id != image.image_id
                and (other.user_id, other.sha256) == (image.user_id, image.sha256)
            ):
                raise DuplicateContent(other.image_id)

    def list(self, query: ListQuery, caller: str, after: Position | None, limit: int) -> Listed:
        # Everything is in memory: no index to read, no budget to keep.
        descending = query.order is SortOrder.DESC
        with self._lock:
            matching = [image for image in self._images.values() if query.matches(image, caller)]

        def order_key(image: Image) -> tuple[datetime, str]:
            return (image.created_at, image.image_id)

        matching.sort(key=order_key, reverse=descending)
        if after is not None:
            mark = (after.created_at, after.image_id)
            if descending:
                matching = [image for image in matching if order_key(image) < mark]
            else:
                matching = [image for image in matching if order_key(image) > mark]
        return Listed(matching[:limit])

    def find_by_content(self, user_id: str, sha256: str) -> Image | None:
        with self._lock:
            images = list(self._images.values())
        matching = [
            image
            for image in images
            if image.user_id == user_id and image.sha256 == sha256 and image.is_active
        ]
        return min(matching, key=lambda image: (image.created_at, image.image_id), default=None)

    def unsettled(self) -> Iterator[Image]:
        with self._lock:
            images = list(self._images.values())
        unsettled = (ImageState.DELETING, ImageState.UPLOADING)
        return (image for image in images if image.state in unsettled)

    def pending_thumbnails(self, created_before: datetime) -> Iterator[Image]:
        with self._lock:
            images = list(self._images.values())
        return (
            image
            for image in images
            if image.is_active
            and image.thumbnail_status is ThumbnailStatus.PENDING
            and image.created_at < created_before
        )


class _MemoryBlobWriter:
    """The bytes of one put, kept aside until the commit stores them whole."""

    def __init__(self, store: MemoryBlobStore, key: str) -> None:
        self._store = store
        self._key = key
        self._digest = hashlib.sha256()
        self._parts: list[bytes] = []
        self._open = True

    def write(self, data: bytes) -> None:
        if not self._open:
            raise ValueError("this blob writer is closed")
        self._digest.update(data)
        self._parts.append(bytes(data))

    def commit(self) -> StoredBlob:
        if not self._open:
            raise ValueError("this blob writer is closed")
        self._open = False
        data = b"".join(self._parts)
        self._parts = []
        self._store._store(self._key, data)
        return StoredBlob(size=len(data), sha256=self._digest.hexdigest())

    def abort(self) -> None:
        self._open = False
        self._parts = []


class MemoryBlobStore:
    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}
        self._written_at: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def put(self, key: str, chunks: Iterable[bytes], content_type: str | None = None) -> StoredBlob:
        return put_through(self.writer(key), chunks)

    def writer(self, key: str) -> _MemoryBlobWriter:
        return _MemoryBlobWriter(self, key)

    def _store(self, key: str, data: bytes) -> None:
        with self._lock:
            self._blobs[key] = data
            self._written_at[key] = datetime.now(UTC)

    def open(self, key: str, byte_range: ByteRange | None = None) -> Iterator[bytes]:
        data = self._blobs[key]
        if byte_range is not None:
            data = data[byte_range.start : byte_range.end + 1]
        return iter([data[i : i + _CHUNK] for i in range(0, len(data), _CHUNK)])

    def delete(self, key: str) -> None:
        with self._lock:
            self._blobs.pop(key, None)
            self._written_at.pop(key, None)

    def mover(self, key: str, blob_key: str) -> None:
        return None  # nothing to save in memory: the bytes are copied

    def stored_before(self, moment: datetime) -> Iterator[str]:
        with self._lock:
            written = list(self._written_at.items())
        return (key for key, at in written if at < moment)

    def presigned_get(
        self,
        key: str,
        ttl: timedelta,
        filename: str,
        content_type: str,
        *,
        as_stored: bool = False,
    ) -> str | None:
        return None

    def local_path(self, key: str) -> str | None:
        return None

    def keys(self) -> list[str]:
        return sorted(self._blobs)

    def copy(self, source: str, target: str) -> None:
        """The BlobCopier port: the bytes under ``source`` stored under ``target`` too."""
        self._store(target, self._blobs[source])


class _MemoryPartialWriter:
    def __init__(self, store: MemoryPartialBlobs, key: str, max_size: int, held: int) -> None:
        self._store = store
        self._key = key
        self._max_size = max_size
        self._size = held
        self._pieces: list[bytes] = []
        self._open = True

    def write(self, data: bytes) -> None:
        if not self._open:
            raise ValueError("this writer is finished")
        if self._size + len(data) > self._max_size:
            raise PayloadTooLarge(f"the upload holds at most {self._max_size} bytes")
        self._pieces.append(bytes(data))
        self._size += len(data)

    def commit(self) -> int:
        if not self._open:
            raise ValueError("this writer is finished")
        self._open = False
        self._store._append(self._key, b"".join(self._pieces))
        return self._size

    def abort(self) -> None:
        if self._open:
            self._open = False
            self._store._release(self._key)


class MemoryPartialBlobs:
    """The ``PartialBlobs`` port in memory."""

    def __init__(self) -> None:
        self._blobs: dict[str, bytearray] = {}
        self._written_at: dict[str, datetime] = {}
        self._writing: set[str] = set()
        self._lock = threading.Lock()

    def size(self, key: str) -> int | None:
        with self._lock:
            blob = self._blobs.get(key)
            return None if blob is None else len(blob)

    def create(self, key: str) -> None:
        with self._lock:
            self._blobs[key] = bytearray()
            self._written_at[key] = datetime.now(UTC)

    def appender(self, key: str, offset: int, max_size: int) -> _MemoryPartialWriter:
        with self._lock:
            blob = self._blobs.get(key)
            if blob is None:
                raise NotFound("no such partial upload")
            if key in self._writing:
                raise Locked(
                    "another request is sending bytes to this upload: try again once it ended"
                )
            if offset != len(blob):
                raise Conflict(f"the upload holds {len(blob)} bytes: send from offset {len(blob)}")
            self._writing.add(key)
            return _MemoryPartialWriter(self, key, max_size, len(blob))

    def _append(self, key: str, data: bytes) -> None:
        with self._lock:
            self._writing.discard(key)
            if key in self._blobs:
                self._blobs[key] += data
                self._written_at[key] = datetime.now(UTC)

    def _release(self, key: str) -> None:
        with self._lock:
            self._writing.discard(key)

    def open(self, key: str) -> Iterator[bytes]:
        with self._lock:
            data = bytes(self._blobs[key])
        return iter([data[i : i + _CHUNK] for i in range(0, len(data), _CHUNK)])

    def delete(self, key: str) -> None:
        with self._lock:
            self._blobs.pop(key, None)
            self._written_at.pop(key, None)

    def mover(self, key: str, blob_key: str) -> None:
        return None  # nothing to save in memory: the bytes are copied

    def stored_before(self, moment: datetime) -> Iterator[str]:
        with self._lock:
            written = list(self._written_at.items())
        return (key for key, at in written if at < moment)


class PartRefused(ValueError):
    """The fake store refused a part, as S3 answers a PUT it will not take: an unknown or
    expired URL, no such upload, or bytes other than those the URL was signed for."""


@attrs.frozen
class _SignedPart:
    key: str
    handle: str
    number: int
    size: int
    sha256_b64: str
    expires_at: datetime


MIN_PART_BYTES = 5 * 1024 * 1024
"""S3's smallest part but the last one."""
MAX_PARTS = 10_000


class MemoryMultipartUploads:
    """Multipart uploads kept in memory, completed into a memory blob store. Its part URLs are
    names only: a test "PUTs" a part with ``send_part``, which refuses what S3 would refuse
    (an expired or unknown URL, another size or checksum than the URL was signed for)."""

    CHECKSUM_HEADER = "x-amz-checksum-sha256"

    def __init__(
        self, blobs: MemoryBlobStore, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._blobs = blobs
        self._clock = clock
        self._uploads: dict[str, tuple[str, dict[int, tuple[bytes, str, str]]]] = {}
        self._signed: dict[str, _SignedPart] = {}
        self._lock = threading.Lock()

    def start(self, key: str) -> str:
        handle = secrets.token_urlsafe(24)
        with self._lock:
            self._uploads[handle] = (key, {})
        return handle

    def part_url(
        self, key: str, handle: str, number: int, size: int, sha256_b64: str, expires_at: datetime
    ) -> PartTarget:
        if not 1 <= number <= MAX_PARTS:
            raise ValueError(f"part numbers run from 1 to {MAX_PARTS}, not {number}")
        url = f"memory://multipart/{handle}/{number}?signature={secrets.token_hex(16)}"
        with self._lock:
            self._signed[url] = _SignedPart(key, handle, number, size, sha256_b64, expires_at)
        return PartTarget(url=url, headers={self.CHECKSUM_HEADER: sha256_b64})

    def send_part(self, url: str, data: bytes, headers: Mapping[str, str]) -> str:
        """A client's PUT of a part to ``url``: the part's entity tag, or PartRefused."""
        with self._lock:
            signed = self._signed.get(url)
            if signed is None or self._clock() > signed.expires_at:
                raise PartRefused("the URL is unknown or has expired")
            upload = self._uploads.get(signed.handle)
            if upload is None or upload[0] != signed.key:
                raise PartRefused("no such upload")
            given = {name.lower(): value for name, value in headers.items()}
            if given.get(self.CHECKSUM_HEADER) != signed.sha256_b64:
                raise PartRefused("the checksum header is not the one the URL was signed for")
            if len(data) != signed.size:
                raise PartRefused(f"the URL takes {signed.size} bytes, not {len(data)}")
            if base64.b64encode(hashlib.sha256(data).digest()).decode() != signed.sha256_b64:
                raise PartRefused("the part's bytes do not have the checksum given")
            etag = f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'
            upload[1][signed.number] = (bytes(data), etag, signed.sha256_b64)
            return etag

    def parts(self, key: str, handle: str) -> Sequence[ReceivedPart]:
        with self._lock:
            held = self._held(key, handle)
            return [
                ReceivedPart(number, len(data), etag, checksum)
                for number, (data, etag, checksum) in sorted(held.items())
            ]

    def complete(self, key: str, handle: str, parts: Sequence[ReceivedPart]) -> None:
        with self._lock:
            held = self._held(key, handle)
            numbers = [part.number for part in parts]
            if not parts or numbers != sorted(set(numbers)):
                raise Conflict("the parts must be listed in ascending order, each once")
            for index, part in enumerate(parts):
                kept = held.get(part.number)
                if kept is None or kept[1] != part.etag:
                    raise Conflict(f"part {part.number} is not held as listed")
                if index < len(parts) - 1 and len(kept[0]) < MIN_PART_BYTES:
                    raise Conflict(f"part {part.number} is below the smallest part size")
            data = b"".join(held[number][0] for number in numbers)
            del self._uploads[handle]
        self._blobs._store(key, data)

    def abort(self, key: str, handle: str) -> None:
        with self._lock:
            upload = self._uploads.get(handle)
            if upload is not None and upload[0] == key:
                del self._uploads[handle]

    def handles(self) -> list[str]:
        """The uploads neither completed nor aborted: for the tests' checks of leftovers."""
        with self._lock:
            return sorted(self._uploads)

    def _held(self, key: str, handle: str) -> dict[int, tuple[bytes, str, str]]:
        upload = self._uploads.get(handle)
        if upload is None or upload[0] != key:
            raise NotFound("no such multipart upload")
        return upload[1]
