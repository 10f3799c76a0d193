"""A corpus of hostile uploads, made on the spot, and what the service must make of each.

Every file is built in code (Pillow, struct, zlib, zipfile), byte for byte the same on every
call, and under 200 KB. The adapter tests check each against the inspector; the HTTP tests
upload them and check the answer:

- ``empty``: nothing at all (400);
- ``unsupported``: not a JPEG, PNG, GIF, WebP, HEIC or AVIF, or a header cut off or malformed (415);
- ``too_many_pixels``: a valid header declaring more than 100 megapixels (415), with the
  declared ``width`` and ``height``;
- ``accepted``: a valid image, however odd, with its ``content_type``, ``width``, ``height``
  and the EXIF facts it must yield (``exif``; a fact not named there must be None).
"""

from __future__ import annotations

import functools
import io
import struct
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from typing import Literal

import attrs
from PIL import Image

from imagecore.model import GeoPosition

Expected = Literal["empty", "unsupported", "too_many_pixels", "accepted"]

EMPTY: Expected = "empty"
UNSUPPORTED: Expected = "unsupported"
TOO_MANY_PIXELS: Expected = "too_many_pixels"
ACCEPTED: Expected = "accepted"

PIXEL_LIMIT = 100_000_000
"""The service's default limit: ``too_many_pixels`` files declare more than this."""


@attrs.frozen
class MaliciousFile:
    name: str
    data: bytes
    expected: Expected
    content_type: str | None = None
    width: int | None = None
    height: int | None = None
    exif: Mapping[str, object] = attrs.field(factory=dict)
    """The EXIF facts of an ``accepted`` file by ImageFacts field name; the others are None."""


def malicious_corpus() -> list[MaliciousFile]:
    """The whole corpus; names are unique and safe to use as test ids and file names."""
    return list(_corpus())


@functools.cache
def _corpus() -> tuple[MaliciousFile, ...]:
    files = [
        MaliciousFile("empty", b"", EMPTY),
        *_truncated_headers(),
        *_huge_declarations(),
        *_polyglots(),
        *_other_formats(),
        *_malformed_headers(),
        *_odd_but_valid(),
        *_hostile_exif(),
    ]
    assert len({file.name for file in files}) == len(files)
    return tuple(files)


# --- valid small images -------------------------------------------------------------------------


def _save(image: Image.Image, format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def _picture(width: int = 48, height: int = 32) -> Image.Image:
    """A small deterministic picture with some detail (a gradient), so encoders do real work."""
    return Image.frombytes(
        "RGB",
        (width, height),
        bytes(
            (x * 5 + y * 3 + c * 60) % 256
            for y in range(height)
            for x in range(width)
            for c in range(3)
        ),
    )


def small_jpeg() -> bytes:
    return _save(_picture(), "JPEG", quality=80)


def small_png() -> bytes:
    return _save(_picture(), "PNG")


def small_gif() -> bytes:
    return _save(_picture(), "GIF")


def small_webps() -> dict[str, bytes]:
    """The three kinds of WebP: simple lossy (VP8), simple lossless (VP8L), extended (VP8X)."""
    # Lossy with alpha needs the extended format; libwebp drops an alpha channel that is all
    # opaque (and writes a simple VP8), hence the translucency.
    translucent = _picture()
    translucent.putalpha(128)
    webps = {
        "vp8": _save(_picture(), "WEBP", quality=80),
        "vp8l": _save(_picture(), "WEBP", lossless=True),
        "vp8x": _save(translucent, "WEBP", quality=80),
    }
    assert [webp[12:16] for webp in webps.values()] == [b"VP8 ", b"VP8L", b"VP8X"]
    return webps


def _sof_offset(jpeg: bytes | bytearray) -> int:
    """Where the baseline start-of-frame marker is (Pillow writes baseline JPEGs)."""
    offset = jpeg.index(b"\xff\xc0")
    assert offset > 2
    return offset


# --- the corpus, by theme -----------------------------------------------------------------------


def _truncated_headers() -> list[MaliciousFile]:
    """Valid files cut off before their dimensions are complete."""
    jpeg, png, gif = small_jpeg(), small_png(), small_gif()
    webps = small_webps()
    sof = _sof_offset(jpeg)
    cuts: dict[str, tuple[bytes, Sequence[int]]] = {
        "jpeg": (jpeg, (1, 2, 3, 4, 20, sof, sof + 4, sof + 8)),
        "png": (png, (1, 7, 8, 16, 20, 24, 29, 32)),  # IHDR and its CRC end at 33
        "gif": (gif, (1, 3, 6, 8, 10, 12)),  # the screen size ends at 10, its descriptor at 13
        "webp_vp8": (webps["vp8"], (4, 11, 12, 16, 20, 25, 29)),  # the frame header ends at 30
        "webp_vp8l": (webps["vp8l"], (16, 20, 21, 24)),  # the header ends at 25
        "webp_vp8x": (webps["vp8x"], (16, 20, 24, 29)),  # the canvas ends at 30
    }
    return [
        MaliciousFile(f"truncated_{kind}_at_{cut}", data[:cut], UNSUPPORTED)
        for kind, (data, points) in cuts.items()
        for cut in points
    ]


def _huge_declarations() -> list[MaliciousFile]:
    """Tiny files whose headers declare far more pixels than the limit: decompression bombs."""
    png = _png(100_000, 100_000, idat=zlib.compress(b"\0" * 64))
    gif_huge_frame = _gif(10, 10, frames=[(0, 0, 60_000, 60_000)])
    gif_far_frame = _gif(1, 1, frames=[(65_000, 65_000, 535, 535)])
    jpeg = bytearray(small_jpeg())
    sof = _sof_offset(jpeg)
    struct.pack_into(">HH", jpeg, sof + 5, 65_535, 65_535)  # after marker, length, precision
    lossless = small_webps()["vp8l"]
    return [
        MaliciousFile("png_100000x100000", png, TOO_MANY_PIXELS, "image/png", 100_000, 100_000),
        MaliciousFile(
            "gif_small_screen_60000x60000_frame",
            gif_huge_frame,
            TOO_MANY_PIXELS,
            "image/gif",
            60_000,
            60_000,
        ),
        MaliciousFile(
            "gif_frame_far_off_screen", gif_far_frame, TOO_MANY_PIXELS, "image/gif", 65_535, 65_535
        ),
        MaliciousFile(
            "webp_vp8x_16384x16384_canvas",
            _riff([_vp8x_chunk(16_384, 16_384), _chunk(b"VP8L", _vp8l_payload(lossless))]),
            TOO_MANY_PIXELS,
            "image/webp",
            16_384,
            16_384,
        ),
        MaliciousFile(
            "webp_vp8l_16384x16384",
            _riff([_chunk(b"VP8L", b"\x2f" + _vp8l_bits(16_384, 16_384) + b"\0" * 16)]),
            TOO_MANY_PIXELS,
            "image/webp",
            16_384,
            16_384,
        ),
        MaliciousFile(
            "webp_vp8_16383x16383",
            _riff([_chunk(b"VP8 ", _vp8_frame_header(16_383, 16_383) + b"\0" * 32)]),
            TOO_MANY_PIXELS,
            "image/webp",
            16_383,
            16_383,
        ),
        MaliciousFile(
            "jpeg_65535x65535", bytes(jpeg), TOO_MANY_PIXELS, "image/jpeg", 65_535, 65_535
        ),
        MaliciousFile(
            "png_just_over_the_limit",
            _png(20_000, 5_001, idat=zlib.compress(b"\0" * 64)),
            TOO_MANY_PIXELS,
            "image/png",
            20_000,
            5_001,
        ),
    ]


def _polyglots() -> list[MaliciousFile]:
    """Files that are two things at once. A valid image followed by anything is a valid image
    (decoders stop at its end), so these are accepted, as the image they start with."""
    jpeg, gif = small_jpeg(), small_gif()
    html = b"<html><body><script>alert(document.cookie)</script></body></html>\n"
    return [
        MaliciousFile("jpeg_then_html", jpeg + html, ACCEPTED, "image/jpeg", 48, 32),
        MaliciousFile("jpeg_then_zip", jpeg + _zip(), ACCEPTED, "image/jpeg", 48, 32),
        MaliciousFile("gif_then_zip", gif + _zip(), ACCEPTED, "image/gif", 48, 32),
        MaliciousFile("html_named_x.jpg", html, UNSUPPORTED),
        MaliciousFile(
            "html_with_doctype",
            b"<!DOCTYPE html><html><img src=x onerror=alert(1)></html>",
            UNSUPPORTED,
        ),
        MaliciousFile(
            "svg_with_script",
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
            b"<script>alert(1)</script><rect width='10' height='10'/></svg>",
            UNSUPPORTED,
        ),
        MaliciousFile(
            "pdf",
            b"%PDF-1.7\n1 0 obj<</Type/Catalog/Pages 2 0 R"
            b"/OpenAction<</S/JavaScript/JS(app.alert(1))>>>>endobj\n"
            b"trailer<</Root 1 0 R>>\n%%EOF\n",
            UNSUPPORTED,
        ),
        MaliciousFile("zip", _zip(), UNSUPPORTED),
        MaliciousFile("zip_then_jpeg", _zip() + jpeg, UNSUPPORTED),
    ]


def _other_formats() -> list[MaliciousFile]:
    """Real image formats the service does not accept."""
    picture = _picture()
    return [
        MaliciousFile("bmp", _save(picture, "BMP"), UNSUPPORTED),
        MaliciousFile("tiff_little_endian", _save(picture, "TIFF"), UNSUPPORTED),
        MaliciousFile("tiff_big_endian", b"MM\x00\x2a" + _save(picture, "TIFF")[4:], UNSUPPORTED),
        MaliciousFile("ico", _save(picture, "ICO"), UNSUPPORTED),
        MaliciousFile(
            "heic_ftyp",
            b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\0" * 64,
            UNSUPPORTED,
        ),
        MaliciousFile("riff_wave", b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\0" * 28, UNSUPPORTED),
        MaliciousFile("gif88a", b"GIF88a" + small_gif()[6:], UNSUPPORTED),
        MaliciousFile("jpeg_2000", b"\x00\x00\x00\x0cjP  \r\n\x87\n" + b"\0" * 64, UNSUPPORTED),
    ]


def _malformed_headers() -> list[MaliciousFile]:
    """The right magic bytes, then a header no decoder would take."""
    png = small_png()
    bad_crc = bytearray(png)
    bad_crc[29] ^= 0xFF
    jpeg = bytearray(small_jpeg())
    sof = _sof_offset(jpeg)
    struct.pack_into(">H", jpeg, sof + 5, 0)  # height 0: "defined later", which we do not take
    many = b"".join(_png_chunk(b"tEXt", b"k\0%d" % i) for i in range(3_000))
    return [
        MaliciousFile("png_ihdr_bad_crc", bytes(bad_crc), UNSUPPORTED),
        MaliciousFile("png_zero_width", _png(0, 10), UNSUPPORTED),
        MaliciousFile("png_width_over_2_31", _png(2**31, 10), UNSUPPORTED),
        MaliciousFile("png_bad_bit_depth", _png(10, 10, depth=3), UNSUPPORTED),
        MaliciousFile("png_bad_colour_type", _png(10, 10, colour=5), UNSUPPORTED),
        MaliciousFile(
            "png_first_chunk_not_ihdr",
            png[:8] + _png_chunk(b"tEXt", b"a\0b") + png[8:],
            UNSUPPORTED,
        ),
        MaliciousFile("png_3000_chunks_before_ihdr", png[:8] + many + png[8:], UNSUPPORTED),
        MaliciousFile("png_signature_only", png[:8], UNSUPPORTED),
        MaliciousFile("jpeg_zero_height", bytes(jpeg), UNSUPPORTED),
        MaliciousFile("jpeg_soi_then_garbage", b"\xff\xd8\xff" + b"\x00\x01" * 512, UNSUPPORTED),
        MaliciousFile("jpeg_soi_then_fill_bytes", b"\xff\xd8" + b"\xff" * 100_000, UNSUPPORTED),
        MaliciousFile("gif_zero_screen_no_frame", _gif(0, 0, frames=[]), UNSUPPORTED),
        MaliciousFile("gif_trailer_without_frame", _gif(10, 10, frames=[]), UNSUPPORTED),
        MaliciousFile(
            "webp_riff_size_too_big",
            b"RIFF\xff\xff\xff\xff" + small_webps()["vp8"][8:],
            UNSUPPORTED,
        ),
        MaliciousFile(
            "webp_vp8x_canvas_over_2_32",
            _riff([_vp8x_chunk(2**24, 2**24)]),
            UNSUPPORTED,
        ),
        MaliciousFile(
            "webp_vp8_zero_width",
            _riff([_chunk(b"VP8 ", _vp8_frame_header(0, 10) + b"\0" * 32)]),
            UNSUPPORTED,
        ),
        MaliciousFile(
            "webp_vp8_not_key_frame",
            _riff([_chunk(b"VP8 ", b"\x01" + _vp8_frame_header(10, 10)[1:] + b"\0" * 32)]),
            UNSUPPORTED,
        ),
        MaliciousFile(
            "webp_vp8l_bad_signature",
            _riff([_chunk(b"VP8L", b"\x2e" + _vp8l_bits(10, 10) + b"\0" * 16)]),
            UNSUPPORTED,
        ),
        MaliciousFile(
            "webp_vp8l_bad_version",
            _riff([_chunk(b"VP8L", b"\x2f" + _vp8l_bits(10, 10, version=1) + b"\0" * 16)]),
            UNSUPPORTED,
        ),
        MaliciousFile(
            "webp_first_chunk_unknown", _riff([_chunk(b"XYZW", b"\0" * 16)]), UNSUPPORTED
        ),
    ]


def _odd_but_valid() -> list[MaliciousFile]:
    """Legal files built to cost a careless parser time or memory."""
    png = small_png()
    many = b"".join(_png_chunk(b"tEXt", b"k\0%d" % i) for i in range(3_000))
    # 16 MB of zeros in a zTXt chunk: 16 KB on the wire, inflated by no one here.
    bomb = _png_chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"\0" * 16_000_000, 9))
    comment = b"\x21\xfe" + b"".join(b"\xff" + b"x" * 255 for _ in range(200)) + b"\0"
    gif = small_gif()
    after_screen = 13 + 3 * 2 ** ((gif[10] & 7) + 1)  # Pillow writes a global colour table
    commented = gif[:after_screen] + comment * 2 + gif[after_screen:]
    no_screen = gif[:6] + b"\0\0\0\0" + gif[10:]  # the frame alone says how big it is
    jpeg = small_jpeg()
    padded = jpeg[:2] + b"\xff" * 5_000 + jpeg[2:]  # fill bytes before a marker are legal
    return [
        MaliciousFile(
            "png_3000_chunks_after_ihdr", png[:33] + many + png[33:], ACCEPTED, "image/png", 48, 32
        ),
        MaliciousFile(
            "png_ztxt_bomb",
            png[:33] + bomb + png[33:],
            ACCEPTED,
            "image/png",
            48,
            32,
        ),
        MaliciousFile("gif_long_comments", commented, ACCEPTED, "image/gif", 48, 32),
        MaliciousFile("gif_zero_screen_with_frame", no_screen, ACCEPTED, "image/gif", 48, 32),
        MaliciousFile("jpeg_fill_bytes", padded, ACCEPTED, "image/jpeg", 48, 32),
        MaliciousFile(
            "webp_vp8x_unknown_chunks",
            _riff(
                [
                    _vp8x_chunk(48, 32),
                    *[_chunk(b"ZZZZ", b"z" * 7)] * 2000,
                    _chunk(b"VP8L", _vp8l_payload(small_webps()["vp8l"])),
                ]
            ),
            ACCEPTED,
            "image/webp",
            48,
            32,
        ),
    ]


def _hostile_exif() -> list[MaliciousFile]:
    """JPEGs whose EXIF no camera wrote: the image is accepted, the absurd facts dropped."""
    absurd = exif_block(
        ifd0=[
            # 60 KB of make: controls, a zero-width space, NULs, then a wall of Xs
            ascii_entry(MAKE, b"\x00\x01\x1b[31m\xe2\x80\x8bACME\t\n  Cam\x00era " + b"X" * 60_000),
            ascii_entry(MODEL, b"Nik\x00on\x00\x00 D\x07850\x00\x00\x00"),
            short_entry(ORIENTATION, 99),
            ascii_entry(DATE_TIME, b"2020:02:29 10:00:00"),
        ],
        exif=[
            ascii_entry(DATE_TIME_ORIGINAL, b"9999:99:99 99:99:99"),
            ascii_entry(DATE_TIME_DIGITIZED, b"2021:02:29 10:00:00"),  # no such day
            ascii_entry(OFFSET_TIME, b"+25:00"),
        ],
        gps=[
            ascii_entry(1, b"N"),
            rational_entry(2, [(400, 1), (0, 1), (0, 1)]),
            ascii_entry(3, b"E"),
            rational_entry(4, [(10, 0), (0, 0), (0, 0)]),
        ],
    )
    zero_denominators = exif_block(
        ifd0=[ascii_entry(MAKE, b"Canon")],
        gps=[
            ascii_entry(1, b"S"),
            rational_entry(2, [(33, 1), (51, 0), (31, 1)]),
            ascii_entry(3, b"E"),
            rational_entry(4, [(151, 1), (12, 1), (30, 1)]),
        ],
    )
    minutes_60 = exif_block(
        ifd0=[short_entry(ORIENTATION, 8)],
        gps=[
            ascii_entry(1, b"N"),
            rational_entry(2, [(10, 1), (60, 1), (0, 1)]),
            ascii_entry(3, b"X"),
            rational_entry(4, [(10, 1), (0, 1), (0, 1)]),
        ],
    )
    # the Exif IFD pointer aimed back at IFD0 itself (offset 8), the GPS one far outside
    looping = bytearray(
        exif_block(
            ifd0=[ascii_entry(MAKE, b"Loop"), (GPS_IFD, LONG, 1, struct.pack(">I", 0xFFFFFF00))],
            exif=[ascii_entry(DATE_TIME_ORIGINAL, b"2020:01:01 00:00:00")],
        )
    )
    pointer = looping.index(struct.pack(">HHI", EXIF_IFD, LONG, 1))
    struct.pack_into(">I", looping, pointer + 8, 8)
    # many distinct tags all pointing at the same large span: bounded by Pillow 13
    amplifying = _amplifying_exif(entries=4_000, span=40_000)
    good_gps_bad_rest = exif_block(
        ifd0=[(MAKE, LONG, 1, b"\0\0\0\x07"), short_entry(ORIENTATION, 0)],
        exif=[ascii_entry(DATE_TIME_ORIGINAL, b"2024-05-06T07:08:09")],
        gps=[
            ascii_entry(1, b"S"),
            rational_entry(2, [(33, 1), (51, 1), (3156, 100)]),
            ascii_entry(3, b"E"),
            rational_entry(4, [(151, 1), (12, 1), (305, 10)]),
        ],
    )
    good_offset = exif_block(
        ifd0=[ascii_entry(DATE_TIME, b"1999:12:31 23:59:59")],
        exif=[ascii_entry(OFFSET_TIME, b"-03:30")],
    )
    return [
        MaliciousFile(
            "jpeg_absurd_exif",
            _with_exif(small_jpeg(), absurd),
            ACCEPTED,
            "image/jpeg",
            48,
            32,
            {
                "camera_make": "[31mACME Camera " + "X" * 48,
                "camera_model": "Nikon D850",
                "captured_at": "2020-02-29T10:00:00",
            },
        ),
        MaliciousFile(
            "jpeg_exif_zero_denominators",
            _with_exif(small_jpeg(), zero_denominators),
            ACCEPTED,
            "image/jpeg",
            48,
            32,
            {"camera_make": "Canon"},
        ),
        MaliciousFile(
            "jpeg_exif_gps_minutes_60_bad_ref",
            _with_exif(small_jpeg(), minutes_60),
            ACCEPTED,
            "image/jpeg",
            48,
            32,
            {"orientation": 8},
        ),
        MaliciousFile(
            "jpeg_exif_ifd_loop",
            _with_exif(small_jpeg(), bytes(looping)),
            ACCEPTED,
            "image/jpeg",
            48,
            32,
            {"camera_make": "Loop"},
        ),
        MaliciousFile(
            "jpeg_exif_not_tiff",
            _with_exif(small_jpeg(), b"<x:xmpmeta>not a TIFF header</x:xmpmeta>"),
            ACCEPTED,
            "image/jpeg",
            48,
            32,
        ),
        MaliciousFile(
            "jpeg_exif_truncated_ifd",
            _with_exif(small_jpeg(), b"MM\x00\x2a\x00\x00\x00\x08\xff\xff\x01\x0f"),
            ACCEPTED,
            "image/jpeg",
            48,
            32,
        ),
        MaliciousFile(
            "jpeg_exif_tag_data_amplification",
            _with_exif(small_jpeg(), amplifying),
            ACCEPTED,
            "image/jpeg",
            48,
            32,
        ),
        MaliciousFile(
            "jpeg_exif_good_gps_among_bad_values",
            _with_exif(small_jpeg(), good_gps_bad_rest),
            ACCEPTED,
            "image/jpeg",
            48,
            32,
            {"position": GeoPosition(latitude=-33.858767, longitude=151.208472)},
        ),
        MaliciousFile(
            "jpeg_exif_datetime_with_offset",
            _with_exif(small_jpeg(), good_offset),
            ACCEPTED,
            "image/jpeg",
            48,
            32,
            {"captured_at": "1999-12-31T23:59:59-03:30"},
        ),
        MaliciousFile(
            "png_exif_absurd",
            _png_with_exif(small_png(), absurd),
            ACCEPTED,
            "image/png",
            48,
            32,
            {
                "camera_make": "[31mACME Camera " + "X" * 48,
                "camera_model": "Nikon D850",
                "captured_at": "2020-02-29T10:00:00",
            },
        ),
        MaliciousFile(
            "webp_exif_zero_denominators",
            _riff(
                [
                    _vp8x_chunk(48, 32, flags=0x08),
                    _chunk(b"VP8L", _vp8l_payload(small_webps()["vp8l"])),
                    _chunk(b"EXIF", zero_denominators),
                ]
            ),
            ACCEPTED,
            "image/webp",
            48,
            32,
            {"camera_make": "Canon"},
        ),
    ]


# --- EXIF (TIFF) building -----------------------------------------------------------------------

MAKE, MODEL, ORIENTATION, DATE_TIME = 0x010F, 0x0110, 0x0112, 0x0132
EXIF_IFD, GPS_IFD = 0x8769, 0x8825
DATE_TIME_ORIGINAL, DATE_TIME_DIGITIZED = 0x9003, 0x9004
OFFSET_TIME, OFFSET_TIME_ORIGINAL, OFFSET_TIME_DIGITIZED = 0x9010, 0x9011, 0x9012
ASCII, SHORT, LONG, RATIONAL, UNDEFINED = 2, 3, 4, 5, 7

Entry = tuple[int, int, int, bytes]
"""tag, type, count, the value's bytes (big-endian)."""


def ascii_entry(tag: int, value: bytes) -> Entry:
    return (tag, ASCII, len(value) + 1, value + b"\0")


def short_entry(tag: int, value: int) -> Entry:
    return (tag, SHORT, 1, struct.pack(">H", value))


def rational_entry(tag: int, values: Sequence[tuple[int, int]]) -> Entry:
    return (tag, RATIONAL, len(values), b"".join(struct.pack(">II", n, d) for n, d in values))


def exif_block(
    ifd0: Sequence[Entry], exif: Sequence[Entry] = (), gps: Sequence[Entry] = ()
) -> bytes:
    """A big-endian TIFF structure as EXIF holds it: IFD0, then the Exif and GPS IFDs it points
    to, each followed by its values too long for an entry. No ``Exif\\0\\0`` prefix."""
    pointers = [(tag, entries) for tag, entries in ((EXIF_IFD, exif), (GPS_IFD, gps)) if entries]
    first = [*ifd0, *((tag, LONG, 1, b"\0\0\0\0") for tag, _ in pointers)]
    at = 8 + len(_ifd(first, 8))
    placed: list[bytes] = []
    final_first = list(ifd0)
    for tag, entries in pointers:
        final_first.append((tag, LONG, 1, struct.pack(">I", at)))
        block = _ifd(entries, at)
        placed.append(block)
        at += len(block)
    return b"MM\x00\x2a\x00\x00\x00\x08" + _ifd(final_first, 8) + b"".join(placed)


def _ifd(entries: Sequence[Entry], at: int) -> bytes:
    """One IFD placed at offset ``at``, its long values right after it."""
    table = struct.pack(">H", len(entries))
    data = b""
    data_at = at + 2 + 12 * len(entries) + 4
    for tag, kind, count, value in sorted(entries):
        if len(value) <= 4:
            table += struct.pack(">HHI", tag, kind, count) + value.ljust(4, b"\0")
        else:
            table += struct.pack(">HHII", tag, kind, count, data_at + len(data))
            data += value + b"\0" * (len(value) % 2)
    return table + b"\0\0\0\0" + data


def _amplifying_exif(entries: int, span: int) -> bytes:
    """IFD0 with ``entries`` distinct UNDEFINED tags, each claiming the same ``span`` bytes: a
    parser copying each value would use entries x span bytes of memory."""
    table = struct.pack(">H", entries) + b"".join(
        struct.pack(">HHII", 0x1000 + i, UNDEFINED, span, 8) for i in range(entries)
    )
    return b"MM\x00\x2a\x00\x00\x00\x08" + table + b"\0\0\0\0"


def _with_exif(jpeg: bytes, tiff: bytes) -> bytes:
    """``jpeg`` with an EXIF APP1 segment right after its SOI, where EXIF belongs."""
    payload = b"Exif\0\0" + tiff
    assert len(payload) + 2 <= 0xFFFF
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def _png_with_exif(png: bytes, tiff: bytes) -> bytes:
    return png[:33] + _png_chunk(b"eXIf", tiff) + png[33:]


# --- container building -------------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(
    width: int, height: int, *, depth: int = 8, colour: int = 2, idat: bytes | None = None
) -> bytes:
    """A PNG of just IHDR, one IDAT and IEND: for headers no encoder would write."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat if idat is not None else zlib.compress(b"\0" * 31))
        + _png_chunk(b"IEND", b"")
    )


def _gif(
    width: int,
    height: int,
    frames: Sequence[tuple[int, int, int, int]],
    extensions: Sequence[bytes] = (),
) -> bytes:
    """A GIF89a with a 2-colour global table and one tiny (clear, end) LZW stream per frame."""
    screen = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    body = b"".join(extensions)
    for left, top, frame_width, frame_height in frames:
        body += b"\x2c" + struct.pack("<HHHHB", left, top, frame_width, frame_height, 0)
        body += b"\x02\x01\x2c\x00"  # LZW minimum code size 2; codes clear (4), end (5)
    return screen + body + b"\x3b"


def _chunk(fourcc: bytes, payload: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(payload)) + payload + b"\0" * (len(payload) % 2)


def _riff(chunks: Sequence[bytes]) -> bytes:
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _vp8x_chunk(width: int, height: int, flags: int = 0) -> bytes:
    canvas = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return _chunk(b"VP8X", bytes([flags, 0, 0, 0]) + canvas)


def _vp8l_bits(width: int, height: int, version: int = 0) -> bytes:
    return struct.pack("<I", (width - 1) | (height - 1) << 14 | version << 29)


def _vp8l_payload(webp: bytes) -> bytes:
    """The VP8L payload of a simple lossless WebP made by Pillow."""
    assert webp[12:16] == b"VP8L"
    (size,) = struct.unpack_from("<I", webp, 16)
    return webp[20 : 20 + size]


def _vp8_frame_header(width: int, height: int) -> bytes:
    """A key frame tag (version 0, shown, first partition of 16 bytes), the start code and the
    dimensions without scaling."""
    tag = 0 | 0 << 1 | 1 << 4 | 16 << 5
    return tag.to_bytes(3, "little") + b"\x9d\x01\x2a" + struct.pack("<HH", width, height)


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("payload.html", date_time=(2020, 1, 1, 0, 0, 0))
        archive.writestr(info, b"<script>alert(1)</script>")
    return buffer.getvalue()
