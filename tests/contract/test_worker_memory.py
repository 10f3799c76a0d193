"""The worker makes an image of a file of any size (an upload session's, up to 5 GiB) in the
same memory: it reads the object as a stream and writes the original through the S3 blob
writer, which sends it on in 8 MiB parts. Here the object is made on the fly and the parts go to
a client that keeps only their sizes, so what is measured is the service's own holding."""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import Iterator
from typing import Any

from adapters.memory import MemoryBlobStore, MemoryImageRepository, MemoryMultipartUploads
from adapters.s3 import S3BlobStore
from imagecore.blob_keys import upload_key
from imagecore.commands import NewMultipartUpload
from imagecore.upload_sessions import UploadSession
from tests.support.big_images import uniform_png
from tests.support.doubles import FakeClock, make_service

MiB = 1024 * 1024
CHUNK = 256 * 1024
HEAD = uniform_png(300, 200)


def object_bytes(size: int) -> Iterator[bytes]:
    """A PNG's header, then zeros to ``size`` bytes, made as they are read."""
    yield HEAD
    left = size - len(HEAD)
    zeros = bytes(CHUNK)
    while left > 0:
        yield zeros[: min(CHUNK, left)]
        left -= CHUNK


def expected_sha256(size: int) -> str:
    digest = hashlib.sha256()
    for chunk in object_bytes(size):
        digest.update(chunk)
    return digest.hexdigest()


class PartSink:
    """An S3 client that takes multipart uploads and keeps only the size of each part."""

    def __init__(self) -> None:
        self.part_sizes: list[int] = []

    def create_multipart_upload(self, **kwargs: Any) -> dict[str, str]:
        return {"UploadId": "upload"}

    def upload_part(self, Body: bytes, **kwargs: Any) -> dict[str, str]:
        self.part_sizes.append(len(Body))
        return {"ETag": f'"{len(self.part_sizes)}"'}

    def complete_multipart_upload(self, **kwargs: Any) -> dict[str, str]:
        return {}

    def abort_multipart_upload(self, **kwargs: Any) -> dict[str, str]:
        return {}

    def put_object(self, **kwargs: Any) -> dict[str, str]:
        return {}


class StreamedObjects(MemoryBlobStore):
    """Blobs in memory, but for one big object made on the fly as it is read, and originals
    written through the S3 blob writer into a PartSink."""

    def __init__(self, key: str, size: int) -> None:
        super().__init__()
        self.big_key, self.big_size = key, size
        self.sink = PartSink()
        self.s3 = S3BlobStore.__new__(S3BlobStore)  # no bucket to check: the sink is the client
        self.s3._client, self.s3._bucket = self.sink, "bucket"  # type: ignore[assignment]

    def open(self, key: str, byte_range: Any = None) -> Iterator[bytes]:
        if key == self.big_key:
            return object_bytes(self.big_size)
        return super().open(key, byte_range)

    def writer(self, key: str) -> Any:
        if key.startswith("images/"):
            return self.s3.writer(key)
        return super().writer(key)

    def delete(self, key: str) -> None:
        if key == self.big_key:
            self.big_key = ""
        super().delete(key)


def completed_upload_peak(size: int) -> tuple[int, str, list[int]]:
    """The worker's completion of an upload session's file of ``size`` bytes: the most memory
    it held, the image's SHA-256 and the sizes of the parts it sent on."""
    clock = FakeClock()
    blobs = StreamedObjects("", size)
    service = make_service(
        clock,
        repository=MemoryImageRepository(),
        blobs=blobs,
        multipart=MemoryMultipartUploads(blobs, clock.now),
    )
    session = service.open_multipart("alice", NewMultipartUpload(size=size))
    assert isinstance(session, UploadSession)
    blobs.big_key = upload_key("alice", session.upload_id)
    tracemalloc.start()
    try:
        image = service.complete_upload(blobs.big_key)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert image is not None
    return peak, image.sha256, blobs.sink.part_sizes


def test_the_worker_holds_the_same_memory_for_a_file_eight_times_bigger() -> None:
    small_peak, small_sha256, small_parts = completed_upload_peak(32 * MiB)
    big_peak, big_sha256, big_parts = completed_upload_peak(256 * MiB)

    assert (small_sha256, big_sha256) == (expected_sha256(32 * MiB), expected_sha256(256 * MiB))
    assert small_parts == [8 * MiB] * 4
    assert big_parts == [8 * MiB] * 32
    # A few parts' worth (the one gathering, copies of the one being sent), whatever the size.
    assert big_peak < 4 * 8 * MiB, big_peak
    assert big_peak < small_peak + 2 * MiB, (small_peak, big_peak)
