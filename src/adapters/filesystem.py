"""Blobs as files under a root directory, written so that a key never names a half-written file.

A key is never used as a path: it is percent-encoded into one file name inside a fan-out
directory chosen by its hash, so no key, however odd, can reach outside the root.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, unquote

from adapters.blob_writing import put_through
from adapters.disk_full import full_disk_is_insufficient_storage
from adapters.disk_reserve import DiskReserve
from adapters.early_writeback import start_writeback
from adapters.private_paths import PRIVATE_DIRECTORY
from imagecore.model import ByteRange, StoredBlob

_CHUNK = 256 * 1024
_MAX_NAME_BYTES = 255
_TEMP_PREFIX = ".tmp-"
# Punctuation that user ids may hold and POSIX file names can too: kept as it is, so the longest
# key the service makes (a 128-character user id) still fits in one 255-byte name.
_SAFE_IN_NAMES = "@:+=|"


def fsync_directory(path: Path) -> None:
    """Make a rename or a new entry in ``path`` durable, not only the file's contents."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_if_abandoned(path: Path, cutoff: float) -> None:
    """Remove a temporary file last written before ``cutoff`` whose put is dead: a put under
    way, in this process or another, holds its lock until the file is renamed into place."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:  # renamed into place or removed meanwhile
        return
    try:
        if os.fstat(fd).st_mtime < cutoff:
            with contextlib.suppress(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                # By name: if the put renamed it meanwhile, the name is gone and the blob stays.
                path.unlink(missing_ok=True)
    finally:
        os.close(fd)


def _file_name(key: str) -> str:
    # quote() leaves "." alone; escaping a leading dot rules out ".", ".." and names that could
    # be taken for the temporary files, while unquote() still decodes it back to the key.
    name = quote(key, safe=_SAFE_IN_NAMES)
    if name.startswith("."):
        name = "%2E" + name[1:]
    return name


def key_path(root: Path, key: str) -> Path:
    """Where ``key`` lives under ``root``: one percent-encoded file name in a fan-out directory
    chosen by its hash. Raises ValueError for a key no file name can hold."""
    if not key:
        raise ValueError("a blob key may not be empty")
    name = _file_name(key)
    if len(name) > _MAX_NAME_BYTES:
        raise ValueError(f"the blob key is too long once encoded ({len(name)} bytes)")
    fanout = hashlib.sha256(key.encode()).hexdigest()[:2]
    return root / fanout / name


class FileChunks(Iterator[bytes]):
    """The chunks of an open file up to ``remaining`` bytes; closes the file when exhausted or
    closed, even if iteration never started."""

    def __init__(self, file: BinaryIO, remaining: int | None) -> None:
        self._file = file
        self._remaining = remaining

    def __next__(self) -> bytes:
        if self._file.closed:
            raise StopIteration
        size = _CHUNK if self._remaining is None else min(_CHUNK, self._remaining)
        chunk = self._file.read(size) if size > 0 else b""
        if not chunk:
            self._file.close()
            raise StopIteration
        if self._remaining is not None:
            self._remaining -= len(chunk)
        return chunk

    def close(self) -> None:
        self._file.close()


class _FileBlobWriter:
    """A temporary file beside the blob's path, renamed onto it once whole and durable. Each
    piece is written while ``taking_space`` is held (the disk reserve must be whole); a full
    disk is InsufficientStorage, with the temporary file gone."""

    @full_disk_is_insufficient_storage()
    def __init__(
        self, path: Path, taking_space: Callable[[], AbstractContextManager[None]]
    ) -> None:
        self._path = path
        self._taking_space = taking_space
        self._digest = hashlib.sha256()
        self._size = 0
        fd, temp_name = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=path.parent)
        self._temp = Path(temp_name)
        file = os.fdopen(fd, "wb")
        try:
            # Held until the rename: it tells a put under way from one whose process died
            # (the kernel drops the lock with the process), see _remove_if_abandoned.
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            file.close()
            self._temp.unlink(missing_ok=True)
            raise
        self._file: BinaryIO | None = file

    @full_disk_is_insufficient_storage()
    def write(self, data: bytes) -> None:
        file = self._opened()
        try:
            with self._taking_space():
                file.write(data)
                file.flush()
        except BaseException:
            self.abort()
            raise
        # The disk writes these bytes while they are hashed and the next ones arrive.
        start_writeback(file.fileno(), self._size, len(data))
        self._digest.update(data)
        self._size += len(data)

    @full_disk_is_insufficient_storage()
    def commit(self) -> StoredBlob:
        file = self._opened()
        try:
            file.flush()
            os.fsync(file.fileno())
            self._temp.replace(self._path)
            file.close()
        except BaseException:
            self.abort()
            raise
        self._file = None
        fsync_directory(self._path.parent)
        return StoredBlob(size=self._size, sha256=self._digest.hexdigest())

    def abort(self) -> None:
        if self._file is None:
            return
        file, self._file = self._file, None
        try:
            # Closing flushes what is buffered, which fails again on a full disk; the bytes
            # are thrown away either way, and the descriptor is closed regardless.
            with contextlib.suppress(OSError):
                file.close()
        finally:
            self._temp.unlink(missing_ok=True)

    def _opened(self) -> BinaryIO:
        if self._file is None:
            raise ValueError("this blob writer is closed")
        return self._file


class FilesystemBlobStore:
    """The ``BlobStore`` port on a local directory (``DATA_DIR/blobs``). With a ``reserve``,
    bytes are written only while it is whole: a full disk refuses them (InsufficientStorage)
    and keeps the reserve for deletes."""

    def __init__(self, root: Path, reserve: DiskReserve | None = None) -> None:
        # absolute, so that local_path() stays right for a server that changes directory
        self._root = root.absolute()
        # Folders 0o700 whatever the umask; tempfile makes the files 0o600 already.
        self._root.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
        self._taking_space: Callable[[], AbstractContextManager[None]] = (
            contextlib.nullcontext if reserve is None else reserve.taking_space
        )

    @property
    def root(self) -> Path:
        return self._root

    def _path(self, key: str) -> Path:
        """Where ``key`` lives. Raises ValueError for a key no file name can hold."""
        return key_path(self._root, key)

    def _existing_path(self, key: str) -> Path | None:
        try:
            return self._path(key)
        except ValueError:  # a key that could never have been stored names no blob
            return None

    def put(self, key: str, chunks: Iterable[bytes], content_type: str | None = None) -> StoredBlob:
        return put_through(self.writer(key), chunks)

    @full_disk_is_insufficient_storage()
    def writer(self, key: str) -> _FileBlobWriter:
        path = self._path(key)
        directory = path.parent
        if not directory.is_dir():
            directory.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
            fsync_directory(self._root)
        return _FileBlobWriter(path, self._taking_space)

    def open(self, key: str, byte_range: ByteRange | None = None) -> Iterator[bytes]:
        path = self._existing_path(key)
        if path is None:
            raise KeyError(key)
        try:
            file = path.open("rb")
        except FileNotFoundError:
            raise KeyError(key) from None
        if byte_range is None:
            return FileChunks(file, None)
        try:
            file.seek(byte_range.start)
        except BaseException:
            file.close()
            raise
        return FileChunks(file, byte_range.length)

    def delete(self, key: str) -> None:
        path = self._existing_path(key)
        if path is not None:
            path.unlink(missing_ok=True)

    def presigned_get(
        self,
        key: str,
        ttl: timedelta,
        filename: str,
        content_type: str,
        *,
        as_stored: bool = False,
    ) -> str | None:
        return None

    def local_path(self, key: str) -> str | None:
        path = self._existing_path(key)
        return str(path) if path is not None and path.is_file() else None

    def stored_before(self, moment: datetime) -> Iterator[str]:
        """The port's listing; on the way it removes the temporary files that puts killed
        before ``moment`` left behind, since no key names them for reconcile to delete."""
        cutoff = moment.timestamp()
        for directory in self._root.iterdir():
            if not directory.is_dir():
                continue
            for entry in directory.iterdir():
                if entry.name.startswith(_TEMP_PREFIX):
                    _remove_if_abandoned(entry, cutoff)
                    continue
                if not entry.is_file():
                    continue
                with contextlib.suppress(FileNotFoundError):  # deleted while we looked
                    if entry.stat().st_mtime < cutoff:
                        yield unquote(entry.name)

    def keys(self) -> list[str]:
        """Every stored key, sorted; for reconciliation, which looks for orphaned blobs."""
        found = [
            unquote(entry.name)
            for directory in self._root.iterdir()
            if directory.is_dir()
            for entry in directory.iterdir()
            if not entry.name.startswith(".") and entry.is_file()
        ]
        return sorted(found)
