"""Two reference implementations of "one decode, all renditions and the placeholder", on Pillow
and on libvips, that bench/renditions.py measures side by side. They live here, not in src: they
are what the choice of library is made from, not the service's renderer.

Each makes, from one decode of the upload, the ``preview`` (longest side 1440 px) and the
``thumbnail`` (256 px, made from the preview's pixels), each in JPEG, WebP and AVIF: upright (EXIF
orientation applied), sRGB, no metadata, never enlarged; and a placeholder from the thumbnail's
pixels: a 4 x 3 blurhash and the dominant colour.
"""

from __future__ import annotations

import io
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import blurhash

from bench.pillow_thumbnailer import fit

RENDITION_SIDES = {"preview": 1440, "thumbnail": 256}
"""Longest side of each rendition, in pixels; the first is decoded to, the others made from it."""

JPEG_QUALITY = 85
WEBP_QUALITY = 80
AVIF_QUALITY = 55
"""libheif's and libavif's quality (0-100) both map to the AV1 quantizer as (100 - q) * 63 / 100,
so 55 is the same quantizer for both libraries; bench/renditions.py reports its PSNR beside
JPEG's and WebP's to show that it looks alike."""
AVIF_LIBVIPS_EFFORT = 4
"""heifsave's default, taken to be libaom's speed 9 - effort = 5 (Pillow's speed 7 gives what
libvips' effort 3 does, and speed 5 what effort 4 does)."""
AVIF_PILLOW_SPEED = 9 - AVIF_LIBVIPS_EFFORT
"""The same encoder speed for Pillow (its default, 6, gave 54 KB instead of 17 KB on the 12 MP
photo's preview, in a third of the time)."""

FORMATS = ("jpeg", "webp", "avif")
PLACEHOLDER_SIDE = 32
"""The thumbnail is shrunk to this before the blurhash: the pure-Python encoder costs
width x height x 12 basis products: 5 ms at 32 x 32, ~0.25 s at 256 x 192."""
BLURHASH_COMPONENTS = (4, 3)


@dataclass(frozen=True)
class Rendition:
    name: str
    format: str
    width: int
    height: int
    data: bytes
    encode_seconds: float


@dataclass(frozen=True)
class Placeholder:
    blurhash: str
    dominant_colour: str
    seconds: float


@dataclass
class RenditionSet:
    """What one upload gives: its renditions, its placeholder, and where the time went."""

    renditions: list[Rendition] = field(default_factory=list)
    placeholder: Placeholder | None = None
    decode_seconds: float = 0.0
    """Decoding, shrinking, turning upright and (libvips) copying the preview to memory."""
    preview_rgb: Callable[[], bytes] = bytes
    """The preview's pixels before encoding (RGB, 8 bits), to measure what each encoding lost."""

    def rendition(self, name: str, format_name: str) -> Rendition:
        return next(r for r in self.renditions if r.name == name and r.format == format_name)


def placeholder_of(rows: Sequence[Sequence[Sequence[int]]], started: float) -> Placeholder:
    """The blurhash and the dominant colour of an RGB image given as rows of pixels: the colour
    is the mean of the most populated box when each channel is cut into 8 bins (a mean of all
    pixels would give the grey between two strong colours)."""
    pixels = [pixel for row in rows for pixel in row]
    boxes = Counter((r >> 5, g >> 5, b >> 5) for r, g, b in pixels)
    box = boxes.most_common(1)[0][0]
    members = [p for p in pixels if (p[0] >> 5, p[1] >> 5, p[2] >> 5) == box]
    red, green, blue = (round(sum(p[band] for p in members) / len(members)) for band in range(3))
    columns, lines = BLURHASH_COMPONENTS
    hashed = blurhash.encode([[list(p) for p in row] for row in rows], columns, lines)
    return Placeholder(hashed, f"#{red:02x}{green:02x}{blue:02x}", time.perf_counter() - started)


def _timed(
    name: str, format_name: str, size: tuple[int, int], encode: Callable[[], bytes]
) -> Rendition:
    started = time.perf_counter()
    data = encode()
    return Rendition(name, format_name, size[0], size[1], data, time.perf_counter() - started)


def pillow_renditions(data: bytes, sides: dict[str, int] = RENDITION_SIDES) -> RenditionSet:
    """All renditions of the image in ``data`` from one decode by Pillow; ``sides`` maps each
    rendition to its longest side, the first being the one decoded to."""
    from PIL import Image, ImageCms, ImageOps

    result = RenditionSet()
    started = time.perf_counter()
    with Image.open(io.BytesIO(data)) as image:
        preview_side = sides["preview"]
        target = fit(image.size, preview_side)
        # JPEG only: decode at 1/2, 1/4 or 1/8 scale, still twice the target for the filter.
        image.draft("RGB", (target[0] * 2, target[1] * 2))
        image.load()
        icc = image.info.get("icc_profile")
        decoded = image.convert("RGB") if image.mode != "RGB" else image
        if icc:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            decoded = ImageCms.profileToProfile(decoded, profile, ImageCms.createProfile("sRGB"))
        scaled = decoded.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
        scaled.info = dict(image.info)  # exif_transpose reads the orientation from here
        upright = ImageOps.exif_transpose(scaled)
    # A fresh image: encoders write the EXIF, ICC or XMP they find in .info.
    preview = Image.new("RGB", upright.size)
    preview.paste(upright)
    sized = {"preview": preview}
    for name, side in sides.items():
        if name != "preview":
            sized[name] = preview.resize(fit(preview.size, side), Image.Resampling.LANCZOS)
    result.decode_seconds = time.perf_counter() - started
    result.preview_rgb = preview.tobytes

    def encoder(picture: Image.Image, format_name: str) -> Callable[[], bytes]:
        options: dict[str, dict[str, Any]] = {
            "jpeg": {"format": "JPEG", "quality": JPEG_QUALITY, "optimize": True},
            "webp": {"format": "WEBP", "quality": WEBP_QUALITY},
            "avif": {"format": "AVIF", "quality": AVIF_QUALITY, "speed": AVIF_PILLOW_SPEED},
        }

        def encode() -> bytes:
            buffer = io.BytesIO()
            picture.save(buffer, **options[format_name])
            return buffer.getvalue()

        return encode

    for name, picture in sized.items():
        for format_name in FORMATS:
            result.renditions.append(
                _timed(name, format_name, picture.size, encoder(picture, format_name))
            )
    started = time.perf_counter()
    tiny = sized["thumbnail"].resize(fit(sized["thumbnail"].size, PLACEHOLDER_SIDE))
    width = tiny.width
    flat = list(tiny.get_flattened_data())
    rows = [flat[start : start + width] for start in range(0, len(flat), width)]
    result.placeholder = placeholder_of(rows, started)
    return result


def libvips_renditions(data: bytes, sides: dict[str, int] = RENDITION_SIDES) -> RenditionSet:
    """All renditions of the image in ``data`` from one decode by libvips: shrink-on-load to the
    preview's size, the preview copied to memory once, the smaller renditions made from it."""
    import pyvips

    # As the service configures it: no operation cache, one worker thread per pipeline.
    pyvips.cache_set_max(0)
    pyvips.concurrency_set(1)
    result = RenditionSet()
    started = time.perf_counter()
    preview_side = sides["preview"]
    source = pyvips.Source.new_from_memory(data)
    # size="down": never enlarged; thumbnail turns the image upright and, where the image has an
    # ICC profile, transforms it to sRGB.
    preview = pyvips.Image.thumbnail_source(
        source, preview_side, height=preview_side, size="down", export_profile="srgb"
    ).copy_memory()
    if preview.bands == 4:
        preview = preview.flatten(background=[255, 255, 255])
    sized = {"preview": preview}
    for name, side in sides.items():
        if name != "preview":
            sized[name] = preview.thumbnail_image(side, height=side, size="down").copy_memory()
    result.decode_seconds = time.perf_counter() - started
    result.preview_rgb = lambda: bytes(preview.write_to_memory())

    def encoder(picture: pyvips.Image, format_name: str) -> Callable[[], bytes]:
        def encode() -> bytes:
            if format_name == "jpeg":
                saved = picture.jpegsave_buffer(
                    Q=JPEG_QUALITY, optimize_coding=True, keep="none", subsample_mode="on"
                )
            elif format_name == "webp":
                saved = picture.webpsave_buffer(Q=WEBP_QUALITY, keep="none")
            else:
                saved = picture.heifsave_buffer(
                    Q=AVIF_QUALITY, compression="av1", effort=AVIF_LIBVIPS_EFFORT, keep="none"
                )
            return bytes(saved)

        return encode

    for name, picture in sized.items():
        for format_name in FORMATS:
            result.renditions.append(
                _timed(
                    name,
                    format_name,
                    (picture.width, picture.height),
                    encoder(picture, format_name),
                )
            )
    started = time.perf_counter()
    thumbnail = sized["thumbnail"]
    tiny = thumbnail.thumbnail_image(PLACEHOLDER_SIDE, height=PLACEHOLDER_SIDE, size="down")
    flat = tiny.write_to_memory()
    width, bands = tiny.width, tiny.bands
    rows = [
        [
            tuple(flat[at : at + 3])
            for at in range(line * width * bands, (line + 1) * width * bands, bands)
        ]
        for line in range(tiny.height)
    ]
    result.placeholder = placeholder_of(rows, started)
    return result


MAKERS: dict[str, Callable[[bytes], RenditionSet]] = {
    "pillow": pillow_renditions,
    "libvips": libvips_renditions,
}
