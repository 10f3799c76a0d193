"""A small file of fixed layout that every worker process of one server maps into memory, and
the leases that tell which of those processes are alive.

The server's workers are separate processes; what they must agree on at every request (each
user's request budget, the uploads under way) lives in such a file. ``prepare_shared_file``
makes it afresh when the server starts, before any worker, and each worker maps it with
``SharedFile``. Changes are made under an exclusive ``flock`` of the file: the kernel drops it
when its holder dies, so a worker killed mid-change never leaves the others waiting. A worker
killed mid-change may leave the record it was writing half written; each layout keeps its
records independent of one another so that the worst is one wrong record, never a broken table.

The file is written out whole when made (zeros, not a sparse file): a page of a mapped file
that has no block on a full disk would kill the worker with SIGBUS when first written.
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import secrets
import threading
from pathlib import Path

from adapters.errors import UnusableDataDir
from adapters.private_paths import PRIVATE_FILE, private_directory

MAGIC = b"imagecore shared file 1\n"
HEADER_BYTES = 64
KEY_BYTES = 16
"""Each file carries a random key of its own to hash what it is keyed by (user ids), so that
no one can choose ids whose hashes collide."""


def _header(layout: bytes, key: bytes) -> bytes:
    header = MAGIC + key + layout
    if len(header) > HEADER_BYTES:
        raise ValueError("a shared file's layout description is at most 24 bytes")
    return header.ljust(HEADER_BYTES, b"\0")


def prepare_shared_file(path: Path, layout: bytes, size: int) -> None:
    """Make ``path`` a fresh shared file of ``size`` bytes after the header, for ``layout``
    (a short description of what it holds, which ``SharedFile`` checks). It replaces any file
    there atomically: processes that mapped the old one keep it, new ones get this one."""
    private_directory(path.parent, "shared state dir")
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(_header(layout, secrets.token_bytes(KEY_BYTES)))
            remaining = size
            while remaining:
                piece = min(remaining, 1 << 20)
                file.write(bytes(piece))
                remaining -= piece
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


class SharedFile:
    """``path`` mapped into this process, ``size`` bytes after the header, as
    ``prepare_shared_file`` made it for ``layout``. ``lock`` gives the bytes to one thread of one
    process at a time, until ``unlock``."""

    def __init__(self, path: Path, layout: bytes, size: int) -> None:
        self.path = path
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError as exc:
            raise UnusableDataDir(
                f"cannot open the workers' shared file {path}: {exc.strerror} (it is made "
                "when `imagecore serve` starts)"
            ) from None
        try:
            if os.fstat(self._fd).st_size != HEADER_BYTES + size:
                raise UnusableDataDir(
                    f"the workers' shared file {path} is not the size its layout needs: it was "
                    "made by a server with other settings; restart `imagecore serve`"
                )
            self._map = mmap.mmap(self._fd, HEADER_BYTES + size)
        except BaseException:
            os.close(self._fd)
            raise
        if bytes(self._map[: len(MAGIC)]) != MAGIC or (
            bytes(self._map[len(MAGIC) + KEY_BYTES : HEADER_BYTES]).rstrip(b"\0") != layout
        ):
            self.close()
            raise UnusableDataDir(
                f"the workers' shared file {path} holds another layout than {layout!r}: it was "
                "made by a server with other settings; restart `imagecore serve`"
            )
        self._key = bytes(self._map[len(MAGIC) : len(MAGIC) + KEY_BYTES])
        self.data = memoryview(self._map)[HEADER_BYTES:]
        self._thread_lock = threading.Lock()  # flock excludes processes, not threads sharing one

    def hash_of(self, text: str) -> int:
        """``text``'s 64-bit hash with this file's key; never 0, which layouts use for "none"."""
        digest = hashlib.blake2b(text.encode(), digest_size=8, key=self._key).digest()
        return int.from_bytes(digest, "little") or 1

    def lock(self) -> memoryview:
        """The bytes, for this thread alone until ``unlock``. (Not a context manager: one
        costs more than the two system calls of the lock, on every request.)"""
        self._thread_lock.acquire()
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._thread_lock.release()
            raise
        return self.data

    def unlock(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._thread_lock.release()

    def close(self) -> None:
        if hasattr(self, "data"):
            self.data.release()
        self._map.close()
        os.close(self._fd)


class Leases:
    """One lease file per live process in ``directory``, held with an exclusive ``flock`` for the
    life of the process: when a process dies, however it dies, the kernel lets go of its lease,
    and any other process can tell. Holders are random 64-bit numbers, never reused, so a new
    process can never be taken for a dead one (as a reused process id could)."""

    def __init__(self, directory: Path) -> None:
        self.directory = private_directory(directory, "leases dir")
        self.mine = secrets.randbits(63) + 1  # never 0, which the layouts use for "nobody"
        # Locked before it has its name: a lease file that can be found is always held.
        unnamed = self.directory / f".{self.mine:016x}"
        self._fd = os.open(unnamed, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        unnamed.rename(self._path(self.mine))

    def _path(self, holder: int) -> Path:
        return self.directory / f"{holder:016x}"

    def alive(self, holder: int) -> bool:
        """Whether the process that took ``holder`` still lives. A dead one's lease file is
        removed on the way."""
        if holder == self.mine:
            return True
        try:
            fd = os.open(self._path(holder), os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        self._path(holder).unlink(missing_ok=True)
        return False


def remove_dead_leases(directory: Path) -> None:
    """Remove the lease files in ``directory`` that no live process holds (a server that was
    killed left them)."""
    if not directory.is_dir():
        return
    for path in directory.iterdir():
        if path.name.startswith("."):
            continue  # a lease being made, not yet held
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # held: its process lives
        finally:
            os.close(fd)
        path.unlink(missing_ok=True)
