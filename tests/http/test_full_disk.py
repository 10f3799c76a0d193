"""`imagecore serve` on a disk filled to the last byte (a small tmpfs of its own): a write that
finds no room answers 507 and keeps nothing, /health says the disk is full, and deletes still
work and make room, so that uploads work again."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.disk_reserve import DEFAULT_RESERVE_BYTES, RESERVE_FILE
from imagecore.health import FULL
from tests.support.api_assertions import assert_error, assert_matches_schema
from tests.support.http_server import ServerProcess
from tests.support.sample_images import large_png
from tests.support.small_filesystem import MIB, SmallFilesystem, small_filesystem

DISK_BYTES = 12 * MIB
IMAGE_BYTES = 256 * 1024
MOST_UPLOADS = 100  # far more than the disk holds


class FullDisk:
    """A server whose data dir is on a small filesystem, and a user of it."""

    def __init__(self, server: ServerProcess, disk: SmallFilesystem) -> None:
        self.server = server
        self.disk = disk
        self.http = httpx.Client(
            base_url=server.url,
            timeout=60,
            headers={"Authorization": f"Bearer {server.token('filler')}"},
        )

    def upload(self, data: bytes) -> httpx.Response:
        return self.http.post("/images", files={"file": ("photo.png", data)})

    def fill(self) -> tuple[list[dict[str, Any]], httpx.Response]:
        """Images uploaded until one is refused, each left to settle (its thumbnail made, or
        given up) before the next; and the refusal."""
        stored = []
        for _ in range(MOST_UPLOADS):
            response = self.upload(large_png(IMAGE_BYTES))
            if response.status_code != 201:
                return stored, response
            stored.append(self.settled(response.json()["image_id"]))
        raise AssertionError(f"{MOST_UPLOADS} uploads fit on a disk of {DISK_BYTES} bytes")

    def settled(self, image_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + 30
        while True:
            image: dict[str, Any] = self.http.get(f"/images/{image_id}").json()
            if image["thumbnail_status"] != "pending" or time.monotonic() > deadline:
                return image
            time.sleep(0.05)

    def data_files(self) -> dict[str, int]:
        files, _ = self.disk.look()
        return {name.removeprefix("data/"): size for name, size in files.items()}


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[FullDisk]:
    with small_filesystem(tmp_path / "disk", DISK_BYTES) as disk:
        server = ServerProcess(disk.path / "data", disk.command_prefix)
        server.log_path = tmp_path / "server.log"  # not on the disk the test fills
        server.start()
        try:
            yield FullDisk(server, disk)
        finally:
            server.stop()


def test_a_write_the_disk_has_no_room_for_is_507_and_keeps_nothing(full_disk: FullDisk) -> None:
    stored, refused = full_disk.fill()

    assert len(stored) >= 3
    assert_error(refused, 507, "InsufficientStorage")
    files = full_disk.data_files()
    assert not [name for name in files if ".tmp-" in name], "a refused write left its file"
    assert files[RESERVE_FILE] == DEFAULT_RESERVE_BYTES, "uploads took the room kept for deletes"
    listed = full_disk.http.get("/images", params={"limit": 100}).json()["images"]
    assert {image["image_id"] for image in listed} == {image["image_id"] for image in stored}


def test_health_says_the_disk_is_full(full_disk: FullDisk) -> None:
    full_disk.fill()

    response = httpx.get(f"{full_disk.server.url}/health", timeout=30)

    assert response.status_code == 503
    body = response.json()
    assert_matches_schema(body, "Health")
    assert body == {
        "status": "failing",
        "checks": {"metadata": "ok", "blobs": "ok", "space": FULL},
    }


def test_deletes_work_on_a_full_disk_and_make_room_for_uploads_again(
    full_disk: FullDisk,
) -> None:
    stored, _ = full_disk.fill()
    full_disk.disk.fill_up()  # and the last crumbs, as if something else had taken them
    _, free_when_full = full_disk.disk.look()
    assert free_when_full == 0
    doomed = stored[:6]

    for image in doomed:
        response = full_disk.http.delete(f"/images/{image['image_id']}")
        assert response.status_code == 204, response.text

    health = httpx.get(f"{full_disk.server.url}/health", timeout=30)
    assert health.status_code == 200, health.text  # it also makes the reserve whole again
    files, free_now = full_disk.disk.look()
    deleted_bytes = sum(image["size"] for image in doomed)
    # SQLite's log grew by a little for each delete; the bytes of the images went.
    assert free_now - free_when_full >= deleted_bytes // 2
    assert files[f"data/{RESERVE_FILE}"] == DEFAULT_RESERVE_BYTES
    assert full_disk.upload(large_png(IMAGE_BYTES)).status_code == 201
