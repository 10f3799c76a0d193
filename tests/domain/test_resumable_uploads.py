"""Resumable uploads (imagecore/resumable.py): a session takes a file's bytes over as many
requests as it needs, keeps them across restarts, and becomes the image once they are whole,
after exactly the checks of any upload."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from adapters.memory import MemoryBlobStore, MemoryImageRepository, MemoryPartialBlobs
from imagecore.blob_keys import upload_key
from imagecore.commands import NewResumableUpload, UploadCommand
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
from imagecore.lifecycle import ORPHAN_GRACE
from imagecore.model import THUMBNAIL_JOB, ImageState, Job
from imagecore.query import ListQuery, build_list_query
from imagecore.resumable import Checksum
from imagecore.service import ImageService
from imagecore.upload_sessions import UploadSession
from imagecore.uploads import HEAD_BYTES
from tests.support.big_images import padded_png
from tests.support.doubles import FakeClock, RecordingJobs, make_service
from tests.support.sample_images import image_bytes

MiB = 1024 * 1024
FILE = padded_png(3 * MiB)


@pytest.fixture
def partials() -> MemoryPartialBlobs:
    return MemoryPartialBlobs()


@pytest.fixture
def jobs() -> RecordingJobs:
    return RecordingJobs()


@pytest.fixture
def service(
    clock: FakeClock,
    repository: MemoryImageRepository,
    blobs: MemoryBlobStore,
    partials: MemoryPartialBlobs,
    jobs: RecordingJobs,
) -> ImageService:
    return make_service(
        clock,
        repository=repository,
        blobs=blobs,
        partials=partials,
        jobs=jobs,
        max_resumable_upload_bytes=10 * MiB,
        session_ttl=timedelta(hours=24),
    )


def open_session(service: ImageService, size: int = len(FILE), **fields: object) -> UploadSession:
    return service.open_session("alice", NewResumableUpload(size=size, **fields))  # type: ignore[arg-type]


def send(
    service: ImageService,
    session: UploadSession,
    data: bytes,
    offset: int,
    checksum: Checksum | None = None,
    caller: str = "alice",
) -> UploadSession:
    appending = service.begin_append(caller, session.upload_id, offset, checksum)
    for start in range(0, len(data), 256 * 1024):
        appending.write(data[start : start + 256 * 1024])
    return appending.commit()


def test_the_bytes_sent_in_pieces_become_the_image_under_the_sessions_id(
    service: ImageService, jobs: RecordingJobs, partials: MemoryPartialBlobs
) -> None:
    session = open_session(service, filename="dawn.png", title="Dawn", tags=["sky"])
    assert (session.received, session.size, session.image) == (0, len(FILE), None)

    middle = send(service, session, FILE[:MiB], 0)
    assert (middle.received, middle.image) == (MiB, None)
    assert service.upload_session("alice", session.upload_id).received == MiB
    done = send(service, session, FILE[MiB:], MiB)

    assert done.image is not None
    image = service.get("alice", session.upload_id)
    assert image == done.image
    assert (image.filename, image.title, image.tags) == ("dawn.png", "Dawn", ("sky",))
    assert (image.size, image.sha256) == (len(FILE), hashlib.sha256(FILE).hexdigest())
    assert b"".join(service.download("alice", image.image_id).open()) == FILE
    assert jobs.jobs == [Job(THUMBNAIL_JOB, image.image_id, user_id="alice")]
    assert partials.size(upload_key("alice", session.upload_id)) is None  # the bytes moved
    # Asked again (a client that lost the last answer), the session names its image.
    assert service.upload_session("alice", session.upload_id).image == image


def test_the_fields_and_size_are_checked_before_any_byte(service: ImageService) -> None:
    with pytest.raises(InvalidInput, match="title"):
        open_session(service, title="x" * 10_000)
    with pytest.raises(InvalidInput, match="size"):
        open_session(service, size=0)
    with pytest.raises(InvalidInput, match="size"):
        service.open_session("alice", NewResumableUpload())
    with pytest.raises(PayloadTooLarge):
        open_session(service, size=10 * MiB + 1)
    with pytest.raises(UnsupportedMediaType):
        open_session(service, content_type="application/pdf")
    assert service.list_images("alice", _everything()).images == []


def test_a_file_that_is_no_image_is_refused_once_its_head_is_in(
    service: ImageService, partials: MemoryPartialBlobs
) -> None:
    session = open_session(service, size=3 * MiB)
    send(service, session, b"%PDF" + bytes(HEAD_BYTES // 2), 0)  # the head is not in yet
    with pytest.raises(UnsupportedMediaType):
        send(service, session, bytes(HEAD_BYTES), HEAD_BYTES // 2 + 4)
    with pytest.raises(Gone):
        service.upload_session("alice", session.upload_id)
    assert partials.size(upload_key("alice", session.upload_id)) is None


def test_a_small_file_whole_in_one_piece(service: ImageService) -> None:
    small = image_bytes()
    session = open_session(service, size=len(small))
    assert send(service, session, small, 0).image is not None


def test_a_piece_at_the_wrong_offset_or_past_the_end_changes_nothing(
    service: ImageService,
) -> None:
    session = open_session(service)
    send(service, session, FILE[:100], 0)
    with pytest.raises(Conflict, match="100"):
        send(service, session, FILE[:100], 0)
    with pytest.raises(PayloadTooLarge):
        send(service, session, FILE[100:] + b"more", 100)
    assert service.upload_session("alice", session.upload_id).received == 100


def test_a_piece_whose_checksum_differs_is_not_kept(service: ImageService) -> None:
    session = open_session(service)
    piece = FILE[:MiB]
    wrong = Checksum("sha256", hashlib.sha256(b"another piece").digest())
    with pytest.raises(ChecksumMismatch):
        send(service, session, piece, 0, wrong)
    assert service.upload_session("alice", session.upload_id).received == 0
    right = Checksum("sha1", hashlib.sha1(piece).digest())
    assert send(service, session, piece, 0, right).received == MiB
    with pytest.raises(InvalidInput, match="crc32"):
        service.begin_append("alice", session.upload_id, MiB, Checksum("crc32", b"1234"))


def test_only_one_request_appends_at_a_time(service: ImageService) -> None:
    session = open_session(service)
    first = service.begin_append("alice", session.upload_id, 0)
    with pytest.raises(Locked):
        service.begin_append("alice", session.upload_id, 0)
    first.abort()
    assert send(service, session, FILE[:10], 0).received == 10


def test_another_users_session_is_not_found(service: ImageService) -> None:
    session = open_session(service)
    for attempt in (
        lambda: service.upload_session("bob", session.upload_id),
        lambda: service.begin_append("bob", session.upload_id, 0),
        lambda: service.cancel_session("bob", session.upload_id),
    ):
        with pytest.raises(NotFound):
            attempt()
    with pytest.raises(NotFound):
        service.upload_session("alice", "not-an-id")


def test_a_session_expires_and_reconcile_clears_it(
    service: ImageService, clock: FakeClock, partials: MemoryPartialBlobs
) -> None:
    session = open_session(service)
    send(service, session, FILE[:MiB], 0)
    clock.advance(timedelta(hours=24, seconds=1))
    with pytest.raises(Gone):
        send(service, session, FILE[MiB:], MiB)

    clock.advance(ORPHAN_GRACE)
    report = service.reconcile(grace=timedelta(0))
    assert report.deletes_finished == 1
    assert partials.size(upload_key("alice", session.upload_id)) is None
    with pytest.raises(Gone):
        service.upload_session("alice", session.upload_id)


def test_reconcile_keeps_open_sessions_and_removes_bytes_no_session_holds(
    service: ImageService, partials: MemoryPartialBlobs, clock: FakeClock
) -> None:
    clock.current = datetime.now(UTC)  # the memory store dates what it keeps by the real clock
    session = open_session(service)
    send(service, session, FILE[:MiB], 0)
    orphan = upload_key("alice", "01JZZZZZZZZZZZZZZZZZZZZZZZ")  # a crash between two writes
    partials.create(orphan)

    clock.advance(ORPHAN_GRACE + timedelta(minutes=1))
    report = service.reconcile()

    assert report.orphans_removed == 1
    assert partials.size(orphan) is None
    assert service.upload_session("alice", session.upload_id).received == MiB


def test_a_declared_sha256_binds_the_bytes(service: ImageService) -> None:
    session = open_session(service, sha256=hashlib.sha256(b"other bytes").hexdigest())
    with pytest.raises(InvalidInput, match="SHA-256"):
        send(service, session, FILE, 0)
    with pytest.raises(Gone):
        service.upload_session("alice", session.upload_id)


def test_bytes_the_caller_has_already_end_as_that_image(service: ImageService) -> None:
    first = service.store_upload(
        "alice", UploadCommand(chunks=[FILE], content_sha256=hashlib.sha256(FILE).hexdigest())
    )
    session = open_session(service, sha256=hashlib.sha256(FILE).hexdigest())
    done = send(service, session, FILE, 0)
    assert done.image == first.image
    assert len(service.list_images("alice", _everything()).images) == 1


def test_a_whole_session_that_did_not_become_an_image_becomes_it_when_asked(
    service: ImageService,
    partials: MemoryPartialBlobs,
    repository: MemoryImageRepository,
) -> None:
    """The process that took the last byte died before it made the image: the bytes are whole
    and durable, the slot still open; the client's next HEAD finishes it."""
    session = open_session(service)
    writer = partials.appender(upload_key("alice", session.upload_id), 0, len(FILE))
    writer.write(FILE)
    writer.commit()
    slot = repository.get(session.upload_id)
    assert slot is not None
    assert slot.state is ImageState.UPLOADING

    found = service.upload_session("alice", session.upload_id)

    assert found.image is not None
    assert found.image.image_id == session.upload_id
    assert found.received == len(FILE)


def test_cancel_ends_the_session_but_never_a_finished_upload(service: ImageService) -> None:
    session = open_session(service)
    service.cancel_session("alice", session.upload_id)
    with pytest.raises(Gone):
        service.begin_append("alice", session.upload_id, 0)
    done = open_session(service)
    send(service, done, FILE, 0)
    with pytest.raises(Conflict):
        service.cancel_session("alice", done.upload_id)
    assert service.get("alice", done.upload_id).image_id == done.upload_id


def test_a_sessions_slot_takes_no_one_shot_upload(service: ImageService) -> None:
    session = open_session(service)
    with pytest.raises(Conflict):
        service.begin_receive(session.upload_id)


def test_without_partial_bytes_the_service_says_where_to_go(clock: FakeClock) -> None:
    service = make_service(clock)
    with pytest.raises(InvalidInput, match="upload-sessions"):
        open_session(service)


def _everything() -> ListQuery:
    return build_list_query()
