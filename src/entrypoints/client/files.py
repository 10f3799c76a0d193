"""The files of the client commands: the image files of a folder to upload, and downloads
saved under a safe name, whole or not at all."""

from __future__ import annotations

import os
import re
import secrets
import unicodedata
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx

from entrypoints.client.api import ClientError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".gif", ".webp", ".heic", ".heif", ".avif"})
_MAX_FILENAME_BYTES = 255
_EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/heic": ".heic",
    "image/heif": ".heif",
    "image/avif": ".avif",
}
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_HEIF_BRANDS = frozenset({b"mif1", b"msf1"})


class DestinationExists(ClientError):
    """The file a download would write is already there, and overwriting was not asked for."""


def image_files(root: Path) -> list[Path]:
    """The files under ``root`` with an image extension, in a stable order; symlinked folders
    are not followed, so a link loop cannot make the walk endless."""
    found: list[Path] = []
    for folder, subfolders, names in os.walk(root):
        subfolders.sort()
        found.extend(
            Path(folder) / name
            for name in sorted(names)
            if Path(name).suffix.lower() in IMAGE_EXTENSIONS
        )
    return found


_FILENAME_STAR = re.compile(r"filename\*\s*=\s*UTF-8''([^;\s]+)", re.IGNORECASE)
_FILENAME_PLAIN = re.compile(r'filename\s*=\s*"([^"]*)"', re.IGNORECASE)


def disposition_filename(header: str | None) -> str | None:
    """The file name a Content-Disposition names: the RFC 5987 UTF-8 one, else the plain one."""
    if not header:
        return None
    if match := _FILENAME_STAR.search(header):
        return urllib.parse.unquote(match.group(1), errors="replace")
    if match := _FILENAME_PLAIN.search(header):
        return match.group(1)
    return None


def safe_filename(name: str | None, fallback: str) -> str:
    """``name`` reduced to one harmless path component: no folders, no control characters, not
    hidden, not too long for a file system; ``fallback`` when nothing is left."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    base = base.strip().lstrip(".").strip()
    while len(base.encode()) > _MAX_FILENAME_BYTES:
        stem, dot, suffix = base.rpartition(".")
        base = f"{stem[:-1]}{dot}{suffix}" if dot and len(suffix) < 16 and stem else base[:-1]
    return base or fallback


def fallback_filename(image_id: str, content_type: str | None) -> str:
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    return safe_filename(image_id, "image") + _EXTENSIONS.get(kind, "")


def filename_in(folder: Path, response: httpx.Response, image_id: str) -> Path:
    """Where a download goes inside ``folder``: the server's file name, made safe."""
    fallback = fallback_filename(image_id, response.headers.get("content-type"))
    name = safe_filename(
        disposition_filename(response.headers.get("content-disposition")), fallback
    )
    target = folder / name
    if target.parent.resolve() != folder.resolve():  # a second guard: never outside the folder
        raise ClientError(f"refusing the file name {name!r}: it leaves {folder}")
    return target


def _scratch_file(folder: Path) -> tuple[int, Path]:
    """A new file in ``folder`` for a download under way, created with the mode the user's
    umask allows (as any program's new file is; mkstemp would make it 0600 whatever the umask),
    under a name that is not taken (O_EXCL)."""
    for _ in range(100):
        path = folder / f".imagecore-{secrets.token_hex(8)}.part"
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free name for a temporary file in {folder}")


def save(chunks: Iterator[bytes], target: Path, *, overwrite: bool) -> int:
    """Write ``chunks`` to ``target`` through a temporary file beside it, so that a failed
    download leaves nothing and an existing file is replaced only when ``overwrite`` says so
    (checked atomically: a link fails if the name is taken). The bytes written are returned."""
    if not overwrite and target.exists():
        raise DestinationExists(f"{target} exists: use --force to overwrite it")
    descriptor, scratch_path = _scratch_file(target.parent)
    try:
        with os.fdopen(descriptor, "wb") as file:
            written = write_to(file, chunks)
        if overwrite:
            scratch_path.replace(target)
        else:
            try:
                os.link(scratch_path, target)
            except FileExistsError:
                raise DestinationExists(f"{target} exists: use --force to overwrite it") from None
        return written
    finally:
        scratch_path.unlink(missing_ok=True)


def write_to(file: IO[bytes], chunks: Iterator[bytes]) -> int:
    """Write ``chunks`` to an open binary file (stdout for ``-o -``); the bytes written."""
    written = 0
    for chunk in chunks:
        file.write(chunk)
        written += len(chunk)
    file.flush()
    return written


def sniff_content_type(head: bytes) -> str | None:
    """The image type the first bytes of a file announce, as the server decides it from the
    bytes too; None for anything else."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":  # the server reads the coding from the boxes; the brand suffices
        brand = head[8:12]
        if brand in _HEIC_BRANDS:
            return "image/heic"
        if brand in _AVIF_BRANDS:
            return "image/avif"
        if brand in _HEIF_BRANDS:
            return "image/heif"
    return None
