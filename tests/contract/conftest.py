"""The adapters under contract, and the images the contract tests store in them.

To put a new adapter under the contract, add its factory to REPOSITORIES or BLOB_STORES.
A factory is a context manager that yields a fresh, empty adapter and tears it down afterwards.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.dynamodb import DynamoDbImageRepository
from adapters.filesystem import FilesystemBlobStore
from adapters.memory import MemoryBlobStore, MemoryImageRepository
from adapters.s3 import S3BlobStore
from adapters.sqlite import SqliteImageRepository
from imagecore.model import Image
from imagecore.ports import BlobStore, ImageRepository
from tests.aws import aws_clients, fresh_resources

BASE_INSTANT = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)


@contextmanager
def _memory_repository(tmp_path: Path) -> Iterator[ImageRepository]:
    yield MemoryImageRepository()


@contextmanager
def _sqlite_repository(tmp_path: Path) -> Iterator[ImageRepository]:
    repository = SqliteImageRepository(tmp_path / "data" / "imagecore.sqlite3")
    try:
        yield repository
    finally:
        repository.close()


@contextmanager
def _memory_blob_store(tmp_path: Path) -> Iterator[BlobStore]:
    yield MemoryBlobStore()


@contextmanager
def _filesystem_blob_store(tmp_path: Path) -> Iterator[BlobStore]:
    yield FilesystemBlobStore(tmp_path / "data" / "blobs")


@contextmanager
def _dynamodb_repository(where: str) -> Iterator[ImageRepository]:
    with aws_clients(where) as clients, fresh_resources(clients) as (table, _):
        yield DynamoDbImageRepository(clients.dynamodb, table)


@contextmanager
def _s3_blob_store(where: str) -> Iterator[BlobStore]:
    with aws_clients(where) as clients, fresh_resources(clients) as (_, bucket):
        yield S3BlobStore(clients.s3, bucket)


REPOSITORIES: dict[str, Callable[[Path], AbstractContextManager[ImageRepository]]] = {
    "memory": _memory_repository,
    "filesystem": _sqlite_repository,
    "dynamodb-moto": lambda _: _dynamodb_repository("in-process"),
    "dynamodb-moto-server": lambda _: _dynamodb_repository("server"),
}

BLOB_STORES: dict[str, Callable[[Path], AbstractContextManager[BlobStore]]] = {
    "memory": _memory_blob_store,
    "filesystem": _filesystem_blob_store,
    "s3-moto": lambda _: _s3_blob_store("in-process"),
    "s3-moto-server": lambda _: _s3_blob_store("server"),
}


@pytest.fixture(params=list(REPOSITORIES))
def repository(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ImageRepository]:
    with REPOSITORIES[request.param](tmp_path) as adapter:
        yield adapter


@pytest.fixture(params=list(BLOB_STORES))
def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    with BLOB_STORES[request.param](tmp_path) as adapter:
        yield adapter


def image_id_for(n: int) -> str:
    """A 26-character id in Crockford base32 that sorts by ``n``."""
    return f"01JD{n:022d}"


def build_image(n: int, **overrides: Any) -> Image:
    """Image number ``n``: Alice's private JPEG created ``n`` seconds after BASE_INSTANT."""
    fields: dict[str, Any] = {
        "image_id": image_id_for(n),
        "user_id": "alice",
        "filename": f"photo-{n}.jpg",
        "content_type": "image/jpeg",
        "size": 1000 + n,
        "width": 640,
        "height": 480,
        "sha256": f"{n:064x}",
        "created_at": BASE_INSTANT + timedelta(seconds=n),
        "title": f"Photo {n}",
    }
    fields.update(overrides)
    fields.setdefault("updated_at", fields["created_at"])
    fields.setdefault("blob_key", f"images/{fields['user_id']}/{fields['image_id']}")
    return Image(**fields)


@pytest.fixture
def make_image() -> Callable[..., Image]:
    """Builds images numbered 1, 2, 3 ... per test, so each is newer than the one before."""
    numbers = itertools.count(1)

    def make(**overrides: Any) -> Image:
        return build_image(next(numbers), **overrides)

    return make
