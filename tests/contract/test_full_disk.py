"""The data dir's stores on a disk filled to the last byte (a tmpfs of the test's own): a write
they have no room for raises InsufficientStorage and leaves nothing; a delete's writes commit in
the room the reserve kept; and no other write ever takes that room."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from adapters.disk_reserve import DEFAULT_RESERVE_BYTES, DiskReserve
from adapters.filesystem import FilesystemBlobStore
from adapters.sqlite import SqliteImageRepository
from imagecore.errors import InsufficientStorage
from imagecore.model import Image
from tests.support.numbered_images import BASE_INSTANT, build_image
from tests.support.small_filesystem import MIB, SmallFilesystem, mounted_tmpfs

DISK_BYTES = 8 * MIB


@attrs.frozen
class DataDir:
    disk: SmallFilesystem
    reserve: DiskReserve
    repository: SqliteImageRepository
    blobs: FilesystemBlobStore

    def stored(self, image: Image) -> Image:
        self.blobs.put(image.blob_key, [os.urandom(64 * 1024)])
        self.repository.add(image)
        return image


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallFilesystem]:
    with mounted_tmpfs(tmp_path / "disk", DISK_BYTES) as mounted:
        yield mounted


@pytest.fixture
def data_dir(disk: SmallFilesystem) -> Iterator[DataDir]:
    reserve = DiskReserve(disk.path / "disk-reserve")
    repository = SqliteImageRepository(disk.path / "imagecore.sqlite3", reserve)
    try:
        yield DataDir(disk, reserve, repository, FilesystemBlobStore(disk.path / "blobs", reserve))
    finally:
        repository.close()
        reserve.close()


def test_bytes_the_disk_has_no_room_for_are_refused_and_leave_no_file(
    disk: SmallFilesystem,
) -> None:
    blobs = FilesystemBlobStore(disk.path / "blobs")
    blobs.put("images/alice/kept", [b"kept"])
    disk.fill_up()

    with pytest.raises(InsufficientStorage):
        blobs.put("images/alice/refused", [os.urandom(256 * 1024)])

    assert [path.name for path in (disk.path / "blobs").rglob(".tmp-*")] == []
    with pytest.raises(KeyError):
        blobs.open("images/alice/refused")
    assert b"".join(blobs.open("images/alice/kept")) == b"kept"


def test_metadata_the_disk_has_no_room_for_is_refused_and_the_next_write_works(
    disk: SmallFilesystem,
) -> None:
    repository = SqliteImageRepository(disk.path / "imagecore.sqlite3")
    try:
        repository.add(build_image(1))
        filler = disk.fill_up()

        with pytest.raises(InsufficientStorage):
            repository.add(build_image(2))
        assert repository.get(build_image(2).image_id) is None

        filler.unlink()
        repository.add(build_image(2))  # the refused write left no transaction open
        assert repository.get(build_image(2).image_id) == build_image(2)
    finally:
        repository.close()


def test_a_database_without_its_revision_file_on_a_full_disk_is_insufficient_storage(
    disk: SmallFilesystem,
) -> None:
    path = disk.path / "imagecore.sqlite3"
    SqliteImageRepository(path).add(build_image(1))
    (disk.path / "imagecore.sqlite3-revision").unlink()  # a data dir from before the file
    filler = disk.fill_up()

    with pytest.raises(InsufficientStorage):
        SqliteImageRepository(path)

    filler.unlink()
    assert SqliteImageRepository(path).get(build_image(1).image_id) == build_image(1)


def test_a_delete_commits_on_a_full_disk_in_the_room_the_reserve_kept(data_dir: DataDir) -> None:
    image = data_dir.stored(build_image(1))
    data_dir.disk.fill_up()
    with pytest.raises(InsufficientStorage):
        data_dir.repository.add(build_image(2))

    tombstone = image.tombstoned(BASE_INSTANT)
    data_dir.repository.replace(tombstone, image.version)
    data_dir.blobs.delete(image.blob_key)
    data_dir.repository.replace(tombstone.erased(), tombstone.version)

    assert data_dir.repository.get(image.image_id) == tombstone.erased()


def test_no_write_but_a_deletes_takes_the_room_of_the_reserve(data_dir: DataDir) -> None:
    image = data_dir.stored(build_image(1))
    filler = data_dir.disk.fill_up()
    # The tombstone spends a little of the reserve's room, so it cannot be whole again; the
    # rest of that room is free on the disk, and yet no other write may have it.
    data_dir.repository.replace(image.tombstoned(BASE_INSTANT), image.version)
    _, free = data_dir.disk.look()
    assert free > DEFAULT_RESERVE_BYTES // 2

    with pytest.raises(InsufficientStorage):
        data_dir.blobs.put("images/alice/small", [b"small"])
    with pytest.raises(InsufficientStorage):
        data_dir.repository.add(build_image(2))
    assert not data_dir.reserve.has_room()

    filler.unlink()  # space is back: the reserve is made whole again first, then writes go on
    data_dir.blobs.put("images/alice/small", [b"small"])
    data_dir.repository.add(build_image(2))
    files, _ = data_dir.disk.look()
    assert files["disk-reserve"] == DEFAULT_RESERVE_BYTES
    assert data_dir.reserve.has_room()
