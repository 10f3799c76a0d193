"""The PartialBlobs contract (imagecore/ports.py), run against every adapter: the memory fake
and the files of the embedded server. Resumable uploads rely on exactly this."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.memory import MemoryPartialBlobs
from adapters.partial_files import PartialFiles
from imagecore.errors import Conflict, Locked, NotFound, PayloadTooLarge
from imagecore.ports import PartialBlobs

KEY = "uploads/alice/01JAAAAAAAAAAAAAAAAAAAAAAA"

ADAPTERS: dict[str, Callable[[Path], PartialBlobs]] = {
    "memory": lambda _root: MemoryPartialBlobs(),
    "files": lambda root: PartialFiles(root / "partial"),
}


@pytest.fixture(params=list(ADAPTERS))
def partials(request: pytest.FixtureRequest, tmp_path: Path) -> PartialBlobs:
    return ADAPTERS[request.param](tmp_path)


def held(partials: PartialBlobs, key: str = KEY) -> bytes:
    return b"".join(partials.open(key))


def append(partials: PartialBlobs, offset: int, *pieces: bytes, max_size: int = 100) -> int:
    writer = partials.appender(KEY, offset, max_size)
    for piece in pieces:
        writer.write(piece)
    return writer.commit()


def test_a_new_partial_blob_is_empty_and_grows_by_committed_appends(
    partials: PartialBlobs,
) -> None:
    assert partials.size(KEY) is None
    partials.create(KEY)
    assert partials.size(KEY) == 0
    assert append(partials, 0, b"abc", b"def") == 6
    assert append(partials, 6, b"gh") == 8
    assert partials.size(KEY) == 8
    assert held(partials) == b"abcdefgh"


def test_an_aborted_append_leaves_the_blob_as_it_was(partials: PartialBlobs) -> None:
    partials.create(KEY)
    append(partials, 0, b"kept")
    writer = partials.appender(KEY, 4, 100)
    writer.write(b"dropped")
    writer.abort()
    writer.abort()  # harmless again
    assert held(partials) == b"kept"
    assert append(partials, 4, b"!") == 5


def test_an_append_at_another_offset_is_a_conflict(partials: PartialBlobs) -> None:
    partials.create(KEY)
    append(partials, 0, b"abc")
    for offset in (0, 2, 4):
        with pytest.raises(Conflict):
            partials.appender(KEY, offset, 100)
    assert held(partials) == b"abc"


def test_one_writer_at_a_time(partials: PartialBlobs) -> None:
    partials.create(KEY)
    first = partials.appender(KEY, 0, 100)
    with pytest.raises(Locked):
        partials.appender(KEY, 0, 100)
    first.write(b"x")
    assert first.commit() == 1
    append(partials, 1, b"y")  # the lock went with the commit
    assert held(partials) == b"xy"


def test_one_writer_at_a_time_across_threads(partials: PartialBlobs) -> None:
    partials.create(KEY)
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def writer() -> None:
        start.wait()
        try:
            append(partials, 0, b"only-one")
            outcomes.append("wrote")
        except (Locked, Conflict):
            outcomes.append("refused")

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("wrote") == 1
    assert held(partials) == b"only-one"


def test_bytes_past_the_size_allowed_are_refused_and_not_written(partials: PartialBlobs) -> None:
    partials.create(KEY)
    writer = partials.appender(KEY, 0, 5)
    writer.write(b"1234")
    with pytest.raises(PayloadTooLarge):
        writer.write(b"56")
    writer.write(b"5")
    assert writer.commit() == 5
    assert held(partials) == b"12345"


def test_missing_blobs(partials: PartialBlobs) -> None:
    with pytest.raises(NotFound):
        partials.appender(KEY, 0, 10)
    with pytest.raises(KeyError):
        partials.open(KEY)
    partials.delete(KEY)  # not an error
    partials.create(KEY)
    partials.delete(KEY)
    assert partials.size(KEY) is None


def test_create_replaces_what_was_there(partials: PartialBlobs) -> None:
    partials.create(KEY)
    append(partials, 0, b"old")
    partials.create(KEY)
    assert partials.size(KEY) == 0


def test_stored_before_lists_the_blobs_last_written_before_a_moment(
    partials: PartialBlobs,
) -> None:
    partials.create(KEY)
    other = "uploads/bob/01JBBBBBBBBBBBBBBBBBBBBBBB"
    partials.create(other)
    now = datetime.now(UTC)
    assert set(partials.stored_before(now + timedelta(seconds=5))) == {KEY, other}
    assert list(partials.stored_before(now - timedelta(hours=1))) == []


def test_partial_files_survive_a_new_store_on_the_same_directory(tmp_path: Path) -> None:
    """What a restarted server finds: the bytes committed before, under the same key."""
    PartialFiles(tmp_path / "partial").create(KEY)
    first = PartialFiles(tmp_path / "partial")
    writer = first.appender(KEY, 0, 100)
    writer.write(b"durable")
    writer.commit()
    assert b"".join(PartialFiles(tmp_path / "partial").open(KEY)) == b"durable"


def test_a_whole_partial_file_becomes_a_blob_without_a_copy(tmp_path: Path) -> None:
    """The files of the embedded server: the blob is the same file, linked, never written
    again; the partial file stays until deleted, and the blob outlives it."""
    from adapters.filesystem import FilesystemBlobStore

    blobs = FilesystemBlobStore(tmp_path / "blobs")
    partials = PartialFiles(tmp_path / "partial", blobs_root=tmp_path / "blobs")
    partials.create(KEY)
    append(partials, 0, b"the whole file")
    mover = partials.mover(KEY, "images/alice/01JAAAAAAAAAAAAAAAAAAAAAAA/r2")
    assert mover is not None
    for chunk in partials.open(KEY):
        mover.write(chunk)
    stored = mover.commit()

    assert stored.size == 14
    assert stored.sha256 == hashlib.sha256(b"the whole file").hexdigest()
    path = blobs.local_path("images/alice/01JAAAAAAAAAAAAAAAAAAAAAAA/r2")
    assert path is not None
    assert Path(path).stat().st_nlink == 2  # one file, two names
    partials.delete(KEY)
    assert b"".join(blobs.open("images/alice/01JAAAAAAAAAAAAAAAAAAAAAAA/r2")) == b"the whole file"


def test_a_mover_refuses_bytes_that_are_not_the_whole_file(tmp_path: Path) -> None:
    partials = PartialFiles(tmp_path / "partial", blobs_root=tmp_path / "blobs")
    (tmp_path / "blobs").mkdir()
    partials.create(KEY)
    append(partials, 0, b"the whole file")
    mover = partials.mover(KEY, "images/alice/x")
    assert mover is not None
    mover.write(b"the whole")
    with pytest.raises(ValueError, match="9 bytes"):
        mover.commit()
    assert MemoryPartialBlobs().mover(KEY, "images/alice/x") is None
