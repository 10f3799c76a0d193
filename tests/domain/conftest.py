from __future__ import annotations

import pytest

from adapters.memory import MemoryBlobStore, MemoryImageRepository
from imagecore.service import ImageService

from ..images import image_bytes
from .support import CountingIds, FakeClock, make_service


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def repository() -> MemoryImageRepository:
    return MemoryImageRepository()


@pytest.fixture
def blobs() -> MemoryBlobStore:
    return MemoryBlobStore()


@pytest.fixture
def service(
    clock: FakeClock, repository: MemoryImageRepository, blobs: MemoryBlobStore
) -> ImageService:
    return make_service(clock, CountingIds(), repository=repository, blobs=blobs)


@pytest.fixture(scope="session")
def png() -> bytes:
    return image_bytes("image/png", 4, 3)


@pytest.fixture(scope="session")
def jpeg() -> bytes:
    return image_bytes("image/jpeg", 5, 7)
