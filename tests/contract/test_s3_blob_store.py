"""What the S3 blob store promises beyond the BlobStore contract, on moto in-process."""

from __future__ import annotations

import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from botocore.stub import Stubber

from adapters.aws import MissingResource
from adapters.s3 import S3BlobStore
from imagecore.disposition import attachment_disposition
from imagecore.model import ByteRange
from tests.support.blob_bytes import (
    MIB,
    Interrupted,
    chunked,
    failing_after,
    has_blob,
    pattern,
    read,
)
from tests.support.fake_aws import in_process_aws

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BUCKET = "imagecore-test-blobs"
KEY = "images/alice/01JD0000000000000000000001"


@pytest.fixture
def s3() -> Iterator[S3Client]:
    """A client of a fresh moto S3 holding one empty bucket."""
    with in_process_aws() as clients:
        clients.s3.create_bucket(Bucket=BUCKET)
        yield clients.s3


@pytest.fixture
def store(s3: S3Client) -> S3BlobStore:
    return S3BlobStore(s3, BUCKET)


@pytest.fixture
def calls(s3: S3Client) -> list[str]:
    """The names of the S3 operations the client calls from here on."""
    names: list[str] = []

    def record(model: Any, **kwargs: Any) -> None:
        names.append(model.name)

    s3.meta.events.register("before-call.s3", record)
    return names


def open_multipart_uploads(s3: S3Client) -> list[Any]:
    return list(s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []))


# Writing


@pytest.mark.parametrize("size", [100_000, 9 * MIB], ids=["single-put", "multipart"])
def test_every_object_is_stored_encrypted_with_aes256(
    store: S3BlobStore, s3: S3Client, size: int
) -> None:
    store.put(KEY, chunked(pattern(size), 65_536))

    assert s3.head_object(Bucket=BUCKET, Key=KEY)["ServerSideEncryption"] == "AES256"


def test_a_put_above_8_mib_is_sent_in_8_mib_parts_and_round_trips_exactly(
    store: S3BlobStore, s3: S3Client, calls: list[str]
) -> None:
    data = pattern(20 * MIB + 3)

    stored = store.put(KEY, chunked(data, 65_537))

    assert calls.count("UploadPart") == 3
    assert s3.head_object(Bucket=BUCKET, Key=KEY)["ETag"].strip('"').endswith("-3")
    assert stored.size == len(data)
    assert read(store, KEY) == data
    assert read(store, KEY, ByteRange(8 * MIB - 1, 16 * MIB)) == data[8 * MIB - 1 : 16 * MIB + 1]
    assert open_multipart_uploads(s3) == []


def failing_while_a_part_is_sent(
    s3: S3Client, data: bytes, error: BaseException
) -> Iterator[bytes]:
    """``data`` in chunks, then ``error`` while S3 is being sent a part: the moment s3transfer
    hands the error on to the part uploads under way."""
    sending = threading.Event()
    failed = threading.Event()

    def hold_the_part(**kwargs: Any) -> None:
        sending.set()
        failed.wait(10)
        time.sleep(0.05)  # for s3transfer to record the failure before the part's body is read

    s3.meta.events.register("before-call.s3.UploadPart", hold_the_part)
    yield from chunked(data, 65_536)
    sending.wait(10)
    failed.set()
    raise error


def raised_by(action: Callable[[], object], seconds: float = 30) -> BaseException | None:
    """What ``action`` raised, failing the test rather than hanging it if it never returns."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            action()
        except BaseException as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"still waiting after {seconds} seconds: the put hangs"
    return outcome[0]


@pytest.mark.parametrize(
    "error", [OSError("client went away"), Interrupted()], ids=["exception", "base-exception"]
)
@pytest.mark.parametrize("multipart", [False, True], ids=["within-one-put", "during-multipart"])
def test_failing_chunks_raise_their_own_error_and_leave_no_object_nor_multipart_upload(
    store: S3BlobStore, s3: S3Client, calls: list[str], error: BaseException, multipart: bool
) -> None:
    original = pattern(50_000, seed=1)
    store.put(KEY, [original])

    def failing() -> Iterator[bytes]:
        if multipart:
            return failing_while_a_part_is_sent(s3, pattern(20 * MIB, seed=2), error)
        return failing_after(pattern(10_000, seed=2), error)

    assert raised_by(lambda: store.put(KEY, failing())) is error
    assert raised_by(lambda: store.put(KEY + "-new", failing())) is error

    assert read(store, KEY) == original
    assert store.keys() == [KEY]
    assert open_multipart_uploads(s3) == []
    assert "CompleteMultipartUpload" not in calls
    if multipart:  # begun, under way, and aborted
        assert calls.count("CreateMultipartUpload") == calls.count("AbortMultipartUpload") == 2
        assert "UploadPart" in calls


# Reading


def test_a_download_gives_its_connection_back_when_closed_or_read_to_the_end(
    store: S3BlobStore, s3: S3Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put(KEY, [pattern(MIB)])
    closed: list[str] = []
    get_object = s3.get_object

    def spying_get_object(**kwargs: Any) -> Any:
        response = get_object(**kwargs)
        close = response["Body"].close

        def counted_close() -> None:
            closed.append(kwargs.get("Range", "all"))
            close()

        monkeypatch.setattr(response["Body"], "close", counted_close)
        return response

    monkeypatch.setattr(s3, "get_object", spying_get_object)

    store.open(KEY).close()  # type: ignore[attr-defined]
    assert closed == ["all"]
    partly_read = store.open(KEY, ByteRange(10, MIB - 10))
    next(partly_read)
    partly_read.close()  # type: ignore[attr-defined]
    assert closed == ["all", f"bytes=10-{MIB - 10}"]
    assert len(b"".join(store.open(KEY))) == MIB
    assert closed == ["all", f"bytes=10-{MIB - 10}", "all"]


# Deleting


def test_delete_removes_the_derivatives_under_the_key_but_not_keys_that_merely_start_alike(
    store: S3BlobStore,
) -> None:
    derivatives = [f"{KEY}/thumbnail.jpg", f"{KEY}/sizes/200.webp"]
    siblings = [f"{KEY}0", f"{KEY}-other", f"{KEY}.jpg", "images/alice/other/thumbnail.jpg"]
    for key in [KEY, *derivatives, *siblings]:
        store.put(key, [key.encode()])

    store.delete(KEY)

    assert store.keys() == sorted(siblings)
    store.delete(KEY)  # and again, with nothing left to delete
    assert store.keys() == sorted(siblings)


def test_delete_removes_more_derivatives_than_one_request_can_name(
    store: S3BlobStore, s3: S3Client, calls: list[str]
) -> None:
    store.put(KEY, [b"original"])
    for n in range(1001):
        s3.put_object(Bucket=BUCKET, Key=f"{KEY}/derived-{n:04d}", Body=b"d")
    calls.clear()

    store.delete(KEY)

    assert store.keys() == []
    assert calls.count("DeleteObjects") == 2


def test_a_delete_s3_partly_refuses_fails_and_keeps_the_original_for_a_retry(
    store: S3BlobStore, s3: S3Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put(KEY, [b"original"])
    store.put(f"{KEY}/thumbnail.jpg", [b"thumbnail"])
    refusal = {"Key": f"{KEY}/thumbnail.jpg", "Code": "AccessDenied", "Message": "Access Denied"}
    monkeypatch.setattr(s3, "delete_objects", lambda **kwargs: {"Errors": [refusal]})

    with pytest.raises(RuntimeError, match=r"thumbnail\.jpg.*AccessDenied"):
        store.delete(KEY)

    assert has_blob(store, KEY)


# The bucket and the links


def test_a_missing_bucket_is_reported_by_name_when_the_store_is_made(s3: S3Client) -> None:
    with pytest.raises(MissingResource, match=r"'no-such-bucket' does not exist.*\(404\)"):
        S3BlobStore(s3, "no-such-bucket")


def test_a_forbidden_bucket_is_reported_by_name_when_the_store_is_made(s3: S3Client) -> None:
    with Stubber(s3) as stubber:
        stubber.add_client_error("head_bucket", "403", http_status_code=403)

        with pytest.raises(MissingResource, match=rf"'{BUCKET}' .*not reachable.*\(403\)"):
            S3BlobStore(s3, BUCKET)


def test_open_does_not_take_a_refusal_for_absence(store: S3BlobStore, s3: S3Client) -> None:
    with Stubber(s3) as stubber:
        stubber.add_client_error("get_object", "403", http_status_code=403)

        with pytest.raises(Exception, match="403") as refused:
            store.open(KEY)
        assert not isinstance(refused.value, KeyError)


def test_presigned_get_names_the_object_its_lifetime_and_the_download_headers(
    store: S3BlobStore,
) -> None:
    store.put(KEY, [b"bytes"])
    filename = 'Été "2026"; final.jpg'

    url = store.presigned_get(KEY, timedelta(minutes=15), filename, "image/jpeg")

    assert url is not None
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qs(parts.query)
    assert BUCKET in parts.netloc or parts.path.startswith(f"/{BUCKET}/")
    assert urllib.parse.unquote(parts.path).endswith(f"/{KEY}")
    # SigV4, the only signature a bucket made after June 2020 accepts, states the lifetime itself
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["900"]
    assert query["response-content-type"] == ["image/jpeg"]
    assert query["response-content-disposition"] == [attachment_disposition(filename)]


def test_service_keys_are_object_names_as_they_are_and_odd_keys_are_escaped(
    store: S3BlobStore, s3: S3Client
) -> None:
    ordinary = "images/alice@example.org/01JD0000000000000000000001"
    odd = "50%\nof\x00it"
    store.put(ordinary, [b"a"])
    store.put(odd, [b"b"])

    names = sorted(item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET)["Contents"])

    assert names == ["50%25%0Aof%00it", ordinary]
    assert store.keys() == sorted([ordinary, odd])
    assert b"".join(store.open(odd)) == b"b"


def test_a_copy_is_made_by_s3_encrypted_and_byte_for_byte(store: S3BlobStore, s3: S3Client) -> None:
    data = pattern(9 * MIB + 5)
    store.put("uploads/alice/01JD0000000000000000000002", chunked(data, 65_536))

    store.copy("uploads/alice/01JD0000000000000000000002", KEY)

    assert read(store, KEY) == data
    assert s3.head_object(Bucket=BUCKET, Key=KEY)["ServerSideEncryption"] == "AES256"
    with pytest.raises(KeyError):
        store.copy("uploads/alice/01JD0000000000000000000003", KEY)


def test_bytes_put_with_their_type_are_served_as_that_type_and_as_never_changing(
    store: S3BlobStore, s3: S3Client
) -> None:
    """What the renditions job writes is served by S3 and the CDN itself: the object must say
    what it is (a browser with nosniff would not show it otherwise) and that it never changes."""
    store.put(KEY, [b"RIFF....WEBP"], "image/webp")
    store.put(KEY + "-untyped", [b"bytes"])

    typed = s3.head_object(Bucket=BUCKET, Key=KEY)
    untyped = s3.head_object(Bucket=BUCKET, Key=KEY + "-untyped")

    assert (typed["ContentType"], typed["CacheControl"]) == (
        "image/webp",
        "public, max-age=31536000, immutable",
    )
    assert "CacheControl" not in untyped
