"""The server secret kept in the data dir: made once, readable only by its owner.

Whoever knows the secret can sign any token, so it is used only from a private data dir, and
only if no one but the server's user could have written or read it (see private_paths).
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from adapters.errors import UnusableDataDir
from adapters.private_paths import PRIVATE_FILE, private_directory, refuse_unless_private

SECRET_FILE = "secret.key"  # noqa: S105 -- the file's name, not a secret
MIN_SECRET_CHARACTERS = 32
_MAX_SECRET_BYTES = 4096
_REMAKE = "remove it to have a new one made (tokens signed with it stop working)"
_START_FIRST = "Start the server first, or name its data dir with --data-dir or IMAGECORE_DATA_DIR"


def load_or_create_secret(data_dir: Path) -> bytes:
    """The secret in ``data_dir``, created atomically on first use so that concurrent starts
    agree on one secret and a crash never leaves a partial one. Raises UnusableDataDir, naming
    the path, for a data dir or secret that is not private, or a secret that cannot be read or
    is not one (empty, not UTF-8 text, shorter than 32 characters)."""
    path = private_directory(data_dir) / SECRET_FILE
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    temporary = data_dir / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    try:
        os.write(fd, secrets.token_hex(32).encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temporary, path)  # fails if another process won the race: then use theirs
    except FileExistsError:
        pass
    finally:
        temporary.unlink()
    try:
        return _read(path)
    except FileNotFoundError:  # a dangling link: it exists for os.link, not for reading
        raise UnusableDataDir(f"cannot read the token secret {path}: {_REMAKE}") from None


def load_secret(data_dir: Path) -> bytes:
    """The secret in ``data_dir``, which must have one: a command that signs for a server
    (`imagecore token`) must not make a data dir or secret that no server uses. Raises
    UnusableDataDir, naming the path looked in, when there is none, and as
    ``load_or_create_secret`` does for one that cannot be trusted."""
    if not data_dir.exists():
        raise UnusableDataDir(
            f"there is no data dir {data_dir}: `imagecore serve` makes it, with its token "
            f"secret, when it first starts. {_START_FIRST}"
        )
    path = private_directory(data_dir) / SECRET_FILE
    try:
        return _read(path)
    except FileNotFoundError:
        raise UnusableDataDir(
            f"the data dir {data_dir} has no token secret ({path}), so no server signs with "
            f"it: `imagecore serve` makes one when it first starts. {_START_FIRST}"
        ) from None


def _read(path: Path) -> bytes:
    """The secret in ``path``. Raises FileNotFoundError if there is none."""
    try:
        # O_NONBLOCK: a FIFO planted in its place must not hang the server; it is refused below.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise UnusableDataDir(f"cannot read the token secret {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)  # of what was opened, so nothing can be swapped in after the check
        if not stat.S_ISREG(info.st_mode):
            raise UnusableDataDir(f"the token secret {path} is not a regular file: {_REMAKE}")
        refuse_unless_private(path, info, "token secret")
        if info.st_mode & (stat.S_IRGRP | stat.S_IROTH):
            raise UnusableDataDir(
                f"group or others may read the token secret {path} (mode "
                f"{stat.S_IMODE(info.st_mode):04o}), so others may have read it and signed tokens "
                f"of their own: {_REMAKE}"
            )
        content = os.read(fd, _MAX_SECRET_BYTES + 1)
    except OSError as exc:
        raise UnusableDataDir(f"cannot read the token secret {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    return _parsed(path, content)


def _parsed(path: Path, content: bytes) -> bytes:
    if len(content) > _MAX_SECRET_BYTES:
        raise UnusableDataDir(
            f"the token secret {path} is longer than {_MAX_SECRET_BYTES} bytes, so it is not "
            f"one this server made: {_REMAKE}"
        )
    try:
        secret = content.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise UnusableDataDir(f"the token secret {path} is not UTF-8 text: {_REMAKE}") from None
    if not secret:
        raise UnusableDataDir(f"the token secret {path} is empty: {_REMAKE}")
    if len(secret) < MIN_SECRET_CHARACTERS:
        raise UnusableDataDir(
            f"the token secret {path} is too short ({len(secret)} characters, at least "
            f"{MIN_SECRET_CHARACTERS} are needed): {_REMAKE}"
        )
    return secret.encode("utf-8")
