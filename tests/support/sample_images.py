"""Real images made on the spot with Pillow, for tests of every layer."""

from __future__ import annotations

import io

from PIL import Image

FORMATS = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
}


def image_bytes(content_type: str = "image/png", width: int = 8, height: int = 6) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 40)).save(buffer, format=FORMATS[content_type])
    return buffer.getvalue()


def large_png(min_bytes: int) -> bytes:
    """A valid PNG of at least ``min_bytes``: random-looking pixels do not compress."""
    import os

    side = int((min_bytes / 3) ** 0.5) + 1
    while True:
        buffer = io.BytesIO()
        Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buffer, "PNG")
        if buffer.tell() >= min_bytes:
            return buffer.getvalue()
        side += 8
