"""Decoding HEIF-family images (HEIC, AVIF) for the renderer.

The libvips of pyvips-binary reads HEIF through libheif with an AV1 decoder but no HEVC one, so
an AVIF is loaded by libvips itself (``heifload_source``), and a HEIC (what iPhones write) is
decoded by the libheif and libde265 that pillow-heif bundles, its pixels then handed to libvips.
Both apply the container's rotation and mirroring (``irot``, ``imir``), so the image comes out
upright and its EXIF orientation must not be applied again.

Neither decodes as a stream: libheif decodes the whole image, and needs the whole file, before
a row is handed on. What that holds is estimated by :func:`heif_decode_bytes` from the header,
to refuse a costly image before decoding it. The figures are measured by
bench/heif_decoders.py.
"""

from __future__ import annotations

import functools
from typing import Any

import pillow_heif
import pyvips

from adapters.heif_header import HeifHeader

HEVC_CONTENT_TYPES = frozenset({"image/heic"})
"""Decoded by :func:`decode_heic`."""
AV1_CONTENT_TYPES = frozenset({"image/avif", "image/heif"})
"""Loaded by :func:`load_avif`: the inspector calls an AV1-coded HEIF without an AVIF brand
image/heif (every other HEIF it accepts is HEVC-coded, image/heic)."""

# Bytes held per pixel at the peak of a decode, as a function of the bytes per pixel of the
# decoded planes and of the RGB(A) made from them (their sum: 4.5 for a 4:2:0 photo, 8 for
# 4:4:4 with alpha). Fitted over the two 12-megapixel shapes of bench/heif_decoders.py and
# rounded up; the growth measured (decode and a 256-pixel thumbnail, file aside):
#   HEIC by pillow-heif:  4:2:0 RGB 75 MiB (6.5 B/px),  4:4:4 RGBA 156 MiB (13.4 B/px)
#   AVIF by libvips:      4:2:0 RGB 192 MiB (16.5 B/px), 4:4:4 RGBA 233 MiB (20.1 B/px)
# libde265 and libheif hold the planes, libheif's RGB(A) and a copy for Python: about twice
# what they decode. libvips' AV1 decoder holds some 12 bytes a pixel whatever the shape.
_HEVC_COPIES = 1.75
_AV1_FIXED_BYTES_PER_PIXEL = 12.0
_AV1_COPIES = 1.1


_BANDS = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}
"""The bands of each 8-bit mode pillow-heif decodes to (grey, grey and alpha, colour...)."""


@functools.cache
def _configure_libheif() -> None:
    """Once per process: one decoding thread (the job queue's threads are the parallelism), and
    no thumbnails, depth or auxiliary images read besides the primary image (alpha still is)."""
    pillow_heif.options.DECODE_THREADS = 1
    pillow_heif.options.THUMBNAILS = False
    pillow_heif.options.DEPTH_IMAGES = False
    pillow_heif.options.AUX_IMAGES = False


def decode_heic(data: bytes) -> pyvips.Image:
    """The primary image of the HEIC (or any HEVC-coded HEIF) file ``data``, upright, as an
    8-bit sRGB (grey for a monochrome one) libvips image, with alpha where the file has one;
    its pixels are decoded now, in memory the image keeps alive.

    Raises ValueError for bytes libheif cannot decode (not a HEIF, cut off, corrupt, beyond
    libheif's own security limits).
    """
    _configure_libheif()
    try:
        heif = pillow_heif.open_heif(data, convert_hdr_to_8bit=True)
        pixels = heif.data
        mode = heif.mode
        width, height = heif.size
    except (RuntimeError, SyntaxError, EOFError) as error:
        raise ValueError(f"not a HEIF image libheif can decode: {error}") from error
    bands = _BANDS.get(mode)
    if bands is None:  # convert_hdr_to_8bit makes every other mode one of these
        raise ValueError(f"a HEIF image decoded as {mode!r}, not one of {sorted(_BANDS)}")
    image: pyvips.Image = pyvips.Image.new_from_memory(pixels, width, height, bands, "uchar")
    return image.copy(interpretation="b-w" if bands < 3 else "srgb")


def load_avif(source: pyvips.Source, **options: Any) -> pyvips.Image:
    """The primary image of the AVIF (or AV1-coded HEIF) read from ``source``, upright, as
    libvips loads it (lazily: decoded when its pixels are first asked for). ``options`` go to
    libvips' heifload (``access``, ``fail_on``...)."""
    image: pyvips.Image = pyvips.Image.heifload_source(source, **options)
    return image


def heif_decode_bytes(header: HeifHeader, file_size: int) -> int:
    """The bytes decoding the HEIF image of ``header`` (see
    :func:`adapters.heif_header.read_heif_header`), a file of ``file_size`` bytes, holds at its
    peak beyond what any libvips decode holds, estimated: the whole file, and the whole image
    decoded at full size whatever the size wanted."""
    decoded = header.plane_bytes + (4 if header.alpha else 3)
    if header.content_type in HEVC_CONTENT_TYPES:
        per_pixel = _HEVC_COPIES * decoded
    elif header.content_type in AV1_CONTENT_TYPES:
        per_pixel = _AV1_FIXED_BYTES_PER_PIXEL + _AV1_COPIES * decoded
    else:
        raise ValueError(f"{header.content_type!r} is not a HEIF image type")
    return int(file_size + header.width * header.height * per_pixel)
