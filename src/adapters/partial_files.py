"""The partial bytes of resumable uploads as files under a root directory (``DATA_DIR/partial``),
one per key, laid out as the blob store lays out its blobs.

A writer holds an exclusive ``flock`` on the file for as long as it appends, so two requests
(in one worker process or in two) never append to one upload at once; the lock goes with the
descriptor, so a killed process never leaves it held. Bytes are fsynced before a commit
returns: the offset a client is told survives a crash.

A whole upload becomes its image's original by a hard link into the blob store's directory
(``mover``): its gigabytes are read once more, to be checked and hashed, but never written
again. The partial file's name is removed only once the image is stored, so a crash in between
leaves the upload to finish again.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote

from adapters.disk_full import full_disk_is_insufficient_storage
from adapters.disk_reserve import DiskReserve
from adapters.filesystem import FileChunks, fsync_directory, key_path
from adapters.private_paths import PRIVATE_DIRECTORY, PRIVATE_FILE
from imagecore.errors import Conflict, Locked, NotFound, PayloadTooLarge
from imagecore.model import StoredBlob

_NO_LINKS = frozenset({errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP})
"""A filesystem that takes no (more) hard link here: the bytes are copied instead."""


def _copy_durably(source: Path, target: Path) -> None:
    shutil.copyfile(source, target)  # in the kernel where it can
    target.chmod(PRIVATE_FILE)
    with target.open("rb+") as copy:
        os.fsync(copy.fileno())


class _PartialFileWriter:
    """Appends to one partial file, holding its lock until commit or abort."""

    def __init__(
        self,
        fd: int,
        offset: int,
        max_size: int,
        taking_space: Callable[[], AbstractContextManager[None]],
    ) -> None:
        self._fd = fd
        self._offset = offset
        self._position = offset
        self._max_size = max_size
        self._taking_space = taking_space

    @full_disk_is_insufficient_storage()
    def write(self, data: bytes) -> None:
        self._check_open()
        if self._position + len(data) > self._max_size:
            raise PayloadTooLarge(f"the upload holds at most {self._max_size} bytes")
        view = memoryview(data)
        with self._taking_space():
            while view:
                written = os.pwrite(self._fd, view, self._position)
                self._position += written
                view = view[written:]

    @full_disk_is_insufficient_storage()
    def commit(self) -> int:
        self._check_open()
        try:
            os.fsync(self._fd)
        except BaseException:
            self.abort()
            raise
        self._close()
        return self._position

    def abort(self) -> None:
        if self._fd < 0:
            return
        with contextlib.suppress(OSError):  # a file deleted meanwhile is gone anyway
            os.ftruncate(self._fd, self._offset)
        self._close()

    def _close(self) -> None:
        fd, self._fd = self._fd, -1
        os.close(fd)  # releases the lock

    def _check_open(self) -> None:
        if self._fd < 0:
            raise ValueError("this writer is finished")


class _PartialMover:
    """Stores a whole partial file as a blob by a hard link, once the bytes read back from it
    (handed to ``write``) have all been counted and hashed."""

    def __init__(self, source: Path, target: Path) -> None:
        self._source = source
        self._target = target
        self._digest = hashlib.sha256()
        self._size = 0

    def write(self, data: bytes) -> None:
        self._digest.update(data)
        self._size += len(data)

    def commit(self) -> StoredBlob:
        size = self._source.stat().st_size
        if size != self._size:
            raise ValueError(f"{self._size} bytes were checked of a {size}-byte upload")
        self._target.parent.mkdir(mode=PRIVATE_DIRECTORY, exist_ok=True)
        # Linked under a temporary name, then renamed: a blob key names whole bytes or none.
        temporary = self._target.with_name(f".tmp-link-{secrets.token_hex(8)}")
        try:
            os.link(self._source, temporary)
        except OSError as error:
            if error.errno not in _NO_LINKS:
                raise
            _copy_durably(self._source, temporary)
        try:
            temporary.replace(self._target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        fsync_directory(self._target.parent)
        return StoredBlob(size=self._size, sha256=self._digest.hexdigest())

    def abort(self) -> None:
        """Nothing was stored before commit."""


class PartialFiles:
    """The ``PartialBlobs`` port on a local directory. With a ``reserve``, bytes are written
    only while it is whole: a full disk refuses them (InsufficientStorage). With ``blobs_root``
    (the filesystem blob store's root), a whole upload is stored as a blob by a hard link."""

    def __init__(
        self, root: Path, reserve: DiskReserve | None = None, blobs_root: Path | None = None
    ) -> None:
        self._root = root.absolute()
        self._blobs_root = None if blobs_root is None else blobs_root.absolute()
        self._root.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
        self._taking_space: Callable[[], AbstractContextManager[None]] = (
            contextlib.nullcontext if reserve is None else reserve.taking_space
        )

    def _path(self, key: str) -> Path:
        return key_path(self._root, key)

    def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except (FileNotFoundError, ValueError):
            return None

    @full_disk_is_insufficient_storage()
    def create(self, key: str) -> None:
        path = self._path(key)
        path.parent.mkdir(mode=PRIVATE_DIRECTORY, exist_ok=True)
        with self._taking_space():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            fsync_directory(path.parent)

    def appender(self, key: str, offset: int, max_size: int) -> _PartialFileWriter:
        try:
            path = self._path(key)
            fd = os.open(path, os.O_RDWR)
        except (FileNotFoundError, ValueError):
            raise NotFound("no such partial upload") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise Locked(
                    "another request is sending bytes to this upload: try again once it ended"
                ) from None
            # Deleted (or made again) between the open and the lock: not the file we opened.
            try:
                if path.stat().st_ino != os.fstat(fd).st_ino:
                    raise NotFound("no such partial upload")
            except FileNotFoundError:
                raise NotFound("no such partial upload") from None
            size = os.fstat(fd).st_size
            if offset != size:
                raise Conflict(f"the upload holds {size} bytes: send from offset {size}")
        except BaseException:
            os.close(fd)
            raise
        return _PartialFileWriter(fd, offset, max_size, self._taking_space)

    def open(self, key: str) -> Iterator[bytes]:
        try:
            file = self._path(key).open("rb")
        except (FileNotFoundError, ValueError):
            raise KeyError(key) from None
        return FileChunks(file, None)

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError, ValueError):
            self._path(key).unlink()

    def mover(self, key: str, blob_key: str) -> _PartialMover | None:
        if self._blobs_root is None:
            return None
        source = self._path(key)
        try:
            if source.stat().st_dev != self._blobs_root.stat().st_dev:
                return None  # another filesystem: no link can reach it
        except FileNotFoundError:
            return None
        return _PartialMover(source, key_path(self._blobs_root, blob_key))

    def stored_before(self, moment: datetime) -> Iterator[str]:
        cutoff = moment.timestamp()
        for directory in self._root.iterdir():
            if not directory.is_dir():
                continue
            for entry in directory.iterdir():
                with contextlib.suppress(FileNotFoundError):  # deleted while we looked
                    if entry.is_file() and entry.stat().st_mtime < cutoff:
                        yield unquote(entry.name)
