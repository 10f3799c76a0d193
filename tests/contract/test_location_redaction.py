"""Location redaction: a non-owner's copy of an original has no position and no serial numbers
in its EXIF, yet is the same file for every decoder, byte for byte the same length."""

from __future__ import annotations

import io
import itertools
import struct
import zlib
from collections.abc import Sequence
from xml.etree import ElementTree

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin

from adapters.location_redaction import (
    location_patches,
    tiff_location_patches,
    xmp_location_patches,
)
from imagecore.model import BytePatch
from imagecore.privacy import patched as apply_patches
from tests.support.malicious_files import MaliciousFile, malicious_corpus
from tests.support.work_bound import terminates, within_calls

HEAD = 1024 * 1024
MAKE, MODEL, ORIENTATION = 0x010F, 0x0110, 0x0112
EXIF_IFD, GPS_IFD = 0x8769, 0x8825
DATE_TIME_ORIGINAL = 0x9003
BODY_SERIAL, LENS_SERIAL, CAMERA_SERIAL = 0xA431, 0xA435, 0xC62F
GPS_LATITUDE_REF, GPS_LATITUDE, GPS_LONGITUDE_REF, GPS_LONGITUDE = 1, 2, 3, 4
GPS_ALTITUDE, GPS_DATE_STAMP = 6, 0x1D
BYTE, ASCII, SHORT, LONG, RATIONAL = 1, 2, 3, 4, 5
ORDERS = {"II": "<", "MM": ">"}

LATITUDE = [(48, 1), (51, 1), (2_947_311, 100_000)]
LONGITUDE = [(2, 1), (17, 1), (3_561_197, 100_000)]
ALTITUDE = [(3_571_113, 1000)]
GPS_DATE = b"2019:07:14"  # a day of its own: DateTimeOriginal must not hide it
BODY_SERIAL_TEXT = b"BODY0123456789"
LENS_SERIAL_TEXT = b"L42"  # short enough to sit in its entry
CAMERA_SERIAL_TEXT = b"DNG-CAM-555777"

Entry = tuple[int, int, int, bytes]
"""tag, type, count, the value's bytes in the file's byte order."""


# --- a small TIFF writer, for both byte orders --------------------------------------------------


def ascii_entry(tag: int, text: bytes) -> Entry:
    return (tag, ASCII, len(text) + 1, text + b"\0")


def short_entry(tag: int, value: int, order: str) -> Entry:
    return (tag, SHORT, 1, struct.pack(ORDERS[order] + "H", value))


def rational_entry(tag: int, values: Sequence[tuple[int, int]], order: str) -> Entry:
    raw = b"".join(struct.pack(ORDERS[order] + "II", n, d) for n, d in values)
    return (tag, RATIONAL, len(values), raw)


def rational_bytes(values: Sequence[tuple[int, int]], order: str) -> bytes:
    return rational_entry(0, values, order)[3]


def _ifd_size(entries: Sequence[Entry]) -> int:
    return (
        6 + 12 * len(entries) + sum(len(raw) + len(raw) % 2 for *_, raw in entries if len(raw) > 4)
    )


def _ifd(entries: Sequence[Entry], at: int, order: str, next_ifd: int = 0) -> bytes:
    """One IFD placed at ``at``, its values too long for an entry right after it."""
    endian = ORDERS[order]
    table = struct.pack(endian + "H", len(entries))
    data = b""
    data_at = at + 6 + 12 * len(entries)
    for tag, kind, count, raw in sorted(entries):
        if len(raw) <= 4:
            table += struct.pack(endian + "HHI", tag, kind, count) + raw.ljust(4, b"\0")
        else:
            table += struct.pack(endian + "HHII", tag, kind, count, data_at + len(data))
            data += raw + b"\0" * (len(raw) % 2)
    return table + struct.pack(endian + "I", next_ifd) + data


def tiff_block(
    order: str,
    ifd0: Sequence[Entry],
    exif: Sequence[Entry] = (),
    gps: Sequence[Entry] = (),
    ifd1: Sequence[Entry] = (),
    gps_pointer_in_ifd1: bool = False,
) -> bytes:
    """A TIFF structure as EXIF holds it: IFD0, its chained IFD1 if any, then the Exif and GPS
    IFDs, each followed by its long values; the GPS pointer in IFD0 unless told otherwise."""
    pointer = (0, LONG, 1, b"\0\0\0\0")  # sizes do not depend on where pointers point
    first = [*ifd0, *([(EXIF_IFD, *pointer[1:])] if exif else [])]
    second = list(ifd1)
    holder = second if gps_pointer_in_ifd1 else first
    if gps:
        holder.append((GPS_IFD, *pointer[1:]))
    first_at = 8
    second_at = first_at + _ifd_size(first)
    exif_at = second_at + (_ifd_size(second) if second else 0)
    gps_at = exif_at + (_ifd_size(exif) if exif else 0)
    endian = ORDERS[order]

    def aimed(entries: list[Entry]) -> list[Entry]:
        targets = {EXIF_IFD: exif_at, GPS_IFD: gps_at}
        return [
            (tag, kind, count, struct.pack(endian + "I", targets[tag]) if tag in targets else raw)
            for tag, kind, count, raw in entries
        ]

    block = _ifd(aimed(first), first_at, order, second_at if second else 0)
    if second:
        block += _ifd(aimed(second), second_at, order)
    if exif:
        block += _ifd(exif, exif_at, order)
    if gps:
        block += _ifd(gps, gps_at, order)
    magic = b"II\x2a\x00\x08\x00\x00\x00" if order == "II" else b"MM\x00\x2a\x00\x00\x00\x08"
    return magic + block


def camera_exif(order: str, gps_pointer_in_ifd1: bool = False) -> bytes:
    """What a camera writes: make, model, orientation, a capture time, serials, a position."""
    return tiff_block(
        order,
        ifd0=[
            ascii_entry(MAKE, b"Canon"),
            ascii_entry(MODEL, b"Canon EOS R5"),
            short_entry(ORIENTATION, 6, order),
            ascii_entry(CAMERA_SERIAL, CAMERA_SERIAL_TEXT),
        ],
        exif=[
            ascii_entry(DATE_TIME_ORIGINAL, b"2024:05:01 12:34:56"),
            ascii_entry(BODY_SERIAL, BODY_SERIAL_TEXT),
            ascii_entry(LENS_SERIAL, LENS_SERIAL_TEXT),
        ],
        gps=[
            (0, BYTE, 4, b"\x02\x03\x00\x00"),  # GPSVersionID
            ascii_entry(GPS_LATITUDE_REF, b"N"),
            rational_entry(GPS_LATITUDE, LATITUDE, order),
            ascii_entry(GPS_LONGITUDE_REF, b"E"),
            rational_entry(GPS_LONGITUDE, LONGITUDE, order),
            rational_entry(GPS_ALTITUDE, ALTITUDE, order),
            ascii_entry(GPS_DATE_STAMP, GPS_DATE),
        ],
        ifd1=[short_entry(0x0103, 6, order)] if gps_pointer_in_ifd1 else [],
        gps_pointer_in_ifd1=gps_pointer_in_ifd1,
    )


def secrets(order: str) -> list[bytes]:
    """Bytes of the position and the serials, none of which may be left in a redacted file."""
    return [
        rational_bytes(LATITUDE, order),
        rational_bytes(LONGITUDE, order),
        rational_bytes(ALTITUDE, order),
        GPS_DATE,
        BODY_SERIAL_TEXT,
        LENS_SERIAL_TEXT,
        CAMERA_SERIAL_TEXT,
    ]


# --- images -------------------------------------------------------------------------------------


def picture() -> Image.Image:
    return Image.frombytes(
        "RGB",
        (40, 24),
        bytes(
            (x * 7 + y * 5 + c * 80) % 256 for y in range(24) for x in range(40) for c in range(3)
        ),
    )


def encode(format: str, exif: bytes | None = None) -> bytes:
    """A file of ``format`` made by Pillow, with the TIFF structure ``exif`` as its EXIF."""
    options: dict[str, object] = {"lossless": True} if format == "WEBP" else {}
    if exif is not None:
        options["exif"] = b"Exif\0\0" + exif  # JPEG's APP1 form; Pillow strips it for PNG and WebP
    buffer = io.BytesIO()
    picture().save(buffer, format=format, **options)
    return buffer.getvalue()


CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


def redacted(data: bytes, content_type: str) -> bytes:
    patches = location_patches(data[:HEAD], content_type)
    return b"".join(apply_patches([data], patches))


def pixels(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        return image.tobytes()


def exif_of(data: bytes) -> Image.Exif:
    with Image.open(io.BytesIO(data)) as image:
        return image.getexif()


def blank(value: object) -> bool:
    """Whether an EXIF text reads as nothing: absent, empty or NULs."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return value is None or (isinstance(value, str) and not value.strip("\0"))


# --- what a non-owner gets ----------------------------------------------------------------------


@pytest.mark.parametrize("order", ["II", "MM"])
@pytest.mark.parametrize("format", ["JPEG", "PNG", "WEBP"])
def test_redacted_original_has_no_position_and_no_serials_but_the_same_image(
    format: str, order: str
) -> None:
    original = encode(format, camera_exif(order))
    before = exif_of(original)
    assert before.get_ifd(GPS_IFD)[GPS_LATITUDE]  # the file does carry a position
    assert before.get_ifd(EXIF_IFD)[BODY_SERIAL] == BODY_SERIAL_TEXT.decode()

    after_bytes = redacted(original, CONTENT_TYPES[format])
    after = exif_of(after_bytes)

    assert len(after_bytes) == len(original)
    assert pixels(after_bytes) == pixels(original)
    assert after.get_ifd(GPS_IFD) == {}
    assert all(blank(after.get_ifd(EXIF_IFD).get(tag)) for tag in (BODY_SERIAL, LENS_SERIAL))
    assert blank(after.get(CAMERA_SERIAL))
    for tag in (MAKE, MODEL, ORIENTATION):
        assert after[tag] == before[tag]
    assert after.get_ifd(EXIF_IFD)[DATE_TIME_ORIGINAL] == "2024:05:01 12:34:56"
    for secret in secrets(order):
        assert secret not in after_bytes


def test_pillows_own_exif_is_redacted_too() -> None:
    exif = Image.Exif()
    exif[MAKE] = "Apple"
    exif[ORIENTATION] = 3
    exif.get_ifd(EXIF_IFD)[BODY_SERIAL] = BODY_SERIAL_TEXT.decode()
    exif.get_ifd(GPS_IFD).update({GPS_LATITUDE_REF: "S", GPS_LATITUDE: (33.0, 51.0, 31.25)})
    original = encode("JPEG", exif.tobytes()[6:])

    after = exif_of(redacted(original, "image/jpeg"))

    assert after.get_ifd(GPS_IFD) == {}
    assert blank(after.get_ifd(EXIF_IFD).get(BODY_SERIAL))
    assert (after[MAKE], after[ORIENTATION]) == ("Apple", 3)


def test_a_gps_pointer_in_a_chained_ifd_is_followed() -> None:
    original = encode("JPEG", camera_exif("MM", gps_pointer_in_ifd1=True))

    after = redacted(original, "image/jpeg")

    assert len(after) == len(original)
    assert pixels(after) == pixels(original)
    for secret in secrets("MM"):
        assert secret not in after


@pytest.mark.parametrize("order", ["II", "MM"])
def test_a_png_chunk_that_was_patched_keeps_a_valid_crc(order: str) -> None:
    original = encode("PNG", camera_exif(order))

    after = redacted(original, "image/png")

    at = after.index(b"eXIf") - 4
    length = struct.unpack_from(">I", after, at)[0]
    crc = struct.unpack_from(">I", after, at + 8 + length)[0]
    assert zlib.crc32(after[at + 4 : at + 8 + length]) == crc
    with Image.open(io.BytesIO(after)) as image:
        image.load()  # Pillow refuses a chunk whose CRC is wrong


def test_a_gps_pointer_written_as_a_short_is_followed_as_readers_do() -> None:
    block = bytearray(camera_exif("MM"))
    pointer = block.index(struct.pack(">HHI", GPS_IFD, LONG, 1))
    gps_at = struct.unpack_from(">I", block, pointer + 8)[0]
    block[pointer : pointer + 12] = struct.pack(">HHIH2x", GPS_IFD, SHORT, 1, gps_at)
    original = encode("JPEG", bytes(block))
    assert exif_of(original).get_ifd(GPS_IFD)[GPS_LATITUDE]

    after = redacted(original, "image/jpeg")

    assert exif_of(after).get_ifd(GPS_IFD) == {}
    for secret in secrets("MM"):
        assert secret not in after


def test_a_webp_exif_chunk_with_jpegs_exif_prefix_is_redacted() -> None:
    """Some writers copy JPEG's APP1 payload, ``Exif\\0\\0`` included, into the chunk."""
    plain = encode("WEBP", camera_exif("II"))
    at = plain.index(b"EXIF")
    size = struct.unpack_from("<I", plain, at + 4)[0]
    original = bytearray(
        plain[:at]
        + b"EXIF"
        + struct.pack("<I", size + 6)
        + b"Exif\0\0"
        + plain[at + 8 : at + 8 + size + size % 2]
        + plain[at + 8 + size + size % 2 :]
    )
    original[4:8] = struct.pack("<I", len(original) - 8)
    assert exif_of(bytes(original)).get_ifd(GPS_IFD)[GPS_LATITUDE]

    after = redacted(bytes(original), "image/webp")

    assert exif_of(after).get_ifd(GPS_IFD) == {}
    assert pixels(after) == pixels(bytes(original))
    for secret in secrets("II"):
        assert secret not in after


def test_a_png_chunk_whose_crc_was_wrong_keeps_a_wrong_one() -> None:
    """Decoders skip (or refuse) such a chunk: fixing its CRC would make them read it."""
    original = bytearray(encode("PNG", camera_exif("MM")))
    at = original.index(b"eXIf") - 4
    crc_at = at + 8 + struct.unpack_from(">I", original, at)[0]
    original[crc_at] ^= 0xFF

    after = redacted(bytes(original), "image/png")

    assert after[crc_at : crc_at + 4] == original[crc_at : crc_at + 4]
    assert BODY_SERIAL_TEXT not in after


def test_a_heif_style_bare_tiff_is_patched_at_its_offset_in_the_file() -> None:
    tiff = camera_exif("MM")
    file = b"\0" * 1000 + tiff + b"\0" * 100

    patches = tiff_location_patches(tiff, 1000)
    after = b"".join(apply_patches([file], patches))

    assert all(
        patch.offset >= 1000 and patch.offset + len(patch.data) <= 1000 + len(tiff)
        for patch in patches
    )
    for secret in secrets("MM"):
        assert secret not in after
    assert b"Canon EOS R5" in after


def test_legacy_png_raw_profile_with_a_position_becomes_a_chunk_nobody_reads() -> None:
    hex_text = (b"Exif\0\0" + camera_exif("II")).hex().encode()
    profile = b"\nexif\n" + str(len(hex_text) // 2).encode().rjust(8) + b"\n" + hex_text + b"\n"
    plain = encode("PNG")
    chunks = [
        _png_chunk(b"tEXt", b"Raw profile type exif\0" + profile),
        _png_chunk(b"zTXt", b"Raw profile type exif\0\0" + zlib.compress(profile)),
        _png_chunk(b"tEXt", b"Comment\0kept as it is"),
    ]
    original = plain[:33] + b"".join(chunks) + plain[33:]

    after = redacted(original, "image/png")

    assert len(after) == len(original)
    assert pixels(after) == pixels(original)
    assert hex_text not in after
    assert zlib.compress(profile) not in after
    assert b"kept as it is" in after
    with Image.open(io.BytesIO(after)) as image:
        assert "Raw profile type exif" not in image.info
        assert image.info["Comment"] == "kept as it is"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


# --- XMP, which repeats EXIF as text --------------------------------------------------------------

XMP = b"""<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:tiff="http://ns.adobe.com/tiff/1.0/"
    xmlns:exif="http://ns.adobe.com/exif/1.0/"
    xmlns:aux="http://ns.adobe.com/exif/1.0/aux/"
    xmp:CreatorTool="Adobe Lightroom"
    tiff:Orientation="6"
    exif:GPSLatitude="48,51.491218N"
    exif:GPSLongitude = '2,17.593532E'
    aux:SerialNumber="BODY0123456789">
   <exif:GPSAltitude>3571113/1000</exif:GPSAltitude>
   <exif:GPSTimeStamp>2019-07-14T10:00:00Z</exif:GPSTimeStamp>
   <aux:LensSerialNumber>LENS-777</aux:LensSerialNumber>
   <tiff:Make>Canon</tiff:Make>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""
XMP_SECRETS = [
    b"48,51.491218N",
    b"2,17.593532E",
    b"3571113/1000",
    b"2019-07-14T10:00:00Z",
    BODY_SERIAL_TEXT,
    b"LENS-777",
    b"GPS",
    b"SerialNumber",
]
RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
TIFF = "{http://ns.adobe.com/tiff/1.0/}"
XMP_NS = "{http://ns.adobe.com/xap/1.0/}"


def with_xmp(format: str, compressed: bool = False) -> bytes:
    buffer = io.BytesIO()
    if format == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", XMP.decode(), zip=compressed)
        picture().save(buffer, format="PNG", pnginfo=info)
    else:
        options = {"lossless": True} if format == "WEBP" else {}
        picture().save(buffer, format=format, xmp=XMP, **options)
    return buffer.getvalue()


def xmp_of(data: bytes) -> bytes | None:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        xmp = image.info.get("xmp", image.info.get("XML:com.adobe.xmp"))
    return xmp.encode() if isinstance(xmp, str) else xmp


@pytest.mark.parametrize("format", ["JPEG", "PNG", "WEBP"])
def test_xmp_loses_its_position_and_serials_and_stays_valid_xml(format: str) -> None:
    original = with_xmp(format)
    assert xmp_of(original) is not None

    after = redacted(original, CONTENT_TYPES[format])

    assert len(after) == len(original)
    assert pixels(after) == pixels(original)
    for secret in XMP_SECRETS:
        assert secret not in after
    xmp = xmp_of(after)
    assert xmp is not None
    description = ElementTree.fromstring(xmp.split(b"?>", 1)[1].rsplit(b"<?", 1)[0]).find(
        f"{RDF}RDF/{RDF}Description"
    )
    assert description is not None
    assert description.get(f"{XMP_NS}CreatorTool") == "Adobe Lightroom"
    assert description.get(f"{TIFF}Orientation") == "6"
    assert description.findtext(f"{TIFF}Make") == "Canon"
    assert [child.tag for child in description] == [f"{TIFF}Make"]


def test_compressed_xmp_with_a_position_becomes_a_chunk_nobody_reads() -> None:
    original = with_xmp("PNG", compressed=True)
    assert zlib.compress(b"48,51.491218N") not in original  # the position is compressed away

    after = redacted(original, "image/png")

    assert len(after) == len(original)
    assert pixels(after) == pixels(original)
    assert xmp_of(after) is None
    assert original.count(b"iTXt") == 1
    assert b"iTXt" not in after


def test_hostile_xmp_is_searched_in_linear_time() -> None:
    pieces = [
        b' a:GPSx="' * 50_000,  # quotes that never close where they should
        b"<a:GPSx " * 50_000,  # elements that never end
        b" " + b"a" * 200_000 + b"SerialNumbe",  # a long name that is almost a serial's
        b"<" + b"b" * 200_000,  # a long name with no prefix
    ]
    for text in pieces:
        # Inside one regular expression search, which no call count sees: a backtracking
        # search of these would run for hours, a linear one takes milliseconds.
        terminates(30, xmp_location_patches, text, 0)


# --- nothing to hide ----------------------------------------------------------------------------


@pytest.mark.parametrize("format", ["JPEG", "PNG", "WEBP", "GIF"])
def test_a_file_without_exif_needs_no_patch(format: str) -> None:
    buffer = io.BytesIO()
    picture().save(buffer, format=format)
    content_type = "image/gif" if format == "GIF" else CONTENT_TYPES[format]

    assert location_patches(buffer.getvalue(), content_type) == ()


@pytest.mark.parametrize("format", ["JPEG", "PNG", "WEBP"])
def test_exif_without_position_or_serials_needs_no_patch(format: str) -> None:
    exif = tiff_block(
        "MM",
        ifd0=[ascii_entry(MAKE, b"Nikon"), short_entry(ORIENTATION, 1, "MM")],
        exif=[ascii_entry(DATE_TIME_ORIGINAL, b"2024:05:01 12:34:56")],
    )

    assert location_patches(encode(format, exif), CONTENT_TYPES[format]) == ()


# --- hostile and broken EXIF --------------------------------------------------------------------


def _loop_exif(order: str) -> bytes:
    """IFD0 chained to itself, its Exif and GPS pointers aimed at itself too."""
    endian = ORDERS[order]
    table = struct.pack(endian + "H", 3) + b"".join(
        struct.pack(endian + "HHII", tag, LONG, 1, 8) for tag in (MAKE, EXIF_IFD, GPS_IFD)
    )
    return order.encode() + struct.pack(endian + "HI", 42, 8) + table + struct.pack(endian + "I", 8)


def _huge_count_exif() -> bytes:
    """An IFD claiming 0xFFFF entries, and a GPS IFD of 0xFFFF rationals of 0xFFFFFFFF each."""
    gps_at = 8 + 2 + 12 + 4
    ifd0 = struct.pack(">H", 1) + struct.pack(">HHII", GPS_IFD, LONG, 1, gps_at) + b"\0" * 4
    gps = struct.pack(">H", 0xFFFF) + struct.pack(">HHII", GPS_LATITUDE, RATIONAL, 0xFFFFFFFF, 0)
    return b"MM\x00\x2a\x00\x00\x00\x08" + ifd0 + gps + b"\0" * 64


def _overlapping_ifds_exif(entries: int) -> bytes:
    """``entries`` GPS pointers each aimed two bytes further into one table of ``entries``
    entries: every IFD read would be a new one, of thousands of entries."""
    table_at = 8
    rows = b"".join(
        struct.pack(">HHII", GPS_IFD, LONG, 1, table_at + 2 + 12 * (i % 64)) for i in range(entries)
    )
    return b"MM\x00\x2a\x00\x00\x00\x08" + struct.pack(">H", entries) + rows + b"\0" * 4


def _past_the_end_exif() -> bytes:
    block = bytearray(camera_exif("MM"))
    gps_pointer = block.index(struct.pack(">HHI", GPS_IFD, LONG, 1))
    block[gps_pointer + 8 : gps_pointer + 12] = struct.pack(">I", 0xFFFFFFF0)
    return bytes(block)


HOSTILE = {
    "loop-II": _loop_exif("II"),
    "loop-MM": _loop_exif("MM"),
    "huge-counts": _huge_count_exif(),
    "overlapping-ifds": _overlapping_ifds_exif(5000),
    "gps-past-the-end": _past_the_end_exif(),
    "truncated-header": b"MM\x00\x2a\x00",
    "not-tiff": b"XX\x00\x2a\x00\x00\x00\x08" + b"\0" * 20,
    "empty": b"",
}


@pytest.mark.parametrize("name", HOSTILE)
@pytest.mark.parametrize("format", ["JPEG", "PNG", "WEBP"])
def test_hostile_exif_gives_patches_that_keep_the_image_without_raising(
    format: str, name: str
) -> None:
    original = encode(format, HOSTILE[name])

    # In proportion to the file: an IFD chain that loops, or counts that lie, would be read
    # without end.
    patches = within_calls(
        1000 + 4 * len(original), location_patches, original, CONTENT_TYPES[format]
    )

    after = b"".join(apply_patches([original], patches))
    assert len(after) == len(original)
    assert pixels(after) == pixels(original)


@pytest.mark.parametrize("order", ["II", "MM"])
@pytest.mark.parametrize("format", ["JPEG", "PNG", "WEBP"])
def test_every_truncation_of_the_head_is_answered_without_raising(format: str, order: str) -> None:
    original = encode(format, camera_exif(order))
    full = location_patches(original, CONTENT_TYPES[format])

    for end in range(0, min(len(original), 1200), 7):
        patches = location_patches(original[:end], CONTENT_TYPES[format])
        assert all(patch.offset + len(patch.data) <= end for patch in patches)
    assert full


def test_many_large_overlapping_ifds_cost_no_more_than_the_buffer() -> None:
    """5,000 GPS pointers, each to another offset of a megabyte whose every two bytes read as
    an IFD of 4,112 entries: 20 million entries, unless reading stops at the buffer's worth."""
    pointers = 5000
    filler_at = 8 + 2 + 12 * pointers + 4
    rows = b"".join(
        struct.pack(">HHII", GPS_IFD, LONG, 1, filler_at + 2 * i) for i in range(pointers)
    )
    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + struct.pack(">H", pointers) + rows + b"\0" * 4
    tiff += b"\x10" * (HEAD - len(tiff))

    # The buffer holds at most HEAD // 12 entries, read with some 4.5 calls each; the 20
    # million entries the pointers claim would take 90 million.
    within_calls(HEAD // 12 * 8, tiff_location_patches, tiff, 0)


def test_redacting_a_redacted_file_needs_no_patch() -> None:
    once = redacted(encode("JPEG", camera_exif("MM")), "image/jpeg")

    assert location_patches(once, "image/jpeg") == ()


def test_a_gps_pointer_aimed_at_ifd0_leaves_ifd0_whole() -> None:
    """Such a GPS IFD is IFD0's table, which holds the orientation: it is kept."""
    tiff = _loop_exif("MM")
    assert tiff_location_patches(tiff, 0) == ()


def test_a_gps_value_laid_over_ifd0_does_not_cost_ifd0_its_entries() -> None:
    block = bytearray(camera_exif("MM"))
    latitude = block.index(struct.pack(">HHI", GPS_LATITUDE, RATIONAL, 3))
    block[latitude + 4 : latitude + 12] = struct.pack(">II", 10, 8)  # 80 bytes from IFD0 on
    original = encode("JPEG", bytes(block))
    before = exif_of(original)

    after = exif_of(redacted(original, "image/jpeg"))

    assert after.get_ifd(GPS_IFD) == {}
    for tag in (MAKE, MODEL, ORIENTATION):
        assert after[tag] == before[tag]
    assert CAMERA_SERIAL in after
    assert blank(after[CAMERA_SERIAL])


@pytest.mark.parametrize("file", malicious_corpus(), ids=lambda file: file.name)
def test_the_malicious_corpus_gives_patches_without_raising(file: MaliciousFile) -> None:
    for content_type in CONTENT_TYPES.values():
        patches = location_patches(file.data[:HEAD], content_type)
        assert all(
            patch.offset >= 0 and patch.offset + len(patch.data) <= len(file.data)
            for patch in patches
        )


# --- applying patches to a stream ---------------------------------------------------------------


def patched_whole(data: bytes, patches: Sequence[BytePatch]) -> bytes:
    result = bytearray(data)
    for patch in patches:
        result[patch.offset : patch.offset + len(patch.data)] = patch.data
    return bytes(result)


def chunked(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    edges = [0, *sorted(cut % (len(data) + 1) for cut in cuts), len(data)]
    return [data[low:high] for low, high in itertools.pairwise(edges)]


REDACTED_JPEG = encode("JPEG", camera_exif("II"))
JPEG_PATCHES = location_patches(REDACTED_JPEG, "image/jpeg")


def test_one_byte_chunks_give_the_patched_file() -> None:
    pieces = [REDACTED_JPEG[i : i + 1] for i in range(len(REDACTED_JPEG))]

    assert b"".join(apply_patches(pieces, JPEG_PATCHES)) == patched_whole(
        REDACTED_JPEG, JPEG_PATCHES
    )


def test_a_patch_split_over_two_chunks_is_applied_to_both() -> None:
    patch = max(JPEG_PATCHES, key=lambda patch: len(patch.data))
    assert len(patch.data) > 1
    middle = patch.offset + len(patch.data) // 2
    pieces = [REDACTED_JPEG[:middle], REDACTED_JPEG[middle:]]

    assert b"".join(apply_patches(pieces, JPEG_PATCHES)) == patched_whole(
        REDACTED_JPEG, JPEG_PATCHES
    )


def test_a_range_starting_inside_a_patch_gets_the_patched_rest() -> None:
    patch = max(JPEG_PATCHES, key=lambda patch: len(patch.data))
    start = patch.offset + 1
    end = patch.offset + len(patch.data) + 50

    served = b"".join(apply_patches([REDACTED_JPEG[start:end]], JPEG_PATCHES, start))

    assert served == patched_whole(REDACTED_JPEG, JPEG_PATCHES)[start:end]


def test_chunks_no_patch_touches_are_passed_on_as_they_are() -> None:
    tail = REDACTED_JPEG[-100:]
    served = list(apply_patches([tail], JPEG_PATCHES, len(REDACTED_JPEG) - 100))

    assert served[0] is tail


@settings(max_examples=40, deadline=None)
@given(
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
    start=st.integers(min_value=0),
    length=st.integers(min_value=0),
)
def test_any_chunking_of_any_range_equals_patching_the_whole_file(
    cuts: list[int], start: int, length: int
) -> None:
    start %= len(REDACTED_JPEG) + 1
    end = start + length % (len(REDACTED_JPEG) - start + 1)
    whole = patched_whole(REDACTED_JPEG, JPEG_PATCHES)

    served = b"".join(apply_patches(chunked(REDACTED_JPEG[start:end], cuts), JPEG_PATCHES, start))

    assert served == whole[start:end]
