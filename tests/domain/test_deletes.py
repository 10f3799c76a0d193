"""Deletes: the image is gone for everyone at once, with its bytes and its metadata, only its
owner may delete it, and an interrupted delete is finished by the next."""

from __future__ import annotations

import attrs
import pytest

from adapters.memory import MemoryBlobStore, MemoryImageRepository
from imagecore.commands import UpdateCommand
from imagecore.errors import NotFound
from imagecore.model import ImageState
from imagecore.query import build_list_query
from imagecore.service import ImageService
from tests.support.blob_bytes import has_blob
from tests.support.doubles import crockford
from tests.support.use_cases import list_ids, upload


def test_a_deleted_image_is_gone_everywhere_and_its_bytes_are_removed(
    service: ImageService, blobs: MemoryBlobStore, png: bytes
) -> None:
    image = upload(service, "alice", png, visibility="public", tags=["beach"])
    kept = upload(service, "alice", png)
    assert has_blob(blobs, image.blob_key)
    service.delete("alice", image.image_id)
    for caller in ("alice", "bob"):
        with pytest.raises(NotFound):
            service.get(caller, image.image_id)
        with pytest.raises(NotFound):
            service.download(caller, image.image_id)
        assert image.image_id not in list_ids(service, caller)
        assert image.image_id not in list_ids(service, caller, build_list_query(tags="beach"))
    assert not has_blob(blobs, image.blob_key)
    assert blobs.keys() == [kept.blob_key]
    assert list_ids(service, "alice") == [kept.image_id]


def test_deleting_again_succeeds(service: ImageService, png: bytes) -> None:
    image = upload(service, "alice", png)
    service.delete("alice", image.image_id)
    service.delete("alice", image.image_id)
    service.delete("alice", image.image_id)
    with pytest.raises(NotFound):
        service.get("alice", image.image_id)


@pytest.mark.parametrize("visibility", ["private", "public"])
def test_another_user_cannot_delete_and_gets_not_found(
    service: ImageService, blobs: MemoryBlobStore, png: bytes, visibility: str
) -> None:
    image = upload(service, "alice", png, visibility=visibility)
    with pytest.raises(NotFound):
        service.delete("bob", image.image_id)
    assert service.get("alice", image.image_id) == image
    assert has_blob(blobs, image.blob_key)
    service.delete("alice", image.image_id)
    with pytest.raises(NotFound):  # nor learn that it once existed
        service.delete("bob", image.image_id)


@pytest.mark.parametrize("image_id", [crockford(12345), "", "not-an-id", "../" * 9])
def test_deleting_an_image_that_never_existed_is_not_found(
    service: ImageService, image_id: str
) -> None:
    with pytest.raises(NotFound):
        service.delete("alice", image_id)


def test_a_deleted_image_cannot_be_updated_back_to_life(
    service: ImageService, repository: MemoryImageRepository, png: bytes
) -> None:
    image = upload(service, "alice", png, title="gone")
    service.delete("alice", image.image_id)
    with pytest.raises(NotFound):
        service.update("alice", image.image_id, UpdateCommand(title="back"))
    with pytest.raises(NotFound):
        service.update("alice", image.image_id, UpdateCommand(), expected_version=1)
    with pytest.raises(NotFound):
        service.get("alice", image.image_id)
    stored = repository.get(image.image_id)
    assert stored is not None
    assert stored.state is ImageState.DELETED


def test_a_deleted_image_keeps_none_of_its_metadata(
    service: ImageService, repository: MemoryImageRepository, png: bytes
) -> None:
    image = upload(
        service, "alice", png, filename="me.png", title="T", tags=["x"], metadata={"gps": "..."}
    )
    service.delete("alice", image.image_id)
    stored = repository.get(image.image_id)
    assert stored is not None
    assert (stored.filename, stored.title, stored.tags, dict(stored.metadata)) == ("", "", (), {})


def test_an_interrupted_delete_is_finished_by_deleting_again(
    service: ImageService, repository: MemoryImageRepository, blobs: MemoryBlobStore, png: bytes
) -> None:
    image = upload(service, "alice", png)
    tombstone = attrs.evolve(image, state=ImageState.DELETING, version=2)
    repository.replace(tombstone, 1)  # the process died right after writing the tombstone
    with pytest.raises(NotFound):
        service.get("alice", image.image_id)
    service.delete("alice", image.image_id)
    assert not has_blob(blobs, image.blob_key)
    stored = repository.get(image.image_id)
    assert stored is not None
    assert stored.state is ImageState.DELETED
