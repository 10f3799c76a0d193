"""The data dir and what the server keeps in it: private to the server's user.

Whoever can write to the data dir could plant a token secret (and forge every token), or change
the database under the server; whoever can read it sees every private title, tag and position.
So what the server makes there is 0o700 or 0o600 whatever the umask (a mode only loses bits to
the umask), and it refuses a data dir, or a file in it, that another user owns or that group or
others may write to.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from adapters.errors import UnusableDataDir

PRIVATE_DIRECTORY = 0o700
PRIVATE_FILE = 0o600


def refuse_unless_private(path: Path, info: os.stat_result, what: str) -> None:
    """Raises UnusableDataDir, naming ``path``, if another user owns it or group or others may
    write to it (``info`` is its stat)."""
    if info.st_uid != os.geteuid():
        raise UnusableDataDir(
            f"the {what} {path} belongs to another user (uid {info.st_uid}), not to the "
            f"server's (uid {os.geteuid()}): whoever owns it can change what the server trusts"
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnusableDataDir(
            f"group or others may write to the {what} {path} (mode {mode:04o}): anything in "
            "it could have been planted. Check what is there, then make it private "
            f"(chmod {PRIVATE_DIRECTORY if stat.S_ISDIR(info.st_mode) else PRIVATE_FILE:o})"
        )


def private_directory(path: Path, what: str = "data dir") -> Path:
    """``path``, a directory only the server's user may enter: made 0o700 if missing, and
    tightened to 0o700 if others may read or enter it (the directory guards everything in it,
    so what was made there before is private from now on). Raises UnusableDataDir if another
    user owns it or group or others may write to it."""
    try:
        path.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
    except FileExistsError:
        raise UnusableDataDir(f"the {what} {path} is not a directory") from None
    info = path.stat()
    refuse_unless_private(path, info, what)
    mode = stat.S_IMODE(info.st_mode)
    if mode & ~PRIVATE_DIRECTORY:
        path.chmod(mode & PRIVATE_DIRECTORY)
    return path
