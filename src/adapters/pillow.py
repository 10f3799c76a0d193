"""Image sniffing: the format from the magic bytes, the size and EXIF from the header.

Only the head of an upload is ever seen (the first MiB of it), and pixels are never decoded.
JPEG headers are read by Pillow; PNG, GIF, WebP and HEIF (HEIC, AVIF) by the small readers
next to this module, because Pillow cannot read those from the head of a big file (see each
module's docstring).
"""

from __future__ import annotations

import io
import warnings

import attrs
from PIL import JpegImagePlugin

from adapters.exif import ExifFacts, exif_facts
from adapters.gif_header import read_gif_size
from adapters.heif_header import heif_exif_span, is_heif, read_heif_header
from adapters.location_redaction import location_patches, tiff_location_patches
from adapters.png_header import SIGNATURE as PNG_SIGNATURE
from adapters.png_header import read_png_header
from adapters.webp_header import read_webp_header
from imagecore.model import ImageFacts

_JPEG_MAGIC = b"\xff\xd8\xff"
_HEIF_CONTENT_TYPES = frozenset({"image/heic", "image/heif", "image/avif"})


class PillowInspector:
    """The :class:`imagecore.ports.ImageInspector` of JPEG, PNG, GIF, WebP, HEIC and AVIF."""

    def inspect(self, head: bytes) -> ImageFacts | None:
        """The facts of the JPEG, PNG, GIF, WebP or HEIF (HEVC or AV1 coded) whose first bytes
        are ``head``, told apart by their magic bytes (HEIF: an ``ftyp`` box); None for anything
        else, or a header cut off or malformed.

        Sizes are reported as declared, however huge: refusing them is the caller's business.
        A HEIF's size is as displayed, its rotation applied. The EXIF facts come from the EXIF
        block (JPEG APP1, PNG eXIf, WebP EXIF, HEIF Exif item) where it is whole in ``head``; a
        bad one only loses its own facts. A HEIF has no EXIF orientation: its decoder turns the
        image as its container says, whatever the EXIF says. Never raises; time and memory are
        bounded by ``len(head)``.

        The location patches blank the position and the serial numbers the file records (EXIF
        and XMP; adapters.location_redaction) where they lie in ``head``.
        """
        facts = self._facts(head)
        if facts is None:
            return None
        if facts.content_type in _HEIF_CONTENT_TYPES:
            span = heif_exif_span(head)
            patches = (
                () if span is None else tiff_location_patches(head[span[0] : sum(span)], span[0])
            )
        else:
            patches = location_patches(head, facts.content_type)
        return attrs.evolve(facts, location_patches=patches) if patches else facts

    def _facts(self, head: bytes) -> ImageFacts | None:
        if head.startswith(_JPEG_MAGIC):
            return _jpeg(head)
        if head.startswith(PNG_SIGNATURE):
            png = read_png_header(head)
            return None if png is None else _facts("image/png", png.width, png.height, png.exif)
        if head[:6] in (b"GIF87a", b"GIF89a"):
            size = read_gif_size(head)
            return None if size is None else _facts("image/gif", *size, None)
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            webp = read_webp_header(head)
            if webp is None:
                return None
            return _facts("image/webp", webp.width, webp.height, webp.exif)
        if is_heif(head):
            heif = read_heif_header(head)
            if heif is None:
                return None
            facts = _facts(heif.content_type, heif.width, heif.height, heif.exif)
            return None if facts is None else attrs.evolve(facts, orientation=None)
        return None


def _jpeg(head: bytes) -> ImageFacts | None:
    """Pillow reads the markers up to the start of scan. Its JPEG plugin class is called
    directly rather than through ``Image.open``: only ``Image.open`` runs the decompression-bomb
    check, which would turn a huge declared size into an error instead of facts, and changing
    ``Image.MAX_IMAGE_PIXELS`` would change it for the whole process."""
    try:
        # Pillow warns about corrupt EXIF while looking for a resolution in it.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with JpegImagePlugin.JpegImageFile(io.BytesIO(head)) as image:
                width, height = image.size
                exif = image.info.get("exif")
    except Exception:  # Pillow raises many types for malformed input; all mean "not an image"
        return None
    return _facts("image/jpeg", width, height, exif if isinstance(exif, bytes) else None)


def _facts(content_type: str, width: int, height: int, exif: bytes | None) -> ImageFacts | None:
    if width <= 0 or height <= 0:
        return None
    read = exif_facts(exif) if exif else ExifFacts()
    return ImageFacts(
        content_type=content_type,
        width=width,
        height=height,
        camera_make=read.camera_make,
        camera_model=read.camera_model,
        orientation=read.orientation,
        captured_at=read.captured_at,
        position=read.position,
    )
