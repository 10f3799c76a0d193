"""The use cases' world for the domain tests: a clock the test moves, memory stores, a service
over them, and two small images. Tests of background work take ``service_with_worker``: the
same service with a job queue that records and a renderer the test controls."""

from __future__ import annotations

import pytest

from adapters.memory import MemoryBlobStore, MemoryImageRepository
from imagecore.service import ImageService
from tests.support.doubles import (
    CountingIds,
    FakeClock,
    FakeRenderer,
    RecordingJobs,
    make_service,
)
from tests.support.sample_images import image_bytes


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


@pytest.fixture
def jobs() -> RecordingJobs:
    return RecordingJobs()


@pytest.fixture
def renderer() -> FakeRenderer:
    return FakeRenderer()


@pytest.fixture
def service_with_worker(
    clock: FakeClock,
    repository: MemoryImageRepository,
    blobs: MemoryBlobStore,
    jobs: RecordingJobs,
    renderer: FakeRenderer,
) -> ImageService:
    return make_service(clock, repository=repository, blobs=blobs, jobs=jobs, renderer=renderer)


@pytest.fixture(scope="session")
def png() -> bytes:
    return image_bytes("image/png", 4, 3)


@pytest.fixture(scope="session")
def jpeg() -> bytes:
    return image_bytes("image/jpeg", 5, 7)
