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


GPS_IFD, EXIF_IFD, BODY_SERIAL_NUMBER = 0x8825, 0x8769, 0xA431
CAMERA_SERIAL = "SN-0042-7781"


def located_jpeg(width: int = 640, height: int = 480) -> bytes:
    """A JPEG whose EXIF says where it was taken (a GPS position), with which camera, and the
    camera body's serial number (CAMERA_SERIAL)."""
    exif = Image.Exif()
    exif[0x010F] = "Canon"  # Make
    exif.get_ifd(EXIF_IFD)[BODY_SERIAL_NUMBER] = CAMERA_SERIAL
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (48.0, 51.0, 30.0), 3: "E", 4: (2.0, 21.0, 0.0)})
    buffer = io.BytesIO()
    picture = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    picture.save(buffer, "JPEG", quality=90, exif=exif.tobytes())
    return buffer.getvalue()


def gps_of(data: bytes) -> dict[int, object]:
    """The GPS IFD of an image's EXIF: empty where it has none."""
    with Image.open(io.BytesIO(data)) as picture:
        return dict(picture.getexif().get_ifd(GPS_IFD))
