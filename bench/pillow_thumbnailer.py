"""The thumbnailer the service had before libvips, on Pillow: the reference that
bench/thumbnail_decoders.py measures libvips against. Kept here, not in src: the service
no longer uses it (its figures are in docs/benchmarks.md)."""

from __future__ import annotations

import io
import tempfile
import warnings
from collections.abc import Iterable

from PIL import Image

from adapters.exif import exif_facts

SPOOL_IN_MEMORY = 8 * 1024 * 1024
"""Uploads up to this size are decoded from memory; bigger ones go to a temporary file."""

JPEG_QUALITY = 85
WEBP_QUALITY = 80

_INPUT_FORMATS = ["JPEG", "PNG", "GIF", "WEBP"]
_OUTPUT_FORMATS = {"image/jpeg": "JPEG", "image/webp": "WEBP"}

# What each EXIF orientation (2 to 8) asks for to show the image upright.
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class PillowThumbnailer:
    """The :class:`imagecore.ports.Thumbnailer` for JPEG, PNG, GIF and WebP uploads.

    ``max_pixels`` is the largest width x height it will decode; above that it raises rather
    than spend the memory (about 4 bytes a pixel, once for the decoded image).
    """

    def __init__(self, max_pixels: int = 100_000_000) -> None:
        self._max_pixels = max_pixels

    def thumbnail(self, chunks: Iterable[bytes], max_side: int, content_type: str) -> bytes:
        """The image in ``chunks`` scaled to fit ``max_side`` x ``max_side`` (aspect ratio kept,
        never enlarged), turned upright as its EXIF orientation says, encoded as
        ``content_type`` (image/jpeg: RGB, transparency over white; image/webp: alpha kept)
        with no metadata at all. Only the first frame of an animation is used.

        Raises ValueError for an unknown ``content_type``, a ``max_side`` below 1 or an image
        of more than ``max_pixels`` pixels; whatever Pillow raises for bytes it cannot decode
        (``PIL.UnidentifiedImageError`` for what is no image at all) propagates.
        """
        output_format = _OUTPUT_FORMATS.get(content_type)
        if output_format is None:
            raise ValueError(f"cannot encode a thumbnail as {content_type!r}")
        if max_side < 1:
            raise ValueError(f"a thumbnail's side must be at least 1 pixel, not {max_side}")
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
            for chunk in chunks:
                spool.write(chunk)
            spool.seek(0)
            picture = self._decode(spool, max_side)
        buffer = io.BytesIO()
        if output_format == "JPEG":
            picture = _over_white(picture)
            picture.save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=True)
        else:
            picture.save(buffer, "WEBP", quality=WEBP_QUALITY)
        return buffer.getvalue()

    def _decode(self, source: tempfile.SpooledTemporaryFile[bytes], max_side: int) -> Image.Image:
        """The first frame of the image in ``source`` scaled and upright, as a new RGB or RGBA
        image that carries none of the original's metadata."""
        # Pillow warns above Image.MAX_IMAGE_PIXELS: our own max_pixels check is the guard here.
        # It still raises above twice that, before we see the size: a second, coarser guard.
        # It also warns once per bad EXIF tag, so a hostile file could flood the log.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
            try:
                opened = Image.open(source, formats=_INPUT_FORMATS)
            except Image.DecompressionBombError as error:
                raise ValueError(f"too many pixels to make a thumbnail from: {error}") from error
            with opened as image:
                width, height = image.size
                if width * height > self._max_pixels:
                    raise ValueError(
                        f"{width} x {height} is more than the {self._max_pixels} pixels "
                        "a thumbnail is made from"
                    )
                target = fit(image.size, max_side)
                # JPEG only: decode at 1/2, 1/4 or 1/8 scale, still twice the target for quality.
                image.draft("RGB", (target[0] * 2, target[1] * 2))
                image.load()  # the first frame only, for GIF and WebP animations too
                mode = "RGBA" if image.has_transparency_data else "RGB"
                full = image if image.mode == mode else image.convert(mode)
                scaled = full.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
                orientation = _orientation(image)
        method = _UPRIGHT.get(orientation or 1)
        upright = scaled if method is None else scaled.transpose(method)
        # A fresh image: convert() and resize() copy .info (EXIF, ICC, XMP, comments), and
        # some of Pillow's encoders write whatever they find there.
        clean = Image.new(mode, upright.size)
        clean.paste(upright)
        return clean


def fit(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """``size`` scaled to fit ``max_side`` x ``max_side`` with its aspect ratio, never up."""
    width, height = size
    longest = max(width, height)
    if longest <= max_side:
        return size
    return (
        max(1, round(width * max_side / longest)),
        max(1, round(height * max_side / longest)),
    )


def _orientation(image: Image.Image) -> int | None:
    """The EXIF orientation read as the inspector reads it (so that an orientation the upload
    reported is the one applied), rather than by ``ImageOps.exif_transpose``, which also trusts
    XMP and rewrites the EXIF block, raising on some a camera would never write."""
    raw = image.info.get("exif")
    return exif_facts(raw).orientation if isinstance(raw, bytes) else None


def _over_white(picture: Image.Image) -> Image.Image:
    """RGB for JPEG, which has no alpha: transparent areas become white, not black."""
    if picture.mode != "RGBA":
        return picture
    background = Image.new("RGB", picture.size, (255, 255, 255))
    background.paste(picture, mask=picture.getchannel("A"))
    return background
