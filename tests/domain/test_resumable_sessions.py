"""Upload sessions sent in parts straight to the blob store (S3 multipart uploads), on the memory
fakes: a session is opened with the file's size, the server picks the part size, the client
asks for part URLs and PUTs the parts there (the fake's ``send_part``), lists what arrived to
resume, and completes; the file then becomes the image as a direct upload does (the worker's
``complete_upload``)."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta
from typing import Any

import pytest

from adapters.memory import MemoryBlobStore, MemoryImageRepository, MemoryMultipartUploads
from imagecore.blob_keys import upload_key
from imagecore.commands import NewMultipartUpload, NewResumableUpload, PartUrlsRequest
from imagecore.errors import Conflict, Gone, InvalidInput, NotFound, UnsupportedMediaType
from imagecore.model import ImageState
from imagecore.multipart import MAX_PART_URLS, MiB, part_size_for
from imagecore.results import Stored
from imagecore.service import ImageService
from imagecore.upload_sessions import UploadSession
from tests.support.big_images import padded_png
from tests.support.doubles import FakeClock, make_service

SIZE = 17 * MiB


@pytest.fixture(scope="module")
def big_png() -> bytes:
    return padded_png(SIZE)


@pytest.fixture
def multipart(clock: FakeClock, blobs: MemoryBlobStore) -> MemoryMultipartUploads:
    return MemoryMultipartUploads(blobs, clock.now)


@pytest.fixture
def sessions(
    clock: FakeClock,
    repository: MemoryImageRepository,
    blobs: MemoryBlobStore,
    multipart: MemoryMultipartUploads,
) -> ImageService:
    return make_service(
        clock, repository=repository, blobs=blobs, multipart=multipart, copier=blobs
    )


def b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def pieces(data: bytes, part_size: int) -> dict[int, bytes]:
    return {
        index // part_size + 1: data[index : index + part_size]
        for index in range(0, len(data), part_size)
    }


def open_session(service: ImageService, user: str, data: bytes, **fields: object) -> UploadSession:
    session = service.open_multipart(user, NewMultipartUpload(size=len(data), **fields))
    assert isinstance(session, UploadSession)
    return session


def send(
    service: ImageService,
    multipart: MemoryMultipartUploads,
    user: str,
    session: UploadSession,
    data: bytes,
    numbers: list[int],
) -> None:
    assert session.part_size is not None
    parts = pieces(data, session.part_size)
    urls = service.part_targets(
        user,
        session.upload_id,
        PartUrlsRequest([{"number": n, "sha256": b64_sha256(parts[n])} for n in numbers]),
    )
    for number, target in urls.targets:
        multipart.send_part(target.url, parts[number], target.headers)


def test_the_server_picks_parts_of_whole_mib_at_least_8_and_at_most_10000_of_them() -> None:
    assert part_size_for(1) == part_size_for(17 * MiB) == 8 * MiB
    assert part_size_for(5 * 1024 * MiB) == 8 * MiB
    for size in (80_000 * MiB, 80_000 * MiB + 1, 5 * 1024**4, 123_456_789_012):
        part = part_size_for(size)
        assert part % MiB == 0
        assert part >= 8 * MiB
        assert -(-size // part) <= 10_000
        assert -(-size // (part - MiB)) > 10_000  # and no bigger than it needs to be


def test_a_file_sent_in_parts_resumes_from_the_parts_listed_and_becomes_the_image(
    sessions: ImageService, multipart: MemoryMultipartUploads, big_png: bytes
) -> None:
    session = open_session(sessions, "alice", big_png, title="big", tags=["x"])
    assert (session.part_size, session.part_count, session.received) == (8 * MiB, 3, 0)

    send(sessions, multipart, "alice", session, big_png, [1])
    resumed = sessions.multipart_session("alice", session.upload_id)
    assert [(part.number, part.size) for part in resumed.parts] == [(1, 8 * MiB)]
    assert (resumed.received, resumed.completed) == (8 * MiB, False)

    send(sessions, multipart, "alice", session, big_png, [2, 3])
    done = sessions.complete_multipart("alice", session.upload_id)
    assert done.completed
    assert done.received == len(big_png)
    assert done.image is None
    assert sessions.multipart_session("alice", session.upload_id).completed
    # Completing again answers the same.
    assert sessions.complete_multipart("alice", session.upload_id).completed

    image = sessions.complete_upload(upload_key("alice", session.upload_id))  # the worker

    assert image is not None
    assert (image.image_id, image.title, image.tags) == (session.upload_id, "big", ("x",))
    assert (image.size, image.sha256) == (len(big_png), hashlib.sha256(big_png).hexdigest())
    became = sessions.multipart_session("alice", session.upload_id)
    assert became.completed
    assert became.image == sessions.get("alice", image.image_id)
    assert multipart.handles() == []


def test_completing_with_parts_missing_is_a_conflict_naming_them(
    sessions: ImageService, multipart: MemoryMultipartUploads, big_png: bytes
) -> None:
    session = open_session(sessions, "alice", big_png)
    send(sessions, multipart, "alice", session, big_png, [2])

    with pytest.raises(Conflict, match=r"parts 1, 3 are missing"):
        sessions.complete_multipart("alice", session.upload_id)

    assert not sessions.multipart_session("alice", session.upload_id).completed


def test_part_urls_are_asked_for_in_batches_of_valid_parts(
    sessions: ImageService, big_png: bytes
) -> None:
    session = open_session(sessions, "alice", big_png)
    good = b64_sha256(b"x")

    def ask(parts: object) -> None:
        sessions.part_targets("alice", session.upload_id, PartUrlsRequest(parts))

    for refused in (
        [],
        [{"number": 0, "sha256": good}],
        [{"number": 4, "sha256": good}],
        [{"number": 1, "sha256": good}, {"number": 1, "sha256": good}],
        [{"number": 1, "sha256": "not base64!"}],
        [{"number": 1, "sha256": base64.b64encode(b"short").decode()}],
        [{"number": True, "sha256": good}],
        [{"number": 1}],
        [{"number": 1, "sha256": good}] * (MAX_PART_URLS + 1),
        "1,2",
    ):
        with pytest.raises(InvalidInput):
            ask(refused)


def test_a_part_other_than_its_url_was_made_for_is_refused_by_the_store(
    sessions: ImageService, multipart: MemoryMultipartUploads, big_png: bytes
) -> None:
    from adapters.memory import PartRefused

    session = open_session(sessions, "alice", big_png)
    part = big_png[: 8 * MiB]
    (target,) = (
        target
        for _, target in sessions.part_targets(
            "alice", session.upload_id, PartUrlsRequest([{"number": 1, "sha256": b64_sha256(part)}])
        ).targets
    )
    with pytest.raises(PartRefused):
        multipart.send_part(target.url, b"y" + part[1:], target.headers)
    with pytest.raises(PartRefused):
        multipart.send_part(target.url, part, {})
    assert sessions.multipart_session("alice", session.upload_id).parts == ()


def test_an_expired_session_is_gone_and_reconcile_aborts_its_upload(
    sessions: ImageService,
    multipart: MemoryMultipartUploads,
    clock: FakeClock,
    big_png: bytes,
) -> None:
    session = open_session(sessions, "alice", big_png)
    send(sessions, multipart, "alice", session, big_png, [1])
    clock.advance(timedelta(hours=24, seconds=1))

    with pytest.raises(Gone):
        sessions.multipart_session("alice", session.upload_id)
    with pytest.raises(Gone):
        sessions.complete_multipart("alice", session.upload_id)
    with pytest.raises(Gone):
        send(sessions, multipart, "alice", session, big_png, [2])

    clock.advance(timedelta(hours=2))
    report = sessions.reconcile()

    assert report.deletes_finished == 1
    assert multipart.handles() == []
    with pytest.raises(Gone):
        sessions.multipart_session("alice", session.upload_id)


def test_other_users_sessions_are_not_found(
    sessions: ImageService, multipart: MemoryMultipartUploads, big_png: bytes
) -> None:
    session = open_session(sessions, "alice", big_png)
    request = PartUrlsRequest([{"number": 1, "sha256": b64_sha256(b"x")}])
    for attempt in (
        lambda: sessions.multipart_session("bob", session.upload_id),
        lambda: sessions.part_targets("bob", session.upload_id, request),
        lambda: sessions.complete_multipart("bob", session.upload_id),
        lambda: sessions.cancel_multipart("bob", session.upload_id),
        lambda: sessions.multipart_session("alice", "01" + "0" * 24),
        lambda: sessions.multipart_session("alice", "nonsense"),
    ):
        with pytest.raises(NotFound):
            attempt()
    assert multipart.handles() != []


def test_a_file_the_caller_has_already_is_the_answer_and_no_session_is_made(
    sessions: ImageService, multipart: MemoryMultipartUploads, png: bytes
) -> None:
    from imagecore.commands import UploadCommand

    stored = sessions.store_upload("alice", UploadCommand(chunks=[png]))
    sha256 = hashlib.sha256(png).hexdigest()

    again = sessions.open_multipart("alice", NewMultipartUpload(size=len(png), sha256=sha256))

    assert again == Stored(stored.image, created=False)
    assert multipart.handles() == []
    # Another user's image of the same bytes is not theirs: they get a session.
    assert isinstance(
        sessions.open_multipart("bob", NewMultipartUpload(size=len(png), sha256=sha256)),
        UploadSession,
    )


def test_a_file_without_the_declared_sha256_is_refused_by_the_worker(
    sessions: ImageService, multipart: MemoryMultipartUploads, png: bytes
) -> None:
    session = open_session(sessions, "alice", png, sha256="0" * 64)
    assert session.part_count == 1
    send(sessions, multipart, "alice", session, png, [1])
    sessions.complete_multipart("alice", session.upload_id)

    with pytest.raises(InvalidInput):
        sessions.complete_upload(upload_key("alice", session.upload_id))

    with pytest.raises(Gone):
        sessions.multipart_session("alice", session.upload_id)


def test_a_cancelled_session_drops_its_parts_and_is_gone(
    sessions: ImageService,
    multipart: MemoryMultipartUploads,
    repository: MemoryImageRepository,
    big_png: bytes,
) -> None:
    session = open_session(sessions, "alice", big_png)
    send(sessions, multipart, "alice", session, big_png, [1])

    sessions.cancel_multipart("alice", session.upload_id)

    assert multipart.handles() == []
    slot = repository.get(session.upload_id)
    assert slot is not None
    assert slot.state is ImageState.DELETED
    with pytest.raises(Gone):
        sessions.complete_multipart("alice", session.upload_id)


def test_a_completed_session_cannot_be_cancelled(
    sessions: ImageService, multipart: MemoryMultipartUploads, png: bytes
) -> None:
    session = open_session(sessions, "alice", png)
    send(sessions, multipart, "alice", session, png, [1])
    sessions.complete_multipart("alice", session.upload_id)

    with pytest.raises(Conflict):
        sessions.cancel_multipart("alice", session.upload_id)

    image = sessions.complete_upload(upload_key("alice", session.upload_id))
    assert image is not None
    with pytest.raises(Conflict):
        sessions.cancel_multipart("alice", session.upload_id)


def test_without_multipart_uploads_the_service_points_to_tus(
    service: ImageService, png: bytes
) -> None:
    for attempt in (
        lambda: service.open_multipart("alice", NewResumableUpload(size=len(png))),
        lambda: service.multipart_session("alice", "01" + "0" * 24),
        lambda: service.part_targets("alice", "01" + "0" * 24, PartUrlsRequest([])),
        lambda: service.complete_multipart("alice", "01" + "0" * 24),
        lambda: service.cancel_multipart("alice", "01" + "0" * 24),
    ):
        with pytest.raises(InvalidInput, match="tus at /files/"):
            attempt()


class WriterLog(MemoryBlobStore):
    """A memory blob store that notes the keys it was given writers for."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[str] = []

    def writer(self, key: str) -> Any:
        self.written.append(key)
        return super().writer(key)


def test_the_worker_checks_a_file_sent_in_parts_and_has_the_store_copy_it(
    clock: FakeClock, repository: MemoryImageRepository, big_png: bytes
) -> None:
    blobs = WriterLog()
    multipart = MemoryMultipartUploads(blobs, clock.now)
    service = make_service(
        clock, repository=repository, blobs=blobs, multipart=multipart, copier=blobs
    )
    session = open_session(service, "alice", big_png, sha256=hashlib.sha256(big_png).hexdigest())
    assert session.part_size is not None
    send(service, multipart, "alice", session, big_png, [1, 2, 3])
    service.complete_multipart("alice", session.upload_id)

    image = service.complete_upload(upload_key("alice", session.upload_id))

    assert image is not None
    assert blobs.written == []  # read once to be checked, never written through the service
    assert b"".join(blobs.open(image.blob_key)) == big_png
    assert image.sha256 == hashlib.sha256(big_png).hexdigest()
    assert blobs.keys() == [image.blob_key]  # the uploaded file is gone


def test_a_file_sent_in_parts_that_is_no_image_is_refused_and_nothing_is_copied(
    sessions: ImageService,
    multipart: MemoryMultipartUploads,
    blobs: MemoryBlobStore,
) -> None:
    data = b"not an image at all" * 1000
    session = open_session(sessions, "alice", data)
    send(sessions, multipart, "alice", session, data, [1])
    sessions.complete_multipart("alice", session.upload_id)

    with pytest.raises(UnsupportedMediaType):
        sessions.complete_upload(upload_key("alice", session.upload_id))

    assert blobs.keys() == []
    with pytest.raises(Gone):
        sessions.multipart_session("alice", session.upload_id)
