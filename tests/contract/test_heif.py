"""HEIC and AVIF: what the head of one says (adapters.heif_header through PillowInspector), and
their decoding for the renderer (adapters.heif_decode)."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import attrs
import pytest
import pyvips
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.exif import exif_facts
from adapters.heif_decode import decode_heic, heif_decode_bytes, load_avif
from adapters.heif_header import HeifHeader, heif_exif_span, read_heif_header
from adapters.pillow import PillowInspector
from imagecore.model import ACCEPTED_CONTENT_TYPES, ImageFacts
from imagecore.privacy import patched
from tests.support.heif_images import (
    BLUE,
    CAMERA_MAKE,
    CAMERA_MODEL,
    CAPTURED_AT,
    POSITION,
    RED,
    avif_bytes,
    grey_heic,
    heic_bytes,
    noisy_heic,
    phone_exif,
    rgba_heic,
)
from tests.support.work_bound import within_calls

HEAD = 1024 * 1024
INSPECTOR = PillowInspector()
ROTATED_A_QUARTER = 6  # EXIF: turn 90° clockwise to show upright


@pytest.fixture(scope="module")
def heic() -> bytes:
    return heic_bytes(64, 48, exif=phone_exif())


@pytest.fixture(scope="module")
def avif() -> bytes:
    return avif_bytes(64, 48, exif=phone_exif())


@pytest.fixture(scope="module")
def big_heic() -> bytes:
    """Bigger than the head an upload is inspected by, its image data before its EXIF."""
    data = noisy_heic(960, 720, exif=phone_exif())
    assert len(data) > HEAD
    return data


def facts_of(data: bytes) -> ImageFacts | None:
    return INSPECTOR.inspect(data[:HEAD])


# --- the facts ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "content_type"), [(heic_bytes, "image/heic"), (avif_bytes, "image/avif")]
)
def test_a_heif_gives_its_type_size_and_exif_facts(make: object, content_type: str) -> None:
    data = make(64, 48, exif=phone_exif())  # type: ignore[operator]

    facts = facts_of(data)

    assert facts is not None
    assert attrs.evolve(facts, location_patches=()) == ImageFacts(
        content_type=content_type,
        width=64,
        height=48,
        camera_make=CAMERA_MAKE,
        camera_model=CAMERA_MODEL,
        orientation=None,
        captured_at=CAPTURED_AT,
        position=POSITION,
    )
    assert content_type in ACCEPTED_CONTENT_TYPES
    # Patched as others download it, the file says nothing of where, and the rest as before.
    shared = b"".join(patched([data], facts.location_patches))
    assert len(shared) == len(data)
    assert attrs.evolve(facts, position=None, location_patches=()) == facts_of(shared)


@pytest.mark.parametrize("make", [heic_bytes, avif_bytes])
def test_a_rotated_heif_gives_its_displayed_size_and_no_orientation(make: object) -> None:
    data = make(64, 48, exif=phone_exif(ROTATED_A_QUARTER))  # type: ignore[operator]

    facts = facts_of(data)

    assert facts is not None
    assert (facts.width, facts.height) == (48, 64)
    assert facts.orientation is None  # the container turns it; the EXIF must not again
    assert facts.position == POSITION


def test_a_heif_without_exif_has_no_exif_facts() -> None:
    facts = facts_of(heic_bytes(30, 20))

    assert facts == ImageFacts(content_type="image/heic", width=30, height=20)
    assert heif_exif_span(heic_bytes(30, 20)) is None


@pytest.mark.parametrize("make", [heic_bytes, avif_bytes])
def test_the_exif_span_is_where_the_tiff_data_lies_in_the_file(make: object) -> None:
    data = make(64, 48, exif=phone_exif())  # type: ignore[operator]

    span = heif_exif_span(data)

    assert span is not None
    offset, length = span
    tiff = data[offset : offset + length]
    assert tiff[:4] in (b"II*\x00", b"MM\x00*")
    assert offset + length <= len(data)
    assert exif_facts(tiff).position == POSITION


def test_a_head_cut_after_the_meta_box_gives_the_size_of_the_whole_file(big_heic: bytes) -> None:
    whole = read_heif_header(big_heic)
    assert whole is not None
    assert whole.exif is not None

    facts = facts_of(big_heic)

    assert facts is not None
    assert (facts.content_type, facts.width, facts.height) == ("image/heic", 960, 720)
    # libheif writes the EXIF after the pixels, past the head here: it is lost, not misread.
    assert facts.camera_make is None
    assert heif_exif_span(big_heic[:HEAD]) is None


def test_every_cut_of_a_heif_gives_its_facts_or_none(heic: bytes) -> None:
    whole = facts_of(heic)
    meta_end = heic.index(b"mdat") - 4

    for cut in range(len(heic)):
        facts = facts_of(heic[:cut])
        if cut < meta_end:
            assert facts is None, cut
        else:  # the EXIF may be lost, the rest holds
            assert facts is not None, cut
            assert (facts.content_type, facts.width, facts.height) == (
                whole.content_type,  # type: ignore[union-attr]
                whole.width,  # type: ignore[union-attr]
                whole.height,  # type: ignore[union-attr]
            )
    assert facts_of(heic) == whole


# --- what is not a HEIF image ------------------------------------------------------------------


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    payload = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return struct.pack(">I", 8 + len(payload)) + b"ftyp" + payload


def test_an_mp4_is_not_a_heif() -> None:
    movie = ftyp(b"isom", b"iso2", b"mp41") + struct.pack(">I", 8) + b"moov"

    assert facts_of(movie) is None


@pytest.mark.parametrize(
    "tail",
    [
        b"",
        b"\x00" * 64,
        b"\xff" * 64,
        b"garbage after the ftyp box, not a box at all" * 10,
        struct.pack(">I", 0xFFFFFFFF) + b"meta" + b"\x00" * 32,  # runs far past the head
        struct.pack(">I", 1) + b"meta" + struct.pack(">Q", 2**63) + b"\x00" * 32,
        struct.pack(">I", 3) + b"meta",  # shorter than its own header
        struct.pack(">I", 12) + b"meta" + b"\x00" * 4,  # no pitm, no items
    ],
    ids=["nothing", "zeros", "ones", "text", "huge", "huge-64-bit", "too-short", "empty-meta"],
)
def test_a_heif_brand_with_no_sound_meta_box_is_none(tail: bytes) -> None:
    assert facts_of(ftyp(b"heic", b"mif1", b"heic") + tail) is None


def replace_once(data: bytes, old: bytes, new: bytes) -> bytes:
    assert data.count(old) == 1, old
    return data.replace(old, new)


@pytest.mark.parametrize("box", [b"iloc", b"iinf", b"ipma", b"ipco", b"iprp", b"pitm"])
def test_a_box_that_claims_more_than_the_file_holds_is_none(heic: bytes, box: bytes) -> None:
    at = heic.index(box) - 4
    huge = heic[:at] + struct.pack(">I", 0xFFFFFFF0) + heic[at + 4 :]

    assert facts_of(huge) is None


def test_counts_far_beyond_the_entries_are_refused_at_once(heic: bytes) -> None:
    at = heic.index(b"ipma") + 8  # the version and flags, then the entry count
    many = heic[:at] + struct.pack(">I", 0xFFFFFFFF) + heic[at + 4 :]

    # Four billion entries claimed: refused after the work the file itself is worth.
    assert within_calls(len(many), facts_of, many) is None


def test_a_primary_item_coded_as_something_else_is_none(heic: bytes) -> None:
    as_jpeg = replace_once(heic, b"hvc1", b"jpeg")

    assert facts_of(as_jpeg) is None


def test_a_primary_item_without_a_size_is_none(heic: bytes) -> None:
    assert facts_of(replace_once(heic, b"ispe", b"ispf")) is None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_bytes_changed_anywhere_never_make_the_reader_raise(
    heic: bytes, avif: bytes, data: st.DataObject
) -> None:
    original = bytearray(data.draw(st.sampled_from([heic, avif])))
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(original) - 1))
        original[at] = data.draw(st.integers(0, 255))

    facts = facts_of(bytes(original))

    if facts is not None:
        assert facts.content_type in ACCEPTED_CONTENT_TYPES
        assert facts.width > 0
        assert facts.height > 0
        assert facts.orientation is None


# --- decoding ----------------------------------------------------------------------------------


def colour_at(image: pyvips.Image, x: int, y: int) -> tuple[int, ...]:
    return tuple(round(value) for value in image(x, y)[:3])


def assert_upright_turned_a_quarter(image: pyvips.Image) -> None:
    """``marked_picture`` shown turned 90° clockwise: its red quarter is now top right."""
    assert (image.width, image.height) == (48, 64)
    assert _near(colour_at(image, image.width - 4, 4), RED)
    assert _near(colour_at(image, 4, 4), BLUE)
    assert _near(colour_at(image, image.width - 4, image.height - 4), BLUE)


def _near(colour: tuple[int, ...], expected: tuple[int, int, int]) -> bool:
    return all(abs(got - want) < 40 for got, want in zip(colour, expected, strict=True))


def test_a_heic_is_decoded_upright_at_its_displayed_size() -> None:
    data = heic_bytes(64, 48, exif=phone_exif(ROTATED_A_QUARTER))

    image = decode_heic(data)

    assert image.bands == 3
    assert image.interpretation == "srgb"
    assert_upright_turned_a_quarter(image)
    thumbnail = image.thumbnail_image(16, height=16)
    assert (thumbnail.width, thumbnail.height) == (12, 16)


def test_bytes_libheif_cannot_decode_raise_value_error(heic: bytes) -> None:
    with pytest.raises(ValueError):
        decode_heic(heic[: len(heic) // 2])
    with pytest.raises(ValueError):
        decode_heic(b"not a heif at all")


def chunked_source(data: bytes, size: int = 100) -> pyvips.Source:
    """A libvips source fed in chunks and unable to seek, as the renderer's is."""
    chunks: Iterator[bytes] = (data[at : at + size] for at in range(0, len(data), size))
    pending = b""

    def read(buffer: memoryview) -> int:
        nonlocal pending
        if not pending:
            pending = next(chunks, b"")
        count = min(len(buffer), len(pending))
        buffer[:count] = pending[:count]
        pending = pending[count:]
        return count

    source = pyvips.SourceCustom()
    source.signal_connect("read", read)
    return source


def test_an_avif_is_loaded_by_libvips_from_a_stream_upright() -> None:
    data = avif_bytes(64, 48, exif=phone_exif(ROTATED_A_QUARTER))
    pyvips.block_untrusted_set(True)  # as the renderer runs libvips: heifload is trusted

    image = load_avif(chunked_source(data), access="sequential", fail_on="error")

    assert_upright_turned_a_quarter(image.copy_memory())


def test_the_header_tells_the_decoder_planes_and_alpha() -> None:
    photo = read_heif_header(heic_bytes(64, 48))
    with_alpha = read_heif_header(rgba_heic(64, 48))

    assert photo is not None
    assert (photo.plane_bytes, photo.alpha) == (1.5, False)  # 4:2:0, 8 bits
    assert with_alpha is not None
    assert with_alpha.alpha
    assert with_alpha.plane_bytes == 2.5  # and an alpha plane


def test_the_decode_estimate_holds_the_file_and_more_for_alpha_and_av1() -> None:
    photo = HeifHeader("image/heic", 4032, 3024, plane_bytes=1.5)
    with_alpha = attrs.evolve(photo, plane_bytes=4.0, alpha=True)
    as_avif = attrs.evolve(photo, content_type="image/avif")

    file_size = 3_000_000
    estimate = heif_decode_bytes(photo, file_size)
    assert estimate > file_size + 4032 * 3024 * 6.5  # measured: 6.5 bytes a pixel
    assert heif_decode_bytes(with_alpha, file_size) > estimate
    assert heif_decode_bytes(as_avif, file_size) > file_size + 4032 * 3024 * 16.5
    with pytest.raises(ValueError):
        heif_decode_bytes(attrs.evolve(photo, content_type="image/png"), file_size)


def test_a_grey_heic_is_decoded_grey() -> None:
    image = decode_heic(grey_heic(32, 16))

    assert (image.width, image.height, image.bands) == (32, 16, 1)
    assert image.interpretation == "b-w"


def box(kind: bytes, payload: bytes, version: int | None = None) -> bytes:
    if version is not None:
        payload = bytes([version, 0, 0, 0]) + payload
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def test_a_head_full_of_property_associations_is_read_in_work_bounded_by_its_size() -> None:
    """The dearest head to walk: nearly the whole MiB is property associations, 252 for
    each of 4096 items (the primary one among them), each pointing at one of 127
    properties. Read with work in proportion to its size: at most 16 calls a byte, some 6
    an association (a walk that went back over the associations for each item would make
    4096 times more)."""
    entries = 4096
    per_entry = (HEAD - 4096) // entries - 3
    associations = min(per_entry, 255)
    indices = (bytes(range(1, 128)) * 3)[:associations]
    ipma = box(
        b"ipma",
        struct.pack(">I", entries)
        + b"".join(
            struct.pack(">HB", item, associations) + indices for item in range(1, entries + 1)
        ),
        version=0,
    )
    ispe = box(b"ispe", struct.pack(">II", 64, 48), version=0)
    ipco = box(b"ipco", b"".join([ispe] + [box(b"irot", b"\x01")] * 126))
    infe = box(b"infe", struct.pack(">HH", 1, 0) + b"hvc1" + b"\x00", version=2)
    meta = box(
        b"meta",
        box(b"pitm", struct.pack(">H", 1), version=0)
        + box(b"iinf", struct.pack(">H", 1) + infe, version=0)
        + box(b"iprp", ipco + ipma),
        version=0,
    )
    head = ftyp(b"heic", b"mif1", b"heic") + meta
    assert len(head) <= HEAD

    facts = within_calls(16 * HEAD, facts_of, head)

    assert facts is not None
    assert facts.content_type == "image/heic"


def test_a_tiled_heic_gives_the_size_of_the_whole_grid_as_an_iphone_writes_it() -> None:
    data = heic_bytes(100, 60, exif=phone_exif(ROTATED_A_QUARTER), tile_size=64)
    assert b"grid" in data  # two 64-pixel tiles side by side, the last cropped by the grid

    facts = facts_of(data)
    image = decode_heic(data)

    assert facts is not None
    assert (facts.content_type, facts.width, facts.height) == ("image/heic", 60, 100)
    assert facts.position == POSITION
    assert (image.width, image.height) == (60, 100)
