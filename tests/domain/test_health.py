from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from adapters.memory import MemoryBlobStore, MemoryImageRepository
from imagecore.health import HEALTHY, check_stores
from imagecore.model import ByteRange, Image


class UnreachableRepository(MemoryImageRepository):
    def get(self, image_id: str) -> Image | None:
        raise ConnectionError("metadata-host.internal:5432 refused the connection")


class UnreachableBlobs(MemoryBlobStore):
    def open(self, key: str, byte_range: ByteRange | None = None) -> Iterator[bytes]:
        raise PermissionError("/srv/secret/blobs: permission denied")


def test_stores_that_answer_are_healthy() -> None:
    assert check_stores(MemoryImageRepository(), MemoryBlobStore()) == {
        "metadata": HEALTHY,
        "blobs": HEALTHY,
    }


@pytest.mark.parametrize(
    ("stores", "failing"),
    [
        ((UnreachableRepository(), MemoryBlobStore()), "metadata"),
        ((MemoryImageRepository(), UnreachableBlobs()), "blobs"),
    ],
)
def test_a_store_that_fails_is_named_and_its_error_is_logged_not_reported(
    stores: tuple[Any, Any], failing: str, caplog: pytest.LogCaptureFixture
) -> None:
    checks = check_stores(*stores)
    assert checks[failing] != HEALTHY
    assert [state for name, state in checks.items() if name != failing] == [HEALTHY]
    assert "internal" not in checks[failing]
    assert "/srv" not in checks[failing]
    assert any(failing in record.getMessage() and record.exc_info for record in caplog.records)
