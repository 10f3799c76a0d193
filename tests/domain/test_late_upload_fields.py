"""Fields that arrive after the bytes (form parts after the file): validated like the others,
they win over earlier ones, and an invalid one refuses the upload and leaves nothing behind."""

from __future__ import annotations

import pytest

from adapters.memory import MemoryBlobStore, MemoryImageRepository
from imagecore.commands import UploadCommand
from imagecore.errors import InvalidInput
from imagecore.service import ImageService


@pytest.fixture
def service(service_with_worker: ImageService) -> ImageService:
    """The service of these tests queues its jobs and has a renderer (conftest.py)."""
    return service_with_worker


def test_fields_that_arrive_after_the_bytes_are_validated_and_win(
    service: ImageService, png: bytes
) -> None:
    image = service.store_upload(
        "alice",
        UploadCommand(chunks=[png], title="early", late_fields=lambda: {"title": "late"}),
    ).image
    assert image.title == "late"


def test_invalid_late_fields_leave_nothing_behind(
    service: ImageService, blobs: MemoryBlobStore, repository: MemoryImageRepository, png: bytes
) -> None:
    with pytest.raises(InvalidInput):
        service.store_upload(
            "alice", UploadCommand(chunks=[png], late_fields=lambda: {"visibility": "secret"})
        )
    assert blobs.keys() == []
    assert list(repository.unsettled()) == []
