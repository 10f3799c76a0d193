"""Uploads a client can skip: a declared SHA-256 of an image the caller already has answers
with that image, without reading the bytes; bytes without the declared hash are refused; and
however many uploads declare the same bytes at once, they make one image."""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from adapters.memory import MemoryBlobStore, MemoryImageRepository
from imagecore.commands import UploadCommand
from imagecore.errors import Conflict, DuplicateContent, InvalidInput
from imagecore.model import THUMBNAIL_JOB, Image, Job
from imagecore.query import build_list_query
from imagecore.results import Stored
from imagecore.service import ImageService
from tests.support.doubles import RandomIds, RecordingJobs, make_service


@pytest.fixture
def service(service_with_worker: ImageService) -> ImageService:
    """The service of these tests queues its jobs and has a renderer (conftest.py)."""
    return service_with_worker


def never_read() -> Iterator[bytes]:
    raise AssertionError("the bytes were read")
    yield b""  # pragma: no cover


def test_a_known_hash_answers_with_the_callers_image_without_reading_the_bytes(
    service: ImageService, png: bytes
) -> None:
    first = service.store_upload("alice", UploadCommand(chunks=[png])).image

    stored = service.store_upload(
        "alice", UploadCommand(chunks=never_read(), content_sha256=first.sha256.upper())
    )

    assert (stored.image, stored.created) == (first, False)


def test_another_users_or_a_deleted_image_is_no_duplicate(
    service: ImageService, png: bytes
) -> None:
    sha = hashlib.sha256(png).hexdigest()
    bobs = service.store_upload("bob", UploadCommand(chunks=[png], visibility="public")).image
    gone = service.store_upload("alice", UploadCommand(chunks=[png])).image
    service.delete("alice", gone.image_id)

    stored = service.store_upload("alice", UploadCommand(chunks=[png], content_sha256=sha))

    assert stored.created
    assert stored.image.image_id not in (bobs.image_id, gone.image_id)


def test_bytes_that_do_not_have_the_declared_hash_are_refused_and_removed(
    service: ImageService, blobs: MemoryBlobStore, png: bytes
) -> None:
    with pytest.raises(InvalidInput, match="SHA-256"):
        service.store_upload("alice", UploadCommand(chunks=[png], content_sha256="0" * 64))
    assert blobs.keys() == []


@pytest.mark.parametrize("declared", ["abc", "g" * 64, 12, "0" * 65])
def test_a_declared_hash_must_look_like_one(service: ImageService, declared: object) -> None:
    with pytest.raises(InvalidInput, match="64 hexadecimal"):
        service.store_upload("alice", UploadCommand(chunks=never_read(), content_sha256=declared))


def test_a_deleted_image_frees_its_bytes_for_a_new_upload_declaring_them(
    service: ImageService, png: bytes
) -> None:
    sha = hashlib.sha256(png).hexdigest()
    first = service.store_upload("alice", UploadCommand(chunks=[png], content_sha256=sha)).image
    service.delete("alice", first.image_id)

    again = service.store_upload("alice", UploadCommand(chunks=[png], content_sha256=sha))

    assert again.created
    assert again.image.image_id != first.image_id


def test_uploads_that_declare_no_hash_may_repeat_an_image_on_purpose(
    service: ImageService, png: bytes
) -> None:
    sha = hashlib.sha256(png).hexdigest()
    declared = service.store_upload("alice", UploadCommand(chunks=[png], content_sha256=sha))

    repeats = [service.store_upload("alice", UploadCommand(chunks=[png])) for _ in range(2)]

    assert all(stored.created for stored in [declared, *repeats])
    assert len({stored.image.image_id for stored in [declared, *repeats]}) == 3


def uploads_at_once(service: ImageService, data: bytes, count: int) -> list[Stored | Exception]:
    """``count`` uploads of ``data`` by alice, each declaring its hash, sent at once by clients
    that all pause after their first bytes until every upload has looked for an image with
    these bytes and found none: the race of concurrent identical uploads, every time."""
    sha = hashlib.sha256(data).hexdigest()
    all_looked = threading.Barrier(count)

    def slow_client() -> Iterator[bytes]:
        yield data[:16]
        all_looked.wait(timeout=30)
        yield data[16:]

    def upload(_: int) -> Stored | Exception:
        command = UploadCommand(chunks=slow_client(), content_sha256=sha)
        try:
            return service.store_upload("alice", command)
        except Conflict as refused:
            return refused

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(upload, range(count)))


def test_concurrent_uploads_declaring_the_same_bytes_make_one_image_and_keep_only_its_bytes(
    repository: MemoryImageRepository, blobs: MemoryBlobStore, png: bytes
) -> None:
    jobs = RecordingJobs()
    service = make_service(
        repository=repository, blobs=blobs, jobs=jobs, ids=RandomIds(random.Random(6))
    )

    results = uploads_at_once(service, png, count=8)

    stored = [result for result in results if isinstance(result, Stored)]
    assert len(stored) == 8, results
    made = [result.image for result in stored if result.created]
    assert len(made) == 1
    image = made[0]
    assert [result.image for result in stored] == [image] * 8
    assert service.list_images("alice", build_list_query()).images == [image]
    assert blobs.keys() == [image.blob_key], "a losing upload left its bytes behind"
    assert jobs.jobs == [Job(THUMBNAIL_JOB, image.image_id, user_id=image.user_id)]


class HolderDeletedOnRefusal(MemoryImageRepository):
    """A repository whose image holding a content claim is deleted just after the claim
    refused another image: the owner deleted it while a second upload of it was under way."""

    def add(self, image: Image) -> None:
        try:
            super().add(image)
        except DuplicateContent as refused:
            holder = self.get(refused.image_id)
            assert holder is not None
            self.replace(holder.tombstoned(holder.updated_at), holder.version)
            raise


def test_an_upload_that_lost_the_race_to_an_image_deleted_since_is_a_conflict(
    blobs: MemoryBlobStore, png: bytes
) -> None:
    repository = HolderDeletedOnRefusal()
    service = make_service(repository=repository, blobs=blobs, ids=RandomIds(random.Random(7)))

    results = uploads_at_once(service, png, count=2)

    refused = [result for result in results if isinstance(result, Conflict)]
    made = [result.image for result in results if isinstance(result, Stored) and result.created]
    assert (len(refused), len(made)) == (1, 1), results
    assert "deleted" in refused[0].message
    assert blobs.keys() == [made[0].blob_key], "the refused upload left its bytes behind"
