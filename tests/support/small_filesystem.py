"""A small filesystem of a test's own, to fill up for real: a tmpfs mounted at a fresh directory.

As root it is mounted in the test's own view (``mounted_tmpfs``). Without root, a user and mount
namespace (``unshare -Urm``) may still mount one, but only processes inside that namespace see
it: ``small_filesystem`` gives the command prefix that runs a process there (``nsenter``), so a
server, a command and the test's own looks at the files all run where the filesystem is.
Where neither works, the test is skipped, saying what is missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

MIB = 1024 * 1024

# Run inside the filesystem's view: each file under a directory with its size, and the free space.
_LOOK = """
import json, os, sys
root = sys.argv[1]
files = {}
for folder, _, names in os.walk(root):
    for name in names:
        path = os.path.join(folder, name)
        files[os.path.relpath(path, root)] = os.lstat(path).st_size
space = os.statvfs(root)
print(json.dumps({"files": files, "free": space.f_bavail * space.f_frsize}))
"""

# Run inside the filesystem's view: a file grown until the filesystem has no byte left.
_FILL = """
import errno, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
chunk = bytes(64 * 1024)
while chunk:
    try:
        os.write(fd, chunk)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        chunk = chunk[: len(chunk) // 2]  # the last crumbs, down to a byte
os.close(fd)
"""


@attrs.frozen
class SmallFilesystem:
    path: Path
    command_prefix: tuple[str, ...]
    """What runs a command where the filesystem is mounted (nothing, when the test sees it)."""

    def look(self) -> tuple[dict[str, int], int]:
        """Every file under ``path`` (relative path to size) and the bytes free."""
        seen = json.loads(self._run(_LOOK, str(self.path)))
        return seen["files"], seen["free"]

    def fill_up(self, name: str = "filler") -> Path:
        """A file at ``path / name`` grown until the filesystem has not a byte left, as when
        something else filled the disk."""
        self._run(_FILL, str(self.path / name))
        return self.path / name

    def _run(self, code: str, *arguments: str) -> str:
        result = subprocess.run(
            [*self.command_prefix, sys.executable, "-c", code, *arguments],
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout


@contextlib.contextmanager
def mounted_tmpfs(where: Path, size_bytes: int) -> Iterator[SmallFilesystem]:
    """A tmpfs of ``size_bytes`` at ``where`` in this process's view; needs root."""
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs in the test's own process")
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_bytes},mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs as root here: {mount.stderr.strip()}")
    try:
        yield SmallFilesystem(where, ())
    finally:
        subprocess.run(["umount", "--lazy", str(where)], check=True)


@contextlib.contextmanager
def small_filesystem(where: Path, size_bytes: int) -> Iterator[SmallFilesystem]:
    """A tmpfs of ``size_bytes`` at ``where``: mounted here as root, else in a user and mount
    namespace of its own, which the returned command prefix enters."""
    if os.geteuid() == 0:
        with mounted_tmpfs(where, size_bytes) as disk:
            yield disk
        return
    with _namespace_tmpfs(where, size_bytes) as prefix:
        yield SmallFilesystem(where, prefix)


@contextlib.contextmanager
def _namespace_tmpfs(where: Path, size_bytes: int) -> Iterator[tuple[str, ...]]:
    missing = [tool for tool in ("unshare", "nsenter") if shutil.which(tool) is None]
    if missing:
        tools = " and ".join(missing)
        pytest.skip(f"needs root, or {tools} for a user namespace, to mount a tmpfs")
    where.mkdir(parents=True, exist_ok=True)
    # The namespace lives as long as this process in it; the mount is gone with it.
    holder = subprocess.Popen(
        [
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            'mount -t tmpfs -o size="$1",mode=0700 tmpfs "$2" && echo mounted && exec sleep 3600',
            "sh",
            str(size_bytes),
            str(where),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        if holder.stdout.readline().strip() != "mounted":
            holder.kill()
            _, errors = holder.communicate()
            pytest.skip(
                "needs root, or user namespaces (unshare -Urm), to mount a tmpfs: " + errors.strip()
            )
        yield ("nsenter", f"--target={holder.pid}", "--user", "--mount")
    finally:
        holder.kill()
        holder.wait()
