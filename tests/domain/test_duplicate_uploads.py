"""Uploads a client can skip: a declared SHA-256 of an image the caller already has answers
with that image, without reading the bytes; bytes without the declared hash are refused."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from adapters.memory import MemoryBlobStore
from imagecore.commands import UploadCommand
from imagecore.errors import InvalidInput
from imagecore.service import ImageService


@pytest.fixture
def service(service_with_worker: ImageService) -> ImageService:
    """The service of these tests queues its jobs and has a thumbnailer (conftest.py)."""
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
