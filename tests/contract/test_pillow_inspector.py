"""PillowInspector: what the head of an upload says, whatever the upload is."""

from __future__ import annotations

import io
import random
import struct
import time
import zlib
from collections.abc import Callable
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from adapters.exif import ExifFacts, clean_text, exif_facts
from adapters.pillow import PillowInspector
from imagecore.model import ACCEPTED_CONTENT_TYPES, GeoPosition, ImageFacts
from tests.support.malicious_files import (
    ACCEPTED,
    DATE_TIME,
    DATE_TIME_ORIGINAL,
    MAKE,
    MODEL,
    OFFSET_TIME_ORIGINAL,
    ORIENTATION,
    PIXEL_LIMIT,
    TOO_MANY_PIXELS,
    MaliciousFile,
    ascii_entry,
    exif_block,
    malicious_corpus,
    rational_entry,
    short_entry,
    small_gif,
    small_jpeg,
    small_png,
    small_webps,
)

HEAD = 1024 * 1024
"""What the domain reads of every upload before asking the inspector."""

INSPECTOR = PillowInspector()
EXIF_FIELDS = ("camera_make", "camera_model", "orientation", "captured_at", "position")
FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WEBP"}


def encode(image: Image.Image, format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def assert_sane(facts: ImageFacts | None) -> None:
    """What any answer must look like, whatever the bytes were."""
    if facts is not None:
        assert facts.content_type in ACCEPTED_CONTENT_TYPES
        assert facts.width > 0
        assert facts.height > 0
        assert facts.orientation is None or 1 <= facts.orientation <= 8
        for text in (facts.camera_make, facts.camera_model):
            assert text is None or (0 < len(text) <= 64 and text == text.strip())


# --- the malicious corpus -----------------------------------------------------------------------


@pytest.mark.parametrize("file", malicious_corpus(), ids=lambda file: file.name)
def test_every_corpus_file_gives_its_expected_answer(file: MaliciousFile) -> None:
    facts = INSPECTOR.inspect(file.data[:HEAD])

    if file.expected == TOO_MANY_PIXELS:
        assert facts is not None
        assert (facts.content_type, facts.width, facts.height) == (
            file.content_type,
            file.width,
            file.height,
        )
        assert facts.pixels > PIXEL_LIMIT
    elif file.expected == ACCEPTED:
        assert facts is not None
        assert (facts.content_type, facts.width, facts.height) == (
            file.content_type,
            file.width,
            file.height,
        )
        assert facts.pixels <= PIXEL_LIMIT
        assert {name: getattr(facts, name) for name in EXIF_FIELDS} == {
            name: file.exif.get(name) for name in EXIF_FIELDS
        }
    else:
        assert facts is None


def test_the_corpus_is_deterministic_and_small() -> None:
    corpus = malicious_corpus()
    assert corpus == malicious_corpus()
    assert all(len(file.data) < 200_000 for file in corpus)
    assert {file.expected for file in corpus} == {
        "empty",
        "unsupported",
        "too_many_pixels",
        "accepted",
    }


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(b"\xff\xd8" + b"\xff" * (HEAD - 2), id="jpeg_fill_bytes"),
        pytest.param(b"\xff\xd8\xff\xfe\x00\x04ab" + b"\x01" * HEAD, id="jpeg_junk"),
        pytest.param(
            b"GIF89a\x0a\x00\x0a\x00\x00\x00\x00" + b"\x21\xfe\x00" * (HEAD // 3), id="gif_blocks"
        ),
        pytest.param(
            small_png()[:33] + b"\0\0\0\0tEXt\0\0\0\0" * (HEAD // 12), id="png_empty_chunks"
        ),
        pytest.param(
            b"RIFF\xf0\xff\xff\xffWEBP"
            + small_webps()["vp8x"][12:30]
            + b"ZZZZ\0\0\0\0" * (HEAD // 8),
            id="webp_empty_chunks",
        ),
    ],
)
def test_a_worst_case_head_is_read_in_bounded_time(head: bytes) -> None:
    started = time.perf_counter()
    assert_sane(INSPECTOR.inspect(head[:HEAD]))
    # About 1 s at worst (Pillow reads JPEG fill bytes one at a time); generous for slow CI.
    assert time.perf_counter() - started < 5


# --- any bytes at all ---------------------------------------------------------------------------

PLAIN = [small_jpeg(), small_png(), small_gif(), *small_webps().values()]
SEEDS = [
    *PLAIN,
    *(file.data for file in malicious_corpus() if file.expected in (ACCEPTED, TOO_MANY_PIXELS)),
]
MAGIC = [b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"GIF87a", b"RIFF\0\0\0\0WEBP"]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid image, then truncated, with bytes overwritten, or spliced onto another."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    kind = draw(st.sampled_from(["truncate", "flip", "splice", "insert"]))
    if kind == "truncate":
        return bytes(data[: draw(st.integers(0, len(data)))])
    if kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            # headers are at the front: aim most changes there
            position = draw(st.integers(0, min(len(data), 64) - 1) | st.integers(0, len(data) - 1))
            data[position] = draw(st.integers(0, 255))
        return bytes(data)
    other = draw(st.sampled_from(SEEDS))
    cut = draw(st.integers(0, len(data)))
    if kind == "splice":
        return bytes(data[:cut]) + other[draw(st.integers(0, len(other))) :]
    return bytes(data[:cut]) + draw(st.binary(max_size=64)) + bytes(data[cut:])


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=4096))
def test_any_bytes_give_none_or_sane_facts(data: bytes) -> None:
    assert_sane(INSPECTOR.inspect(data))


@settings(max_examples=400, deadline=None)
@given(data=st.builds(lambda magic, rest: magic + rest, st.sampled_from(MAGIC), st.binary()))
def test_any_bytes_after_magic_give_none_or_sane_facts(data: bytes) -> None:
    assert_sane(INSPECTOR.inspect(data))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated())
def test_mutated_images_give_none_or_sane_facts(data: bytes) -> None:
    assert_sane(INSPECTOR.inspect(data))


@settings(max_examples=150, deadline=None)
@given(seed=st.sampled_from(PLAIN), fraction=st.floats(0, 1))
def test_a_cut_off_image_gives_none_or_the_same_size(seed: bytes, fraction: float) -> None:
    # (Not for a GIF whose frames overflow its screen: cut before them, it is the screen.)
    whole = INSPECTOR.inspect(seed)
    assert whole is not None
    part = INSPECTOR.inspect(seed[: int(len(seed) * fraction)])
    if part is not None:
        assert (part.content_type, part.width, part.height) == (
            whole.content_type,
            whole.width,
            whole.height,
        )


# --- valid images -------------------------------------------------------------------------------

MODES = {
    "image/jpeg": ["L", "RGB", "CMYK"],
    "image/png": ["1", "L", "LA", "P", "RGB", "RGBA", "I;16"],
    "image/gif": ["1", "L", "P", "RGB"],
    "image/webp": ["RGB", "RGBA"],
}


@st.composite
def valid_images(draw: st.DrawFn) -> tuple[str, int, int, bytes]:
    content_type = draw(st.sampled_from(sorted(FORMATS)))
    mode = draw(st.sampled_from(MODES[content_type]))
    width, height = draw(st.integers(1, 2000)), draw(st.integers(1, 2000))
    image = Image.new(mode, (width, height), draw(st.integers(0, 255)))
    options: dict[str, object] = {}
    if content_type == "image/webp":
        options = {"lossless": draw(st.booleans()), "method": 0}
    if content_type == "image/png":
        options = {"compress_level": 1}
    return content_type, width, height, encode(image, FORMATS[content_type], **options)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(image=valid_images())
def test_a_valid_image_gives_its_type_and_size(image: tuple[str, int, int, bytes]) -> None:
    content_type, width, height, data = image
    assert INSPECTOR.inspect(data[:HEAD]) == ImageFacts(content_type, width, height)


def noise(mode: str, width: int, height: int, seed: int) -> Image.Image:
    """Pixels no encoder can compress, to make files big."""
    return Image.frombytes(
        mode, (width, height), random.Random(seed).randbytes(width * height * len(mode))
    )


def with_camera_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[MAKE] = "Canon"
    exif[MODEL] = "EOS R5"
    return exif


BIG_FILES: dict[str, Callable[[], bytes]] = {
    "jpeg": lambda: encode(noise("RGB", 1031, 977, 1), "JPEG", quality=95, exif=with_camera_exif()),
    "png": lambda: encode(
        noise("RGB", 733, 691, 2), "PNG", compress_level=1, exif=with_camera_exif()
    ),
    "webp_vp8": lambda: encode(noise("RGB", 733, 691, 3), "WEBP", quality=100, method=0),
    "webp_vp8l": lambda: encode(
        noise("RGB", 733, 691, 4), "WEBP", lossless=True, method=0, quality=0
    ),
    "webp_vp8x": lambda: encode(
        noise("RGBA", 733, 691, 5), "WEBP", quality=100, method=0, exif=with_camera_exif()
    ),
}


@pytest.mark.parametrize("kind", sorted(BIG_FILES))
def test_a_file_bigger_than_the_head_is_read_from_its_head(kind: str) -> None:
    data = BIG_FILES[kind]()
    assert len(data) > HEAD
    webp_kind = {"webp_vp8": b"VP8 ", "webp_vp8l": b"VP8L", "webp_vp8x": b"VP8X"}.get(kind)
    assert webp_kind is None or data[12:16] == webp_kind

    facts = INSPECTOR.inspect(data[:HEAD])

    assert facts is not None
    with Image.open(io.BytesIO(data)) as image:
        assert (facts.width, facts.height) == image.size
        assert facts.content_type == Image.MIME[image.format or ""]
    # EXIF is read where it lies in the head: JPEG and PNG put it first, WebP (as libwebp
    # writes it) after the image data.
    assert facts.camera_make == ("Canon" if kind in ("jpeg", "png") else None)


# --- EXIF ---------------------------------------------------------------------------------------

dms = st.tuples(st.integers(0, 89), st.integers(0, 59), st.integers(0, 5999))
"""Degrees, minutes and hundredths of seconds of a latitude (longitudes reuse it)."""


@st.composite
def camera_exif(draw: st.DrawFn) -> tuple[Image.Exif, ExifFacts]:
    """EXIF as Pillow writes it, and the facts it must give."""
    words = st.lists(
        st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1),
        min_size=1,
        max_size=4,
    )
    make, model = " ".join(draw(words))[:64].strip(), " ".join(draw(words))[:64].strip()
    orientation = draw(st.integers(1, 8))
    moment = draw(
        st.datetimes(min_value=datetime(1800, 1, 1), max_value=datetime(2200, 12, 31, 23, 59, 59))
    ).replace(microsecond=0)
    offset = draw(st.sampled_from(["+00:00", "+02:00", "-05:30", "+14:00", "-12:00"]))
    (lat_d, lat_m, lat_s), (lon_d, lon_m, lon_s) = draw(dms), draw(dms)
    lon_d += draw(st.integers(0, 90))
    north, east = draw(st.booleans()), draw(st.booleans())

    exif = Image.Exif()
    exif[MAKE], exif[MODEL], exif[ORIENTATION] = make, model, orientation
    exif_ifd = exif.get_ifd(0x8769)
    exif_ifd[DATE_TIME_ORIGINAL] = moment.strftime("%Y:%m:%d %H:%M:%S")
    exif_ifd[OFFSET_TIME_ORIGINAL] = offset
    gps = exif.get_ifd(0x8825)
    gps[1], gps[3] = ("N" if north else "S"), ("E" if east else "W")
    gps[2] = (IFDRational(lat_d, 1), IFDRational(lat_m, 1), IFDRational(lat_s, 100))
    gps[4] = (IFDRational(lon_d, 1), IFDRational(lon_m, 1), IFDRational(lon_s, 100))

    def degrees(d: int, m: int, s: int, positive: bool) -> float:
        return round((d + m / 60 + s / 100 / 3600) * (1 if positive else -1), 6) + 0.0

    return exif, ExifFacts(
        camera_make=make,
        camera_model=model,
        orientation=orientation,
        captured_at=f"{moment.isoformat(timespec='seconds')}{offset}",
        position=GeoPosition(
            degrees(lat_d, lat_m, lat_s, north), degrees(lon_d, lon_m, lon_s, east)
        ),
    )


@settings(max_examples=45, deadline=None)
@given(
    written=camera_exif(), content_type=st.sampled_from(["image/jpeg", "image/png", "image/webp"])
)
def test_exif_written_by_pillow_is_read_back(
    written: tuple[Image.Exif, ExifFacts], content_type: str
) -> None:
    exif, expected = written
    data = encode(Image.new("RGB", (20, 10), "red"), FORMATS[content_type], exif=exif)

    facts = INSPECTOR.inspect(data)

    assert facts is not None
    assert (facts.content_type, facts.width, facts.height) == (content_type, 20, 10)
    assert {name: getattr(facts, name) for name in EXIF_FIELDS} == {
        name: getattr(expected, name) for name in EXIF_FIELDS
    }


def test_exif_with_and_without_its_jpeg_prefix_gives_the_same_facts() -> None:
    block = exif_block(ifd0=[ascii_entry(MAKE, b"Canon"), short_entry(ORIENTATION, 3)])

    facts = exif_facts(block)

    assert facts == exif_facts(b"Exif\0\0" + block) == ExifFacts(camera_make="Canon", orientation=3)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            b"Soci\xc3\xa9t\xc3\xa9 G\xc3\xa9n\xc3\xa9rale",
            "Société Générale",
        ),  # UTF-8, as cameras write
        (b"Bad \xff\xfe bytes", "Bad \ufffd\ufffd bytes"),
        (b"  \t Canon \n\n EOS\x00 5D  ", "Canon EOS 5D"),
        (b"\x00\x00\x00", None),
        (b"\xe2\x80\x8b\xe2\x80\xae", None),  # zero-width space, right-to-left override: format
        (b"A\xe2\x80\xaeB", "AB"),
        (b"\x1b[2J\x07Sony", "[2JSony"),
        (b"X" * 1000, "X" * 64),
        (b"Y " * 40, ("Y " * 32).strip()),
    ],
)
def test_exif_text_is_cleaned(raw: bytes, expected: str | None) -> None:
    assert clean_text(raw) == expected
    assert exif_facts(exif_block(ifd0=[ascii_entry(MAKE, raw)])).camera_make == expected


@pytest.mark.parametrize(
    ("stamps", "expected"),
    [
        ({DATE_TIME_ORIGINAL: b"2024:02:29 23:59:59"}, "2024-02-29T23:59:59"),
        ({DATE_TIME_ORIGINAL: b"2023:02:29 12:00:00"}, None),
        ({DATE_TIME_ORIGINAL: b"1799:12:31 23:59:59"}, None),
        ({DATE_TIME_ORIGINAL: b"2201:01:01 00:00:00"}, None),
        ({DATE_TIME_ORIGINAL: b"2024:01:01 24:00:00"}, None),
        ({DATE_TIME_ORIGINAL: b"2024-01-01 10:00:00"}, None),
        ({DATE_TIME_ORIGINAL: b"    :  :     :  :  "}, None),
        ({DATE_TIME_ORIGINAL: b"\xd9\xa2024:01:01 10:00:00"}, None),  # not ASCII digits
        (
            {DATE_TIME_ORIGINAL: b"2024:01:01 10:00:00", OFFSET_TIME_ORIGINAL: b"+05:45"},
            "2024-01-01T10:00:00+05:45",
        ),
        (
            {DATE_TIME_ORIGINAL: b"2024:01:01 10:00:00", OFFSET_TIME_ORIGINAL: b"+15:00"},
            "2024-01-01T10:00:00",
        ),
        (
            {DATE_TIME_ORIGINAL: b"2024:01:01 10:00:00", OFFSET_TIME_ORIGINAL: b"+05:60"},
            "2024-01-01T10:00:00",
        ),
        (
            {DATE_TIME_ORIGINAL: b"2024:01:01 10:00:00", OFFSET_TIME_ORIGINAL: b"Z"},
            "2024-01-01T10:00:00",
        ),
        (
            {DATE_TIME_ORIGINAL: b"bad", 0x9004: b"2001:01:01 01:01:01", 0x9012: b"-03:00"},
            "2001-01-01T01:01:01-03:00",
        ),
        ({DATE_TIME_ORIGINAL: b"bad", 0x9010: b"+01:00"}, "2002-02-02T02:02:02+01:00"),
    ],
)
def test_capture_time_is_validated(stamps: dict[int, bytes], expected: str | None) -> None:
    entries = [ascii_entry(tag, value) for tag, value in stamps.items()]
    ifd0 = [ascii_entry(DATE_TIME, b"2002:02:02 02:02:02")] if 0x9010 in stamps else []

    assert exif_facts(exif_block(ifd0=ifd0, exif=entries)).captured_at == expected


@pytest.mark.parametrize(
    ("latitude", "longitude", "expected"),
    [
        (
            (b"N", [(48, 1), (51, 1), (2964, 100)]),
            (b"E", [(2, 1), (17, 1), (4008, 100)]),
            GeoPosition(48.858233, 2.294467),
        ),
        (
            (b"S", [(0, 1), (0, 1), (0, 1)]),
            (b"W", [(180, 1), (0, 1), (0, 1)]),
            GeoPosition(0.0, -180.0),
        ),
        ((b"N", [(90, 1), (0, 1), (1, 1)]), (b"E", [(0, 1), (0, 1), (0, 1)]), None),  # > 90
        ((b"N", [(10, 1), (0, 1), (60, 1)]), (b"E", [(0, 1), (0, 1), (0, 1)]), None),  # 60 s
        ((b"N", [(10, 1), (0, 0), (0, 1)]), (b"E", [(0, 1), (0, 1), (0, 1)]), None),  # 0 / 0
        ((b"N", [(10, 1), (0, 1)]), (b"E", [(0, 1), (0, 1), (0, 1)]), None),  # two parts
        ((b"Q", [(10, 1), (0, 1), (0, 1)]), (b"E", [(0, 1), (0, 1), (0, 1)]), None),
        ((b"N", [(10, 1), (0, 1), (0, 1)]), (b"E", [(181, 1), (0, 1), (0, 1)]), None),
    ],
)
def test_gps_position_is_validated(
    latitude: tuple[bytes, list[tuple[int, int]]],
    longitude: tuple[bytes, list[tuple[int, int]]],
    expected: GeoPosition | None,
) -> None:
    gps = [
        ascii_entry(1, latitude[0]),
        rational_entry(2, latitude[1]),
        ascii_entry(3, longitude[0]),
        rational_entry(4, longitude[1]),
    ]

    assert exif_facts(exif_block(ifd0=[], gps=gps)).position == expected


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=2048) | st.binary(max_size=2048).map(lambda b: b"MM\x00\x2a" + b))
def test_exif_facts_never_raise(data: bytes) -> None:
    facts = exif_facts(data)
    assert facts.orientation is None or 1 <= facts.orientation <= 8


def test_png_exif_is_read_after_the_image_data_too() -> None:
    png = small_png()
    block = exif_block(ifd0=[ascii_entry(MAKE, b"Late")])
    chunk = (
        struct.pack(">I", len(block))
        + b"eXIf"
        + block
        + struct.pack(">I", zlib.crc32(b"eXIf" + block))
    )
    late = png[:-12] + chunk + png[-12:]  # before IEND

    facts = INSPECTOR.inspect(late)

    assert facts is not None
    assert facts.camera_make == "Late"


def test_png_exif_with_a_bad_crc_is_ignored() -> None:
    png = small_png()
    block = exif_block(ifd0=[ascii_entry(MAKE, b"Bad")])
    chunk = struct.pack(">I", len(block)) + b"eXIf" + block + b"\0\0\0\0"

    facts = INSPECTOR.inspect(png[:33] + chunk + png[33:])

    assert facts == ImageFacts("image/png", 48, 32)
