"""What every BlobStore promises, proven on the blob store of each backend in
tests/support/backends.py (the ``blob_store`` fixture of conftest.py)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.filesystem import FilesystemBlobStore
from imagecore import validation
from imagecore.model import ByteRange
from imagecore.ports import BlobStore
from tests.support.blob_bytes import (
    MIB,
    Interrupted,
    chunked,
    failing_after,
    has_blob,
    pattern,
    read,
)

KEY = "images/alice/01JD0000000000000000000001"


def files_under(directory: Path) -> set[Path]:
    return {path for path in directory.rglob("*") if path.is_file()}


# Storing and reading back


@pytest.mark.parametrize(
    ("size", "chunk_size"),
    [(0, 1), (1, 1), (100_000, 100_000), (100_000, 7), (5 * MIB + 3, 65_537)],
    ids=["empty", "one-byte", "one-chunk", "many-small-chunks", "5MiB"],
)
def test_put_then_open_returns_the_bytes_with_their_size_and_sha256(
    blob_store: BlobStore, size: int, chunk_size: int
) -> None:
    data = pattern(size)

    stored = blob_store.put(KEY, chunked(data, chunk_size))

    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert read(blob_store, KEY) == data


def test_open_yields_chunks_of_bounded_size(blob_store: BlobStore) -> None:
    blob_store.put(KEY, [pattern(3 * MIB)])

    sizes = [len(chunk) for chunk in blob_store.open(KEY)]

    assert sum(sizes) == 3 * MIB
    assert max(sizes) <= MIB


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (0, 0),
        (2 * MIB - 1, 2 * MIB - 1),
        (1000, 1999),
        (0, 2 * MIB - 1),
        (65_535, 1_048_577),
        (1, 2 * MIB - 2),
    ],
    ids=["first-byte", "last-byte", "middle", "whole", "across-chunks", "all-but-ends"],
)
def test_open_with_a_range_returns_exactly_those_bytes(
    blob_store: BlobStore, start: int, end: int
) -> None:
    data = pattern(2 * MIB)
    blob_store.put(KEY, chunked(data, 100_000))

    assert read(blob_store, KEY, ByteRange(start, end)) == data[start : end + 1]


def test_open_of_a_missing_key_raises_key_error_at_once(blob_store: BlobStore) -> None:
    with pytest.raises(KeyError):
        blob_store.open(KEY)
    with pytest.raises(KeyError):
        blob_store.open(KEY, ByteRange(0, 0))


def test_put_replaces_the_bytes_under_an_existing_key(blob_store: BlobStore) -> None:
    blob_store.put(KEY, [b"old bytes, longer than the new ones"])

    stored = blob_store.put(KEY, [b"new"])

    assert stored.size == 3
    assert read(blob_store, KEY) == b"new"


def test_bytes_open_only_while_they_are_stored(blob_store: BlobStore) -> None:
    assert not has_blob(blob_store, KEY)
    blob_store.put(KEY, [b""])
    assert has_blob(blob_store, KEY)
    blob_store.delete(KEY)
    assert not has_blob(blob_store, KEY)


def test_delete_is_idempotent_and_leaves_other_keys(blob_store: BlobStore) -> None:
    other = KEY + "-other"
    blob_store.put(KEY, [b"bytes"])
    blob_store.put(other, [b"other"])

    blob_store.delete(KEY)
    blob_store.delete(KEY)
    blob_store.delete("images/never/stored")

    assert not has_blob(blob_store, KEY)
    with pytest.raises(KeyError):
        blob_store.open(KEY)
    assert read(blob_store, other) == b"other"


def test_keys_lists_every_stored_key(blob_store: BlobStore) -> None:
    keys = [KEY, KEY + "-2", "images/bob/x", "derived/thumb.webp"]
    for key in keys:
        blob_store.put(key, [key.encode()])
    blob_store.delete(KEY + "-2")

    assert sorted(blob_store.keys()) == sorted([KEY, "images/bob/x", "derived/thumb.webp"])


def test_local_path_is_absent_or_a_file_with_exactly_the_bytes(blob_store: BlobStore) -> None:
    data = pattern(300_000)
    blob_store.put(KEY, chunked(data, 4096))

    path = blob_store.local_path(KEY)

    if isinstance(blob_store, FilesystemBlobStore):
        assert path is not None
    if path is not None:
        assert Path(path).read_bytes() == data
    assert blob_store.local_path("images/never/stored") is None


def test_presigned_get_is_absent_or_a_url(blob_store: BlobStore) -> None:
    blob_store.put(KEY, [b"bytes"])

    url = blob_store.presigned_get(KEY, timedelta(minutes=15), "a.jpg", "image/jpeg")

    assert url is None or url.startswith(("https://", "http://"))


# Failures and hostile keys


@pytest.mark.parametrize(
    "error", [OSError("client went away"), Interrupted()], ids=["exception", "base-exception"]
)
def test_failing_chunks_store_nothing_and_leave_no_files(
    blob_store: BlobStore, tmp_path: Path, error: BaseException
) -> None:
    blob_store.put("images/alice/prior", [b"prior"])
    files_before = files_under(tmp_path)

    with pytest.raises(type(error)):
        blob_store.put(KEY, failing_after(pattern(10_000), error))

    assert not has_blob(blob_store, KEY)
    with pytest.raises(KeyError):
        blob_store.open(KEY)
    assert blob_store.keys() == ["images/alice/prior"]
    assert files_under(tmp_path) == files_before


@pytest.mark.parametrize(
    "error", [OSError("client went away"), Interrupted()], ids=["exception", "base-exception"]
)
def test_failing_chunks_leave_the_existing_blob_untouched(
    blob_store: BlobStore, tmp_path: Path, error: BaseException
) -> None:
    original = pattern(50_000, seed=1)
    blob_store.put(KEY, chunked(original, 5000))
    files_before = files_under(tmp_path)

    with pytest.raises(type(error)):
        blob_store.put(KEY, failing_after(pattern(20_000, seed=2), error))

    assert read(blob_store, KEY) == original
    assert files_under(tmp_path) == files_before


# Writers: bytes handed over piece by piece, from whichever thread has them


@pytest.mark.parametrize(
    ("size", "piece_size"),
    [(0, 1), (100_000, 7_001), (9 * MIB + 5, MIB)],
    ids=["empty", "small-pieces", "past-one-s3-part"],
)
def test_a_writer_stores_its_pieces_under_the_key_only_once_committed(
    blob_store: BlobStore, size: int, piece_size: int
) -> None:
    data = pattern(size)
    writer = blob_store.writer(KEY)
    for piece in chunked(data, piece_size):
        writer.write(piece)
        assert not has_blob(blob_store, KEY)

    stored = writer.commit()

    assert stored.size == size
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert read(blob_store, KEY) == data


def test_a_writer_takes_its_pieces_from_one_thread_after_another(blob_store: BlobStore) -> None:
    data = pattern(300_000)
    writer = blob_store.writer(KEY)

    for piece in chunked(data, 100_000):
        # A new thread each time: an upload's pieces go to whichever worker is free.
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(writer.write, piece).result()
    with ThreadPoolExecutor(max_workers=1) as pool:
        stored = pool.submit(writer.commit).result()

    assert stored.size == len(data)
    assert read(blob_store, KEY) == data


@pytest.mark.parametrize("size", [50_000, 9 * MIB], ids=["small", "past-one-s3-part"])
def test_an_aborted_writer_leaves_nothing_and_the_existing_blob_untouched(
    blob_store: BlobStore, tmp_path: Path, size: int
) -> None:
    original = pattern(40_000, seed=1)
    blob_store.put(KEY, [original])
    files_before = files_under(tmp_path)
    writer = blob_store.writer(KEY)
    for piece in chunked(pattern(size, seed=2), MIB):
        writer.write(piece)

    writer.abort()
    writer.abort()

    assert read(blob_store, KEY) == original
    assert blob_store.keys() == [KEY]
    assert files_under(tmp_path) == files_before
    with pytest.raises(ValueError):
        writer.write(b"more")


def test_a_committed_writer_takes_nothing_more_and_an_abort_is_harmless(
    blob_store: BlobStore,
) -> None:
    writer = blob_store.writer(KEY)
    writer.write(b"whole")
    writer.commit()

    writer.abort()

    assert read(blob_store, KEY) == b"whole"
    with pytest.raises(ValueError):
        writer.write(b"more")
    with pytest.raises(ValueError):
        writer.commit()


def test_concurrent_puts_to_one_key_leave_one_whole_blob(blob_store: BlobStore) -> None:
    versions = [pattern(400_000, seed=n) for n in range(6)]
    barrier = threading.Barrier(len(versions))

    def put(data: bytes) -> None:
        barrier.wait()
        blob_store.put(KEY, chunked(data, 10_000))

    with ThreadPoolExecutor(max_workers=len(versions)) as pool:
        list(pool.map(put, versions))

    assert read(blob_store, KEY) in versions


ODD_KEYS = [
    "images/../../etc/passwd",
    "../../outside",
    "images/a b/ü/%2F",
    "images/%2e%2e/%2e%2e/x",
    "..",
    ".",
    ".tmp-looks-temporary",
    "back\\slash\\..\\..\\x",
    "nul\x00byte",
    "line\nbreak",
    "ünïcödé/日本語/🌅",
    "images/" + "long-" * 49,  # 254 bytes encoded, just within the limit
]


def test_odd_keys_round_trip_and_never_write_outside_the_store(
    blob_store: BlobStore, tmp_path: Path
) -> None:
    store_dir = tmp_path / "data" / "blobs"
    # an absolute key, aimed inside tmp_path so that a broken store cannot write elsewhere
    keys = [*ODD_KEYS, f"{tmp_path}/data/outside-the-store"]
    for n, key in enumerate(keys):
        blob_store.put(key, [f"blob {n}".encode()])

    for n, key in enumerate(keys):
        assert has_blob(blob_store, key), key
        assert read(blob_store, key) == f"blob {n}".encode()
    assert sorted(blob_store.keys()) == sorted(keys)
    assert all(path.is_relative_to(store_dir) for path in files_under(tmp_path))

    for key in keys:
        blob_store.delete(key)
    assert blob_store.keys() == []
    assert files_under(tmp_path) == set()


def test_every_key_the_service_makes_can_be_stored(blob_store: BlobStore) -> None:
    # The longest user id the domain accepts, made of the punctuation it allows, plus an image id.
    user = ("a" + "._@|:+=-" * 16)[:128]
    assert validation.user_id(user) == user
    key = f"images/{user}/01JAAAAAAAAAAAAAAAAAAAAAAA"
    blob_store.put(key, [b"bytes"])
    assert read(blob_store, key) == b"bytes"
    assert blob_store.keys() == [key]


# The filesystem store's own promises, beyond the contract


def test_filesystem_rejects_keys_no_file_name_can_hold(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path / "blobs")
    too_long = "images/" + "x" * 247  # "images%2F" + 247 = 256 bytes

    for key in ("", too_long, "ü" * 43):
        with pytest.raises(ValueError, match="blob key"):
            store.put(key, [b"bytes"])
        assert not has_blob(store, key)
        assert store.local_path(key) is None
        store.delete(key)
        with pytest.raises(KeyError):
            store.open(key)
    store.put(too_long[:-1], [b"fits"])
    assert files_under(tmp_path) == {Path(store.local_path(too_long[:-1]) or "")}


def test_filesystem_blobs_survive_reopening_and_ignore_temporary_files(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    FilesystemBlobStore(root).put(KEY, [b"kept"])
    # what a crash in the middle of a put leaves behind
    stray = Path(FilesystemBlobStore(root).local_path(KEY) or "").parent / ".tmp-crashed"
    stray.write_bytes(b"half")

    reopened = FilesystemBlobStore(root)

    assert reopened.keys() == [KEY]
    assert read(reopened, KEY) == b"kept"


def open_descriptors() -> int:
    return len(list(Path("/proc/self/fd").iterdir()))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_filesystem_download_releases_its_file_when_closed_or_exhausted(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path / "blobs")
    store.put(KEY, [pattern(MIB)])
    before = open_descriptors()

    unstarted = store.open(KEY)
    assert open_descriptors() == before + 1
    unstarted.close()
    assert open_descriptors() == before

    abandoned = store.open(KEY, ByteRange(10, MIB - 10))
    next(abandoned)
    abandoned.close()
    assert open_descriptors() == before

    assert len(b"".join(store.open(KEY))) == MIB
    assert open_descriptors() == before


# Listing for reconciliation


def test_stored_before_lists_blobs_written_before_the_moment_only(blob_store: BlobStore) -> None:
    keys = [KEY, KEY + "/thumbnail", "uploads/bob/01JD0000000000000000000002"]
    for key in keys:
        blob_store.put(key, [b"bytes of " + key.encode()])
    now = datetime.now(UTC)

    # Blob stores keep times to the second at best (S3's LastModified): minutes leave room.
    assert sorted(blob_store.stored_before(now + timedelta(minutes=2))) == sorted(keys)
    assert list(blob_store.stored_before(now - timedelta(minutes=2))) == []


def test_stored_before_omits_deleted_blobs(blob_store: BlobStore) -> None:
    blob_store.put(KEY, [b"kept"])
    blob_store.put(KEY + "-gone", [b"deleted"])
    blob_store.delete(KEY + "-gone")

    assert list(blob_store.stored_before(datetime.now(UTC) + timedelta(minutes=2))) == [KEY]


_PUT_THEN_HANG = """
import sys, time
from pathlib import Path
from adapters.filesystem import FilesystemBlobStore

def chunks():
    yield b"the first half"
    print("writing", flush=True)
    time.sleep(60)
    yield b"the second half"

FilesystemBlobStore(Path(sys.argv[1])).put(sys.argv[2], chunks())
"""


def test_filesystem_listing_removes_what_a_killed_put_left_once_older_than_the_moment(
    tmp_path: Path,
) -> None:
    root = tmp_path / "blobs"
    store = FilesystemBlobStore(root)
    store.put("images/alice/kept", [b"kept"])
    killed_put = subprocess.Popen(
        [sys.executable, "-c", _PUT_THEN_HANG, str(root), KEY], stdout=subprocess.PIPE
    )
    try:
        assert killed_put.stdout is not None
        assert killed_put.stdout.readline() == b"writing\n"
    finally:
        os.kill(killed_put.pid, signal.SIGKILL)
        killed_put.wait()
    kept = {Path(store.local_path("images/alice/kept") or "")}
    left = files_under(root) - kept
    assert [path.name[:5] for path in left] == [".tmp-"]

    # younger than the moment: it might be an upload still arriving, so it stays
    assert list(store.stored_before(datetime.now(UTC) - timedelta(minutes=2))) == []
    assert files_under(root) == kept | left

    assert list(store.stored_before(datetime.now(UTC) + timedelta(minutes=2))) == [
        "images/alice/kept"
    ]
    assert files_under(root) == kept
    assert not has_blob(store, KEY)


def test_filesystem_listing_leaves_a_put_under_way_whole_however_old_its_file(
    tmp_path: Path,
) -> None:
    # Filesystem only: moto in-process serializes requests, so a put blocked mid-body there
    # would block the listing too.
    store = FilesystemBlobStore(tmp_path / "blobs")
    data = pattern(300_000)
    halfway = threading.Event()
    resume = threading.Event()

    def slow_chunks() -> Iterator[bytes]:
        yield data[:100_000]
        halfway.set()
        resume.wait(timeout=30)
        yield data[100_000:]

    with ThreadPoolExecutor(max_workers=1) as pool:
        stored = pool.submit(store.put, KEY, slow_chunks())
        assert halfway.wait(timeout=30)
        # a moment after the temporary file's last write, as reconcile with no grace sees it
        listed = list(store.stored_before(datetime.now(UTC) + timedelta(minutes=2)))
        resume.set()
        assert stored.result(timeout=60).size == len(data)

    assert listed == []
    assert read(store, KEY) == data
    assert files_under(tmp_path) == {Path(store.local_path(KEY) or "")}
