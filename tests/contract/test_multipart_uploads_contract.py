"""The MultipartUploads contract: the same cases on the memory fake and on S3 (moto server, as a
client's PUT to a presigned URL must reach a real endpoint). What a client does with a part
target (an HTTP PUT for S3, the fake's ``send_part``) is the ``Sender`` of each."""

from __future__ import annotations

import base64
import hashlib
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import attrs
import httpx
import pytest

from adapters.memory import MemoryBlobStore, MemoryMultipartUploads, PartRefused
from adapters.s3 import S3BlobStore
from adapters.s3_multipart import S3MultipartUploads
from imagecore.errors import NotFound
from imagecore.model import PartTarget, ReceivedPart
from imagecore.ports import BlobStore, MultipartUploads
from tests.support.fake_aws import aws_clients, fresh_resources

MiB = 1024 * 1024
KEY = "uploads/alice/01JD0000000000000000000001"


class Refused(Exception):
    """The store refused a part."""


Sender = Callable[[PartTarget, bytes], str]
"""PUTs a part to its target; the part's entity tag, or Refused."""


@attrs.frozen
class Subject:
    name: str
    uploads: MultipartUploads
    blobs: BlobStore
    send: Sender


def _memory_send(fake: MemoryMultipartUploads) -> Sender:
    def send(target: PartTarget, data: bytes) -> str:
        try:
            return fake.send_part(target.url, data, target.headers)
        except PartRefused as refusal:
            raise Refused(str(refusal)) from None

    return send


def _http_send(target: PartTarget, data: bytes) -> str:
    response = httpx.put(target.url, content=data, headers=dict(target.headers), timeout=30)
    if response.status_code != 200:
        raise Refused(response.text)
    return response.headers["ETag"]


@pytest.fixture(params=["memory", "s3-moto-server"])
def subject(request: pytest.FixtureRequest) -> Iterator[Subject]:
    if request.param == "memory":
        blobs = MemoryBlobStore()
        fake = MemoryMultipartUploads(blobs)
        yield Subject("memory", fake, blobs, _memory_send(fake))
        return
    with aws_clients("server") as clients, fresh_resources(clients) as (_, bucket):
        uploads = S3MultipartUploads(clients.s3, bucket, lambda: datetime.now(UTC), page_size=2)
        yield Subject(request.param, uploads, S3BlobStore(clients.s3, bucket), _http_send)


def b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def soon() -> datetime:
    return datetime.now(UTC) + timedelta(minutes=5)


def put_part(subject: Subject, handle: str, number: int, data: bytes) -> str:
    target = subject.uploads.part_url(KEY, handle, number, len(data), b64_sha256(data), soon())
    return subject.send(target, data)


def test_parts_sent_to_their_urls_are_listed_and_complete_into_the_file(subject: Subject) -> None:
    first, last = b"a" * (5 * MiB), b"the end"
    handle = subject.uploads.start(KEY)
    etag = put_part(subject, handle, 1, first)
    put_part(subject, handle, 2, last)

    parts = subject.uploads.parts(KEY, handle)

    assert [(part.number, part.size) for part in parts] == [(1, len(first)), (2, len(last))]
    assert parts[0].etag == etag
    with pytest.raises(KeyError):
        subject.blobs.open(KEY)  # nothing under the key until it is complete
    subject.uploads.complete(KEY, handle, parts)
    assert b"".join(subject.blobs.open(KEY)) == first + last
    with pytest.raises(NotFound):
        subject.uploads.parts(KEY, handle)


def test_every_part_is_listed_however_many_pages_it_takes(subject: Subject) -> None:
    handle = subject.uploads.start(KEY)
    for number in (5, 1, 3, 2, 4):
        put_part(subject, handle, number, bytes([number]) * 10)

    assert [part.number for part in subject.uploads.parts(KEY, handle)] == [1, 2, 3, 4, 5]


def test_a_part_sent_again_is_held_once_as_sent_last(subject: Subject) -> None:
    handle = subject.uploads.start(KEY)
    put_part(subject, handle, 1, b"first try")
    again = put_part(subject, handle, 1, b"second try, longer")

    (part,) = subject.uploads.parts(KEY, handle)

    assert (part.number, part.size, part.etag) == (1, len(b"second try, longer"), again)


def test_an_aborted_upload_is_gone_and_aborting_again_is_harmless(subject: Subject) -> None:
    handle = subject.uploads.start(KEY)
    put_part(subject, handle, 1, b"x" * 100)

    subject.uploads.abort(KEY, handle)

    with pytest.raises(NotFound):
        subject.uploads.parts(KEY, handle)
    subject.uploads.abort(KEY, handle)
    with pytest.raises(Refused):
        put_part(subject, handle, 2, b"late")


def test_an_upload_never_started_is_not_found(subject: Subject) -> None:
    other = subject.uploads.start(KEY)
    subject.uploads.abort(KEY, other)
    with pytest.raises(NotFound):
        subject.uploads.parts(KEY, other)
    subject.uploads.abort(KEY, "no-such-upload")


def test_completing_an_upload_that_is_not_there_is_not_found(subject: Subject) -> None:
    if subject.name == "s3-moto-server":
        pytest.skip("moto server answers 500 (a KeyError of its own) where S3 says NoSuchUpload")
    handle = subject.uploads.start(KEY)
    subject.uploads.abort(KEY, handle)
    with pytest.raises(NotFound):
        subject.uploads.complete(KEY, handle, [ReceivedPart(1, 1, '"0"')])


def test_a_part_url_carries_its_checksum_header(subject: Subject) -> None:
    handle = subject.uploads.start(KEY)
    data = b"part"
    target = subject.uploads.part_url(KEY, handle, 1, len(data), b64_sha256(data), soon())
    assert {name.lower(): value for name, value in target.headers.items()} == {
        "x-amz-checksum-sha256": b64_sha256(data)
    }


def test_s3_part_urls_sign_the_checksum_and_size_so_s3_verifies_the_part() -> None:
    """moto server verifies neither signatures nor part checksums (a part with another checksum
    is taken): what can be proven here is that S3 is asked to, by the signed headers."""
    with aws_clients("server") as clients, fresh_resources(clients) as (_, bucket):
        uploads = S3MultipartUploads(clients.s3, bucket, lambda: datetime.now(UTC))
        handle = uploads.start(KEY)
        target = uploads.part_url(KEY, handle, 7, 1234, b64_sha256(b"x"), soon())
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(target.url).query)
        assert query["partNumber"] == ["7"]
        assert query["uploadId"] == [handle]
        signed = query["X-Amz-SignedHeaders"][0].split(";")
        assert {"x-amz-checksum-sha256", "content-length"} <= set(signed)
        assert 290 <= int(query["X-Amz-Expires"][0]) <= 300
        uploads.abort(KEY, handle)


def test_the_memory_fake_refuses_what_s3_refuses() -> None:
    fake = MemoryMultipartUploads(MemoryBlobStore())
    handle = fake.start(KEY)
    data = b"x" * 10
    target = fake.part_url(KEY, handle, 1, len(data), b64_sha256(data), soon())
    for body, headers in (
        (b"y" * 10, target.headers),  # other bytes
        (data + b"!", target.headers),  # another size
        (data, {}),  # no checksum header
        (data, {"x-amz-checksum-sha256": b64_sha256(b"y")}),  # another checksum
    ):
        with pytest.raises(PartRefused):
            fake.send_part(target.url, body, headers)
    expired = fake.part_url(
        KEY, handle, 1, len(data), b64_sha256(data), datetime.now(UTC) - timedelta(seconds=1)
    )
    with pytest.raises(PartRefused):
        fake.send_part(expired.url, data, expired.headers)
    assert fake.parts(KEY, handle) == []
