"""The ports: what the domain needs from the outside world, in the domain's own words.

Every adapter of a port passes the same contract suite (tests/contract), so the use cases can
rely on exactly what these docstrings promise and nothing more.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from imagecore.model import (
    ByteRange,
    Image,
    ImageFacts,
    Job,
    PartTarget,
    Position,
    ReceivedPart,
    Rendered,
    RenditionSize,
    StoredBlob,
    UploadTarget,
)
from imagecore.query import Listed, ListQuery


class ImageRepository(Protocol):
    """Image metadata. Writes are atomic per image; reads see every committed write.

    Content claims: an image that ``holds_content_claim`` (it claims its bytes and is ACTIVE)
    holds the claim on (its owner, its SHA-256), and at most one image holds each claim. The
    check and the write are one atomic step, so of any number of concurrent writes that would
    take one claim exactly one succeeds. An image stops holding its claim, and another may take
    it, when it is replaced by a version that is not ACTIVE (a tombstone) or claims nothing.
    Images that claim nothing are never refused for their bytes.
    """

    def add(self, image: Image) -> None:
        """Store a new image. Raises AlreadyExists if its id is taken; otherwise raises
        DuplicateContent, naming the holder, if the image would hold a claim another image
        holds. Either way nothing is stored."""

    def get(self, image_id: str) -> Image | None:
        """The image with this id in whatever state it is, or None."""

    def replace(self, image: Image, expected_version: int) -> None:
        """Store ``image`` over the stored one only if that one is at ``expected_version``,
        taking, keeping or releasing its content claim as ``image`` holds one or not.

        Raises VersionConflict if the stored version differs or the image does not exist;
        otherwise DuplicateContent, naming the holder, if ``image`` would hold a claim another
        image holds. Either way nothing is changed.
        """

    def list(self, query: ListQuery, caller: str, after: Position | None, limit: int) -> Listed:
        """Up to ``limit`` ACTIVE images that ``query.matches(image, caller)``, in ``query.order``
        by (created_at, image_id), strictly after ``after`` in that order when it is given.

        A store that reads an index reads a bounded number of its entries: at most
        ``read_budget(limit)`` where each costs as much as a DynamoDB read, a multiple of it
        where each is cheap (SQLite). If it stops there before ``limit`` matches and the end of
        the list, it says where (``Listed.read_up_to``), and fewer images are no sign of the
        end."""

    def find_by_content(self, user_id: str, sha256: str) -> Image | None:
        """An ACTIVE image of ``user_id`` whose bytes have this SHA-256, if there is one. May
        lag a just-committed write by a moment (an eventually consistent index)."""

    def unsettled(self) -> Iterator[Image]:
        """Every image in the DELETING or UPLOADING state: a delete that has not finished, or a
        direct upload whose bytes have not arrived. For the occasional reconciliation only."""

    def pending_thumbnails(self, created_before: datetime) -> Iterator[Image]:
        """Every ACTIVE image created before ``created_before`` whose thumbnail is PENDING, in
        no particular order. For the occasional reconciliation only."""

    def revision(self) -> Hashable | None:
        """A value that changes whenever a write is committed, by this process or any other; None
        where the store cannot tell cheaply. Two reads that return equal values had no write
        committed between them, so what a read made after the first found (a page, an image) is
        what one after the second would find: a cache may keep it under the value."""


class BlobWriter(Protocol):
    """Bytes on their way to one key of a blob store, handed over in pieces as they arrive.

    Nothing is under the key until ``commit`` returns. After ``abort``, or a ``write`` or
    ``commit`` that raised, nothing is left behind and the writer takes nothing more. One
    thread at a time; successive calls may come from different threads."""

    def write(self, data: bytes) -> None:
        """Add ``data`` to the bytes, after those written before."""

    def commit(self) -> StoredBlob:
        """Store the bytes written under the key, replacing any, durably; say what was stored."""

    def abort(self) -> None:
        """Give up: nothing is stored and nothing is left behind. Harmless after commit or abort."""


class BlobStore(Protocol):
    """Image bytes under opaque keys. A key never names a half-written blob."""

    def put(self, key: str, chunks: Iterable[bytes], content_type: str | None = None) -> StoredBlob:
        """Store the bytes under ``key``, replacing any. If ``chunks`` raises, nothing is stored
        under the key and nothing is left behind; the error propagates. A store that serves
        the bytes itself (S3, through presigned or CDN links) serves them as ``content_type``
        and as never changing: no key of the service's names two contents (blob_keys)."""

    def writer(self, key: str) -> BlobWriter:
        """A writer that stores the bytes handed to it under ``key`` once committed: for bytes
        that arrive piece by piece, whoever sends them, without a thread waiting for them."""

    def open(self, key: str, byte_range: ByteRange | None = None) -> Iterator[bytes]:
        """The stored bytes (or the inclusive range of them). Raises KeyError if there are none."""

    def delete(self, key: str) -> None:
        """Remove the blob; removing a missing blob is not an error."""

    def stored_before(self, moment: datetime) -> Iterator[str]:
        """The keys of every blob last written before ``moment``, derivatives included, in no
        particular order. Lists the whole store: for the occasional reconciliation only."""

    def presigned_get(
        self,
        key: str,
        ttl: timedelta,
        filename: str,
        content_type: str,
        *,
        as_stored: bool = False,
    ) -> str | None:
        """A short-lived URL a client can fetch the bytes from directly, where the store has one,
        serving them as ``content_type``, to be saved as ``filename``. With ``as_stored`` (bytes
        put with their content type, whose file name does not matter: a rendition) the store
        may hand out a link that serves them as stored instead, one a CDN can cache."""

    def local_path(self, key: str) -> str | None:
        """A file on this machine holding exactly the bytes, where the store keeps them so."""


class BlobCopier(Protocol):
    """Copies bytes from key to key inside the blob store, without them passing through the
    service (S3's server-side copy)."""

    def copy(self, source: str, target: str) -> None:
        """Store under ``target`` the bytes stored under ``source``, replacing any: the copy
        appears whole or not at all. Raises KeyError if nothing is stored under ``source``."""


class StorageSpace(Protocol):
    """Whether the stores have room for new images: a local disk fills, S3 and DynamoDB do not.
    While there is none, writes fail with InsufficientStorage and deletes still succeed."""

    def has_room(self) -> bool:
        """False while the stores are (nearly) full. May make room set aside for deletes whole
        again first, as any write would."""


class UploadTargets(Protocol):
    """Where clients send the bytes of a direct upload, bypassing the API."""

    def target(self, key: str, max_bytes: int, expires_at: datetime) -> UploadTarget:
        """A URL and form fields that let a client POST one file (multipart/form-data: the
        fields, then the file in a part named ``file``) of 1 to ``max_bytes`` bytes, with an
        ``image/`` content type, to be stored under ``key``, until ``expires_at``. The URL may
        be relative to the API's own address."""


class PartialWriter(Protocol):
    """Bytes appended to a resumable upload's partial blob by one request, at its end."""

    def write(self, data: bytes) -> None:
        """Add ``data`` after the bytes written before. Raises PayloadTooLarge, writing none of
        ``data``, if the partial blob would grow past the size its writer allows."""

    def commit(self) -> int:
        """Make every byte written so far durable, and part of the partial blob; the blob's
        size in bytes now. The writer takes nothing more."""

    def abort(self) -> None:
        """Undo every write: the partial blob is as it was before this writer. Harmless after
        commit or abort."""


class PartialBlobs(Protocol):
    """The bytes of resumable uploads so far, each under a key of its own: appended in order,
    over as many requests as it takes, kept durably across restarts until deleted. At most one
    writer appends to a key at a time, across every process that shares the store."""

    def size(self, key: str) -> int | None:
        """How many bytes the partial blob durably holds; None if there is none."""

    def create(self, key: str) -> None:
        """An empty partial blob under ``key``, replacing any."""

    def appender(self, key: str, offset: int, max_size: int) -> PartialWriter:
        """A writer that appends at ``offset``, which must be the blob's size, up to
        ``max_size`` bytes in all. Raises NotFound if there is no blob, Conflict if ``offset``
        is not its size, Locked while another writer holds it."""

    def open(self, key: str) -> Iterator[bytes]:
        """The bytes held. Raises KeyError if there are none."""

    def delete(self, key: str) -> None:
        """Remove the partial blob; removing a missing one is not an error."""

    def mover(self, key: str, blob_key: str) -> BlobWriter | None:
        """A writer that stores the whole partial blob under ``key`` as the blob store's
        ``blob_key`` without writing its bytes again (the stores share a disk): the bytes
        written to it must be the partial blob's own, all of them, in order (it hashes and
        counts them, and its commit refuses a count that is not the blob's size). The partial
        blob stays until deleted. None where the stores cannot hand bytes over so; the caller
        then writes them to the blob store."""

    def stored_before(self, moment: datetime) -> Iterator[str]:
        """The keys of every partial blob last written before ``moment``. For the occasional
        reconciliation only."""


class MultipartUploads(Protocol):
    """Files a client sends straight to the blob store in numbered parts, over as many requests
    as it takes (S3's multipart uploads): the bytes never pass through the service. Each upload
    is named by the key its file lands under once complete and by the store's own ``handle``.
    An upload neither completed nor aborted is invisible under its key."""

    def start(self, key: str) -> str:
        """A new multipart upload for ``key``, its parts checked against their SHA-256; its
        handle."""

    def part_url(
        self, key: str, handle: str, number: int, size: int, sha256_b64: str, expires_at: datetime
    ) -> PartTarget:
        """Where a client PUTs part ``number`` (1 to 10,000), of exactly ``size`` bytes whose
        SHA-256 is ``sha256_b64`` (base64), with the headers it names, until ``expires_at``.
        The store refuses a part whose bytes are not those the checksum names, or not ``size``
        of them."""

    def parts(self, key: str, handle: str) -> Sequence[ReceivedPart]:
        """Every part the store holds, by number (a part sent again is held once, as sent
        last). Raises NotFound if there is no such upload (never started, completed or
        aborted)."""

    def complete(self, key: str, handle: str, parts: Sequence[ReceivedPart]) -> None:
        """Join ``parts`` (as ``parts`` listed them, in order) into the file under ``key``,
        which appears there whole. Raises NotFound if there is no such upload."""

    def abort(self, key: str, handle: str) -> None:
        """Drop the upload and every part it holds; aborting a missing upload is not an
        error."""


class ImageInspector(Protocol):
    """Reads what an image is from the first bytes of it, without decoding the pixels."""

    def inspect(self, head: bytes) -> ImageFacts | None:
        """The facts of a JPEG, PNG, GIF, WebP, HEIC or AVIF (HEIF) whose header is in ``head``;
        None for anything else, including a header that is truncated or malformed."""


class Renderer(Protocol):
    """Makes the scaled copies of an image that lists and viewers show, and its placeholder.
    The one place pixels are ever decoded."""

    def render(self, chunks: Iterable[bytes], sizes: Sequence[RenditionSize]) -> Rendered:
        """The image in ``chunks`` (an accepted upload), decoded once: for each size, a copy
        scaled to fit ``max_side`` pixels on its longest side (never enlarged), turned upright
        as the file says, encoded in every format of RENDITION_CONTENT_TYPES the renderer has
        an encoder for (JPEG and WebP always; AVIF where it can), best first, with no metadata;
        and the placeholder of the image as shown.

        Its memory and time are bounded: an image whose decoding would take more memory than
        the renderer allows is refused from its header, before any pixel is decoded, and one
        that takes longer than its time limit is stopped; both raise ThumbnailTooCostly.
        Raises anything else on any other failure (an error of ``chunks`` propagates)."""


class JobQueue(Protocol):
    """Background work, done outside the request that asked for it. The handlers of jobs are
    idempotent: a job may run more than once, and a job queued again while the queue holds it
    may be kept once or run twice."""

    def enqueue(self, job: Job) -> None:
        """Have ``job`` run soon, at least once, by whatever serves this queue. Raises if the job
        could not be queued; once this returns, the job is not lost."""


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""


class IdGenerator(Protocol):
    def new_id(self, now: datetime) -> str:
        """A new, unique image id that sorts by ``now``: 26 characters of Crockford base32."""


class UploadLinkVerifier(Protocol):
    """Checks the links of a service that is its own upload target (the embedded server):
    whoever posts bytes to a link must carry the fields the service handed out with it."""

    @property
    def field_names(self) -> tuple[str, ...]:
        """The names of the fields a link carries (as form fields or query parameters)."""

    def verify(self, upload_id: str, fields: Mapping[str, str], max_bytes: int) -> None:
        """Raises Unauthenticated unless ``fields`` are those of a link the service gave out
        for ``upload_id`` and ``max_bytes`` that has not expired. Reads no bytes of the file."""
