"""Blobs as objects in one private S3 bucket, server-side encrypted, streamed in and out.

An object appears under its key only once S3 has all of it (a single PUT, or a multipart upload
that is completed), so a key never names a half-written blob. Derivatives of a blob (thumbnails)
live under the blob's key followed by "/" and go when it goes.
"""

from __future__ import annotations

import contextlib
import hashlib
import unicodedata
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import IO, TYPE_CHECKING, Any, Protocol, cast

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from adapters.errors import MissingResource
from imagecore.disposition import attachment_disposition
from imagecore.model import ByteRange, StoredBlob, UploadTarget

if TYPE_CHECKING:
    from botocore.response import StreamingBody
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

_MIB = 1024 * 1024
_PART_BYTES = 8 * _MIB
"""The parts of a writer's multipart upload (S3 takes 5 MiB to 5 GiB, the last one smaller)."""
_READ_CHUNK = 256 * 1024
_DELETE_BATCH = 1000  # the most keys one DeleteObjects call takes
_ENCRYPTED = {"ServerSideEncryption": "AES256"}
_IMMUTABLE = {"CacheControl": "public, max-age=31536000, immutable"}
"""What S3 and the CDN in front of it (terraform/modules/media) send with an object written with
its type: no key names two contents, and every link to it is signed, so caches may keep it."""
_COPIED = {**_ENCRYPTED, "ChecksumAlgorithm": "SHA256"}
"""A copy gets a checksum of its own, of its whole bytes: the source's may be that of its parts
(a multipart upload's), which a reader checking the copy's bytes against it would refuse."""
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})

_TRANSFER = TransferConfig(
    multipart_threshold=8 * _MIB,
    multipart_chunksize=8 * _MIB,
    max_concurrency=4,
    # The CRT client, which boto3 may pick on some instance types, streams differently from the
    # classic one whose failure handling put() relies on.
    preferred_transfer_client="classic",
)
# From a stream, s3transfer holds every part in memory until it is sent; the default of 10 parts
# would let one upload hold 80 MiB. Four parts in flight match the four request threads.
_TRANSFER.max_in_memory_upload_chunks = 4


_COPY = TransferConfig(
    # One CopyObject takes up to 5 GiB: a file up to the default resumable limit is one request.
    multipart_threshold=5 * 1024 * _MIB,
    multipart_chunksize=512 * _MIB,
    max_concurrency=4,
    preferred_transfer_client="classic",
)


def _object_name(key: str) -> str:
    """The S3 object name of a key: the key itself, but for "%" and control characters, which
    are %-escaped (UTF-8). Some endpoints cannot route a line break in a URL, and XML listings
    cannot carry NUL; the keys the service makes never hold any of them."""
    return "".join(
        "".join(f"%{byte:02X}" for byte in ch.encode()) if ch == "%" or _is_control(ch) else ch
        for ch in key
    )


object_name = _object_name
"""The S3 object name of a key, for the other adapters on the same bucket."""


def key_of_object(name: str) -> str:
    """The key stored under an S3 object name (as S3 event notifications name objects)."""
    return urllib.parse.unquote(name, errors="strict")


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cs")


def _error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


class _ChunksFailed(Exception):
    """Stands in, inside s3transfer, for whatever the caller's chunks raised."""


class _HashingReader:
    """A read-only file over an iterator of chunks, counting and hashing the bytes it hands out.
    What the chunks raise is kept in ``error`` and reaches s3transfer as ``_ChunksFailed``."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = bytearray()
        self._exhausted = False
        self.size = 0
        self.digest = hashlib.sha256()
        self.error: BaseException | None = None

    def read(self, size: int = -1) -> bytes:
        # Always a full read until the end: s3transfer takes a short read for the end of the
        # stream (it would then send the rest as one PUT, or a part below S3's 5 MiB minimum).
        while not self._exhausted and (size < 0 or len(self._buffer) < size):
            try:
                chunk = next(self._chunks, None)
            except BaseException as exc:
                self.error = exc
                raise _ChunksFailed(repr(exc)) from exc
            if chunk is None:
                self._exhausted = True
            else:
                self.digest.update(chunk)
                self.size += len(chunk)
                self._buffer += chunk
        taken = len(self._buffer) if size < 0 else min(size, len(self._buffer))
        data = bytes(self._buffer[:taken])
        del self._buffer[:taken]
        return data


class _BodyChunks(Iterator[bytes]):
    """The chunks of an object's body; closes the body when exhausted, failed or closed, even if
    iteration never started, so the connection goes back to the pool."""

    def __init__(self, body: StreamingBody) -> None:
        self._body = body
        self._chunks = body.iter_chunks(_READ_CHUNK)

    def __next__(self) -> bytes:
        try:
            return next(self._chunks)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._chunks = iter(())
        self._body.close()


class _S3BlobWriter:
    """Pieces gathered into parts of ``_PART_BYTES``: bytes that end within the first part are
    one PUT at the commit, more are a multipart upload that the commit completes. S3 shows the
    object only once either is done; an abort that cannot reach S3 leaves an incomplete multipart
    upload, which is invisible and which the bucket's lifecycle rule removes after a day."""

    def __init__(self, client: S3Client, bucket: str, name: str) -> None:
        self._client = client
        self._bucket = bucket
        self._name = name
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[CompletedPartTypeDef] = []
        self._digest = hashlib.sha256()
        self._size = 0
        self._open = True

    def write(self, data: bytes) -> None:
        if not self._open:
            raise ValueError("this blob writer is closed")
        try:
            self._buffer += data
            while len(self._buffer) >= _PART_BYTES:
                self._send_part(bytes(self._buffer[:_PART_BYTES]))
                del self._buffer[:_PART_BYTES]
        except BaseException:
            self.abort()
            raise
        self._digest.update(data)
        self._size += len(data)

    def commit(self) -> StoredBlob:
        if not self._open:
            raise ValueError("this blob writer is closed")
        try:
            if self._upload_id is None:
                self._client.put_object(
                    Bucket=self._bucket,
                    Key=self._name,
                    Body=bytes(self._buffer),
                    ServerSideEncryption="AES256",
                )
            else:
                if self._buffer:
                    self._send_part(bytes(self._buffer))
                self._client.complete_multipart_upload(
                    Bucket=self._bucket,
                    Key=self._name,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                )
        except BaseException:
            self.abort()
            raise
        self._open = False
        self._buffer = bytearray()
        return StoredBlob(size=self._size, sha256=self._digest.hexdigest())

    def abort(self) -> None:
        if not self._open:
            return
        self._open = False
        self._buffer = bytearray()
        if self._upload_id is not None:
            with contextlib.suppress(BotoCoreError, ClientError):
                self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=self._name, UploadId=self._upload_id
                )

    def _send_part(self, data: bytes) -> None:
        if self._upload_id is None:
            created = self._client.create_multipart_upload(
                Bucket=self._bucket, Key=self._name, ServerSideEncryption="AES256"
            )
            self._upload_id = created["UploadId"]
        number = len(self._parts) + 1
        sent = self._client.upload_part(
            Bucket=self._bucket,
            Key=self._name,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=data,
        )
        self._parts.append({"ETag": sent["ETag"], "PartNumber": number})


class ObjectLinks(Protocol):
    """Hands out links to the bucket's objects in S3's presigned URLs' stead (a CDN in front of
    the bucket: adapters.cloudfront), answered with the Content-Type and Content-Disposition
    asked for, or with the object's own where none is."""

    def url(
        self,
        object_name: str,
        ttl: timedelta,
        *,
        content_type: str | None = None,
        content_disposition: str | None = None,
    ) -> str: ...


class S3BlobStore:
    """The ``BlobStore`` port on an S3 bucket (``IMAGECORE_BUCKET``); with ``links``, downloads
    get links of theirs (a CDN's) rather than S3 presigned URLs."""

    def __init__(self, client: S3Client, bucket: str, links: ObjectLinks | None = None) -> None:
        try:
            client.head_bucket(Bucket=bucket)
        except ClientError as exc:
            raise MissingResource(
                f"the S3 bucket {bucket!r} does not exist or is not reachable "
                f"({_error_code(exc)}): check its name, the region and the credentials"
            ) from exc
        except BotoCoreError as exc:
            raise MissingResource(
                f"the S3 bucket {bucket!r} is not reachable ({type(exc).__name__}: {exc})"
            ) from exc
        self._client = client
        self._bucket = bucket
        self._links = links

    def put(self, key: str, chunks: Iterable[bytes], content_type: str | None = None) -> StoredBlob:
        reader = _HashingReader(chunks)
        served = {} if content_type is None else {"ContentType": content_type, **_IMMUTABLE}
        # s3transfer reads the stream on its own thread and, when a read fails, hands the error
        # to the part uploads under way (their bodies raise it). Those tasks catch only Exception:
        # a BaseException (a cancelled request, Ctrl-C) escapes them, the transfer is never marked
        # done, and upload_fileobj waits forever with the multipart upload left open. So s3transfer
        # only ever sees an ordinary _ChunksFailed, fails and aborts cleanly, and the caller gets
        # its own error back.
        try:
            self._client.upload_fileobj(
                cast(IO[bytes], reader),  # s3transfer needs only read()
                self._bucket,
                _object_name(key),
                ExtraArgs={**_ENCRYPTED, **served},
                Config=_TRANSFER,
            )
        except Exception:
            if reader.error is None:
                raise
        if reader.error is not None:
            raise reader.error  # outside the except block, so it is not chained to _ChunksFailed
        return StoredBlob(size=reader.size, sha256=reader.digest.hexdigest())

    def writer(self, key: str) -> _S3BlobWriter:
        return _S3BlobWriter(self._client, self._bucket, _object_name(key))

    def open(self, key: str, byte_range: ByteRange | None = None) -> Iterator[bytes]:
        try:
            if byte_range is None:
                response = self._client.get_object(Bucket=self._bucket, Key=_object_name(key))
            else:
                response = self._client.get_object(
                    Bucket=self._bucket,
                    Key=_object_name(key),
                    Range=f"bytes={byte_range.start}-{byte_range.end}",
                )
        except ClientError as exc:
            if _error_code(exc) in _MISSING:
                raise KeyError(key) from None
            raise
        return _BodyChunks(response["Body"])

    def delete(self, key: str) -> None:
        # Derivatives first: if this fails half-way the original is still there, and deleting it
        # again finds every derivative left, where the other order would strand them unseen.
        name = _object_name(key)
        derivatives = self._names(prefix=name + "/")
        for start in range(0, len(derivatives), _DELETE_BATCH):
            batch = derivatives[start : start + _DELETE_BATCH]
            response = self._client.delete_objects(
                Bucket=self._bucket,
                Delete={"Objects": [{"Key": derivative} for derivative in batch], "Quiet": True},
            )
            # DeleteObjects answers 200 and lists the keys it could not delete.
            if errors := response.get("Errors"):
                first = errors[0]
                raise RuntimeError(
                    f"S3 did not delete {len(errors)} derivatives of {key!r} in bucket "
                    f"{self._bucket!r}, {first.get('Key')!r} for one: "
                    f"{first.get('Code')} {first.get('Message')}"
                )
        # The original last, so that what is left after a failure is always found again.
        self._client.delete_object(Bucket=self._bucket, Key=name)

    def presigned_get(
        self,
        key: str,
        ttl: timedelta,
        filename: str,
        content_type: str,
        *,
        as_stored: bool = False,
    ) -> str | None:
        """A link to the bytes: the CDN's with ``links``, else an S3 presigned URL. Either has S3
        answer with ``content_type`` and an attachment named ``filename`` (an original is stored
        with neither); but with ``as_stored`` (a rendition, stored with its type) a CDN link
        asks for nothing, so that it is one URL, and one cache entry, whatever the name."""
        name = _object_name(key)
        if self._links is not None:
            if as_stored:
                return self._links.url(name, ttl)
            return self._links.url(
                name,
                ttl,
                content_type=content_type,
                content_disposition=attachment_disposition(filename),
            )
        return self._client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self._bucket,
                "Key": name,
                "ResponseContentType": content_type,
                "ResponseContentDisposition": attachment_disposition(filename),
            },
            ExpiresIn=int(ttl.total_seconds()),
        )

    def local_path(self, key: str) -> str | None:
        return None

    def copy(self, source: str, target: str) -> None:
        """The BlobCopier port: S3 copies the object itself (one CopyObject up to 5 GiB, parts
        copied by UploadPartCopy above), encrypted as every object is; the bytes never leave
        S3. KeyError if there is no object under ``source``."""
        try:
            self._client.copy(
                CopySource={"Bucket": self._bucket, "Key": _object_name(source)},
                Bucket=self._bucket,
                Key=_object_name(target),
                ExtraArgs=_COPIED,
                Config=_COPY,
            )
        except ClientError as exc:
            if _error_code(exc) in _MISSING:
                raise KeyError(source) from None
            raise

    def stored_before(self, moment: datetime) -> Iterator[str]:
        pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=self._bucket)
        for page in pages:
            for item in page.get("Contents", []):
                if item["LastModified"] < moment:
                    yield key_of_object(item["Key"])

    def keys(self) -> list[str]:
        """Every stored key, sorted; for reconciliation, which looks for orphaned blobs."""
        return sorted(key_of_object(name) for name in self._names(prefix=""))

    def _names(self, prefix: str) -> list[str]:
        # botocore asks for URL-encoded keys and decodes them, so keys XML cannot carry list too.
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self._bucket, Prefix=prefix
        )
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


class S3PresignedPosts:
    """The ``UploadTargets`` port on S3: a presigned POST, whose policy S3 enforces on arrival.

    The policy allows exactly one key, 1 to ``max_bytes`` bytes (``content-length-range``), a
    ``Content-Type`` that starts with ``image/``, server-side encryption, and expires when the
    slot does. Every object that lands is still validated by the worker like any upload.
    """

    def __init__(self, client: S3Client, bucket: str, clock: Callable[[], datetime]) -> None:
        self._client = client
        self._bucket = bucket
        self._clock = clock

    def target(self, key: str, max_bytes: int, expires_at: datetime) -> UploadTarget:
        seconds = max(1, int((expires_at - self._clock()).total_seconds()))
        posted = self._client.generate_presigned_post(
            Bucket=self._bucket,
            Key=_object_name(key),
            Fields=dict(_ENCRYPTED_FIELD),
            Conditions=upload_policy_conditions(max_bytes),
            ExpiresIn=seconds,
        )
        return UploadTarget(url=posted["url"], fields=posted["fields"])


_ENCRYPTED_FIELD = {"x-amz-server-side-encryption": "AES256"}


def upload_policy_conditions(max_bytes: int) -> list[Any]:
    """The conditions of a direct upload's POST policy, beside the bucket and key boto3 adds."""
    return [
        ["content-length-range", 1, max_bytes],
        ["starts-with", "$Content-Type", "image/"],
        dict(_ENCRYPTED_FIELD),
    ]
