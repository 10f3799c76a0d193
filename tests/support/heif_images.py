"""Real HEIC and AVIF files made on the spot: HEIC by pillow-heif (libheif with x265), AVIF by
Pillow (libavif), each with an EXIF block as a phone writes it."""

from __future__ import annotations

import io

import pillow_heif
from PIL import Image

from imagecore.model import GeoPosition

MAKE = 0x010F
MODEL = 0x0110
ORIENTATION = 0x0112
EXIF_IFD = 0x8769
GPS_IFD = 0x8825
DATE_TIME_ORIGINAL = 0x9003

CAMERA_MAKE = "Apple"
CAMERA_MODEL = "iPhone 15 Pro"
CAPTURED_AT = "2024-05-06T07:08:09"
POSITION = GeoPosition(latitude=48.858333, longitude=2.35)
"""The Eiffel Tower, as 48° 51' 30" N, 2° 21' 0" E."""

RED = (255, 0, 0)
BLUE = (0, 0, 255)


def phone_exif(orientation: int | None = None) -> bytes:
    """An EXIF block with a camera, a capture time, a GPS position and ``orientation``."""
    exif = Image.Exif()
    exif[MAKE] = CAMERA_MAKE
    exif[MODEL] = CAMERA_MODEL
    if orientation is not None:
        exif[ORIENTATION] = orientation
    exif.get_ifd(EXIF_IFD)[DATE_TIME_ORIGINAL] = "2024:05:06 07:08:09"
    gps = exif.get_ifd(GPS_IFD)
    gps.update({1: "N", 2: (48.0, 51.0, 30.0), 3: "E", 4: (2.0, 21.0, 0.0)})
    return exif.tobytes()


def marked_picture(width: int, height: int) -> Image.Image:
    """Blue, with its top-left quarter red: where the red lands tells how it was turned."""
    picture = Image.new("RGB", (width, height), BLUE)
    picture.paste(RED, (0, 0, width // 2, height // 2))
    return picture


def heic_bytes(
    width: int = 64,
    height: int = 48,
    exif: bytes | None = None,
    quality: int = 90,
    tile_size: int | None = None,
) -> bytes:
    """A HEIC of ``marked_picture``. An EXIF orientation in ``exif`` is written by libheif as
    the container's rotation (``irot``/``imir``), so the file shows the picture turned. With
    ``tile_size``, the image is a grid of tiles of that size, as phones write it."""
    pillow_heif.register_heif_opener()
    buffer = io.BytesIO()
    options: dict[str, object] = {"quality": quality}
    if tile_size is not None:
        options["tile_size"] = tile_size
    if exif is not None:
        options["exif"] = exif
    marked_picture(width, height).save(buffer, format="HEIF", **options)
    return buffer.getvalue()


def avif_bytes(width: int = 64, height: int = 48, exif: bytes | None = None) -> bytes:
    """An AVIF of ``marked_picture``; as for HEIC, an EXIF orientation becomes ``irot``."""
    buffer = io.BytesIO()
    options: dict[str, object] = {"quality": 90}
    if exif is not None:
        options["exif"] = exif
    marked_picture(width, height).save(buffer, format="AVIF", **options)
    return buffer.getvalue()


def rgba_heic(width: int, height: int) -> bytes:
    """A HEIC with an alpha plane: half of it transparent."""
    pillow_heif.register_heif_opener()
    picture = marked_picture(width, height).convert("RGBA")
    picture.putalpha(Image.linear_gradient("L").resize((width, height)))
    buffer = io.BytesIO()
    picture.save(buffer, format="HEIF", quality=90)
    return buffer.getvalue()


def grey_heic(width: int, height: int) -> bytes:
    """A monochrome HEIC (4:0:0)."""
    pillow_heif.register_heif_opener()
    buffer = io.BytesIO()
    Image.linear_gradient("L").resize((width, height)).save(buffer, format="HEIF", quality=90)
    return buffer.getvalue()


def noisy_heic(width: int, height: int, exif: bytes | None = None) -> bytes:
    """A HEIC whose pixels do not compress, to make a file bigger than an inspected head."""
    import os

    pillow_heif.register_heif_opener()
    picture = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    buffer = io.BytesIO()
    options: dict[str, object] = {"quality": 95}
    if exif is not None:
        options["exif"] = exif
    picture.save(buffer, format="HEIF", **options)
    return buffer.getvalue()
