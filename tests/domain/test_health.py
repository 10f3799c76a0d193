from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from adapters.memory import MemoryBlobStore, MemoryImageRepository
from imagecore.health import FULL, HEALTHY, check_stores
from imagecore.model import ByteRange, Image


class UnreachableRepository(MemoryImageRepository):
    def get(self, image_id: str) -> Image | None:
        raise ConnectionError("metadata-host.internal:5432 refused the connection")


class UnreachableBlobs(MemoryBlobStore):
    def open(self, key: str, byte_range: ByteRange | None = None) -> Iterator[bytes]:
        raise PermissionError("/srv/secret/blobs: permission denied")


class Space:
    def __init__(self, has_room: bool) -> None:
        self._has_room = has_room

    def has_room(self) -> bool:
        return self._has_room


class UnmeasurableSpace:
    def has_room(self) -> bool:
        raise OSError("/srv/secret/data: input/output error")


def test_stores_that_answer_are_healthy() -> None:
    assert check_stores(MemoryImageRepository(), MemoryBlobStore()) == {
        "metadata": HEALTHY,
        "blobs": HEALTHY,
        "space": HEALTHY,
    }


def test_stores_with_room_are_healthy() -> None:
    checks = check_stores(MemoryImageRepository(), MemoryBlobStore(), Space(has_room=True))
    assert checks == {"metadata": HEALTHY, "blobs": HEALTHY, "space": HEALTHY}


def test_stores_without_room_are_reported_full() -> None:
    checks = check_stores(MemoryImageRepository(), MemoryBlobStore(), Space(has_room=False))
    assert checks == {"metadata": HEALTHY, "blobs": HEALTHY, "space": FULL}


def test_room_that_cannot_be_measured_is_failing_and_its_error_is_logged_not_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    checks = check_stores(MemoryImageRepository(), MemoryBlobStore(), UnmeasurableSpace())
    assert checks["space"] not in (HEALTHY, FULL)
    assert "/srv" not in checks["space"]
    assert any(record.exc_info for record in caplog.records)


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
    assert {state for name, state in checks.items() if name != failing} == {HEALTHY}
    assert "internal" not in checks[failing]
    assert "/srv" not in checks[failing]
    assert any(failing in record.getMessage() and record.exc_info for record in caplog.records)
