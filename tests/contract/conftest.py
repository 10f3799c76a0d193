"""The adapters under contract, and the images the contract tests store in them.

The ``repository`` and ``blob_store`` fixtures run each contract test on every place of every
backend in tests/support/backends.py: to put a new adapter under the contract, add its backend
there.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from imagecore.model import Image
from imagecore.ports import BlobStore, ImageRepository
from tests.support.backends import PLACES, BlobStoreFactory, RepositoryFactory
from tests.support.numbered_images import build_image

REPOSITORIES: dict[str, RepositoryFactory] = {
    place.repository_id: place.repository for place in PLACES
}
BLOB_STORES: dict[str, BlobStoreFactory] = {
    place.blob_store_id: place.blob_store for place in PLACES
}


@pytest.fixture(params=list(REPOSITORIES))
def repository(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ImageRepository]:
    with REPOSITORIES[request.param](tmp_path) as adapter:
        yield adapter


@pytest.fixture(params=list(BLOB_STORES))
def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    with BLOB_STORES[request.param](tmp_path) as adapter:
        yield adapter


@pytest.fixture
def make_image() -> Callable[..., Image]:
    """Builds images numbered 1, 2, 3 ... per test, so each is newer than the one before."""
    numbers = itertools.count(1)

    def make(**overrides: Any) -> Image:
        return build_image(next(numbers), **overrides)

    return make
