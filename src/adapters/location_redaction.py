"""Same-length byte patches that take the position and the camera's serial numbers out of an
original's EXIF and XMP, and the streaming of a file with its patches applied.

A non-owner's download of a public original must not tell where it was taken, yet it must stay
the uploaded file: the same pixels, no re-encoding, the same length (so that HTTP Range requests
mean the same bytes). EXIF allows exactly that: an IFD's entries can be emptied in place.

- The GPS IFD keeps its place, and IFD0 its pointer to it, but its entry count, entries, next
  pointer and every value they point to become zeros: readers (Pillow, libexif, exiv2, browsers)
  see an empty GPS IFD, and the coordinates' bytes are gone from the file, not just unlinked.
  Zeroing the pointer instead would send readers to offset 0, the TIFF header, and they would
  read "II*" or "MM" as an entry count.
- BodySerialNumber, LensSerialNumber and CameraSerialNumber keep their entries, with values of
  NULs: an empty string to every reader.
- Bytes that another kept entry, or an IFD's table, also claims are never zeroed, so that a file
  whose structures overlap (no camera writes one) loses no orientation or other kept value.
- XMP, which repeats EXIF as text (Lightroom, Photoshop and exiftool copy the position there),
  loses its GPS* and *SerialNumber properties: each attribute or element becomes spaces, which
  XML and RDF ignore between attributes and between property elements.
- A PNG chunk changed here gets its CRC recomputed, where it was right before; a compressed one
  that holds a position or a serial (ImageMagick's legacy "Raw profile type exif" text, a
  compressed XMP iTXt) becomes an unknown ancillary chunk of zeros, which every decoder skips:
  zlib data cannot be patched in place and stay readable.

Everything read from the file is checked against the buffer, and the work is bounded by the
buffer's size: a malformed part gives no patches and nothing raises.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator

import attrs

from adapters.exif import EXIF_IFD, GPS_IFD
from imagecore.model import BytePatch

BODY_SERIAL_NUMBER = 0xA431
LENS_SERIAL_NUMBER = 0xA435
CAMERA_SERIAL_NUMBER = 0xC62F  # DNG, in IFD0
SERIAL_TAGS = frozenset({BODY_SERIAL_NUMBER, LENS_SERIAL_NUMBER, CAMERA_SERIAL_NUMBER})

_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
"""Bytes per value of each TIFF field type (BYTE ... DOUBLE, and IFD of TIFF-EP)."""
_SHORT, _LONG, _IFD = 3, 4, 13
_ENTRY = 12  # tag, type, count, value or offset
_INLINE = 4  # values of at most 4 bytes sit in the entry itself
_POINTER_TAGS = (EXIF_IFD, GPS_IFD)

_EXIF_PREFIX = b"Exif\0\0"
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM and RSTn: no length follows
_JPEG_APP1, _JPEG_SOS, _JPEG_EOI = 0xE1, 0xDA, 0xD9
_JPEG_XMP_PREFIXES = (b"http://ns.adobe.com/xap/1.0/\0", b"http://ns.adobe.com/xmp/extension/\0")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_MAX_LENGTH = 2**31 - 1
_PNG_RAW_PROFILES = (b"Raw profile type exif", b"Raw profile type APP1")
_PNG_XMP_KEYWORD = b"XML:com.adobe.xmp"
_PNG_SKIPPED_CHUNK = b"rmVd"
"""Ancillary, private, safe to copy, and no decoder's: what a neutralised text chunk becomes."""
_INFLATE_LIMIT = 4 * 1024 * 1024  # a 64 KiB APP1 in hex is 128 KiB; XMP packets are smaller

_XMP_PROPERTY = rb"[\w.-]+:(?:GPS[\w.-]*|[\w.-]*SerialNumber)"
_XMP_HIDDEN = re.compile(
    # an attribute of an rdf:Description, or an element whose value is text (the only form a
    # GPS coordinate or a serial number takes); neither pattern can look past the next quote
    # or "<", so a search costs time linear in the text
    rb"(?<=\s)" + _XMP_PROPERTY + rb"\s*=\s*(?:\"[^\"]*\"|'[^']*')"
    rb"|<(" + _XMP_PROPERTY + rb")(?:\s[^<>]*)?(?:/>|>[^<]*</\1\s*>)"
)

Span = tuple[int, int]
"""A half-open byte range [start, end)."""


def location_patches(head: bytes, content_type: str) -> tuple[BytePatch, ...]:
    """Patches that remove the GPS position and the serial numbers from the EXIF and XMP of
    the file whose first bytes are ``head`` (the metadata of JPEG, PNG and WebP files lies in
    their first megabyte in practice), sorted and disjoint, with file offsets. A GIF, an
    unknown ``content_type``, a file without either or whose metadata cannot be read give none.

    Applied (see :func:`imagecore.privacy.patched`), they leave a file of the same length whose
    image every decoder reads as before, whose other metadata is unchanged, and which no longer
    holds the position's or the serials' bytes anywhere its EXIF or XMP did. Never raises.
    """
    if content_type == "image/jpeg":
        found = list(_jpeg_patches(head))
    elif content_type == "image/png":
        found = list(_png_patches(head))
    elif content_type == "image/webp":
        found = list(_webp_patches(head))
    else:
        found = []
    return tuple(sorted((patch for patches in found for patch in patches), key=_offset))


def tiff_location_patches(tiff: bytes, base_offset: int) -> tuple[BytePatch, ...]:
    """The patches of :func:`location_patches` for a bare TIFF structure (a byte-order mark,
    42, and IFDs: EXIF without its ``Exif\\0\\0`` prefix) lying at ``base_offset`` in a file.

    Offsets in EXIF count from its TIFF header, so ``tiff`` must begin there; bytes outside it
    are never patched. Never raises.
    """
    wiped, kept = _tiff_spans(tiff)
    return tuple(
        BytePatch(base_offset + start, bytes(end - start))
        for start, end in _subtract(_merge(wiped), _merge(kept))
        if tiff.count(0, start, end) != end - start  # already zeros: nothing to hide
    )


def xmp_location_patches(xmp: bytes, base_offset: int) -> tuple[BytePatch, ...]:
    """The patches of :func:`location_patches` for an XMP packet (UTF-8 text) lying at
    ``base_offset`` in a file: every property named GPS* (exif:GPSLatitude, the GPS* parts of
    IPTC locations...) or *SerialNumber (aux:SerialNumber, exifEX:BodySerialNumber...) turned
    into spaces. Never raises; time linear in ``xmp``."""
    return tuple(
        BytePatch(base_offset + found.start(), b" " * (found.end() - found.start()))
        for found in _XMP_HIDDEN.finditer(xmp)
    )


def _offset(patch: BytePatch) -> int:
    return patch.offset


# --- TIFF ---------------------------------------------------------------------------------------


@attrs.frozen
class _Entry:
    at: int
    tag: int
    kind: int
    count: int
    value: Span | None
    """Where the value lies in the TIFF, None if its type is unknown or it is out of bounds."""
    pointer: int | None
    """The value as an offset, if it is one SHORT, LONG or IFD: readers follow any of them."""


def _tiff_spans(tiff: bytes) -> tuple[list[Span], list[Span]]:
    """The spans to zero, and those to keep whatever the first list says.

    IFD0's chain (IFD1 holds the thumbnail) and the IFDs their pointers name are walked once
    each; no more entries are read in all than the TIFF could hold without overlapping IFDs,
    so that IFDs aimed at each other or at one huge table cost no more than the buffer's size.
    """
    wiped: list[Span] = []
    kept: list[Span] = []
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None or len(tiff) < 8 or struct.unpack_from(order + "H", tiff, 2)[0] != 42:
        return wiped, kept
    budget = len(tiff) // _ENTRY
    visited: set[int] = set()
    pending: list[tuple[int, bool, bool]] = [  # IFD offset, is GPS, follows its chain
        (struct.unpack_from(order + "I", tiff, 4)[0], False, True)
    ]
    while pending:
        at, is_gps, chained = pending.pop()
        if at in visited or at < 8:
            continue
        visited.add(at)
        table = _ifd(tiff, order, at, budget)
        if table is None:
            continue
        entries, table_end = table
        budget -= len(entries)
        if is_gps:
            wiped.append((at, table_end))
            wiped.extend(entry.value for entry in entries if entry.value is not None)
            continue
        kept.append((at, at + 2))
        kept.append((table_end - 4, table_end))
        for entry in entries:
            if entry.tag in SERIAL_TAGS and entry.value is not None:
                inline = entry.value[0] == entry.at + 8
                kept.append((entry.at, entry.at + (8 if inline else _ENTRY)))
                wiped.append(entry.value)
                continue
            kept.append((entry.at, entry.at + _ENTRY))
            if entry.value is not None:
                kept.append(entry.value)
            if entry.tag in _POINTER_TAGS and entry.count == 1 and entry.pointer is not None:
                pending.append((entry.pointer, entry.tag == GPS_IFD, False))
        if chained:
            next_ifd = struct.unpack_from(order + "I", tiff, table_end - 4)[0]
            if next_ifd:
                pending.append((next_ifd, False, True))
    return wiped, kept


def _ifd(tiff: bytes, order: str, at: int, budget: int) -> tuple[list[_Entry], int] | None:
    """The entries of the IFD at ``at`` and where its table ends (after the next-IFD
    pointer), or None if that table is not whole in ``tiff`` or has more than ``budget``
    entries."""
    if at + 2 > len(tiff):
        return None
    count = struct.unpack_from(order + "H", tiff, at)[0]
    table_end = at + 2 + _ENTRY * count + 4
    if count > budget or table_end > len(tiff):
        return None
    entries = []
    fields = struct.iter_unpack(order + "HHI4s", tiff[at + 2 : table_end - 4])
    for index, (tag, kind, value_count, field) in enumerate(fields):
        entry_at = at + 2 + _ENTRY * index
        offset_field = struct.unpack(order + "I", field)[0]
        size = _TYPE_SIZES.get(kind, 0) * value_count
        value: Span | None
        if kind not in _TYPE_SIZES:
            value = None
        elif size <= _INLINE:
            value = (entry_at + 8, entry_at + 8 + size)
        elif offset_field + size <= len(tiff):
            value = (offset_field, offset_field + size)
        else:
            value = None
        pointer = None
        if value_count == 1 and kind in (_LONG, _IFD):
            pointer = offset_field
        elif value_count == 1 and kind == _SHORT:
            pointer = struct.unpack(order + "H", field[:2])[0]
        entries.append(_Entry(entry_at, tag, kind, value_count, value, pointer))
    return entries, table_end


def _merge(spans: list[Span]) -> list[Span]:
    """``spans`` sorted, with those that overlap or touch joined, and empty ones dropped."""
    merged: list[Span] = []
    for start, end in sorted(spans):
        if start >= end:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _subtract(spans: list[Span], holes: list[Span]) -> list[Span]:
    """The parts of ``spans`` outside ``holes``; both merged (sorted, disjoint)."""
    remaining: list[Span] = []
    first = 0
    for start, end in spans:
        while first < len(holes) and holes[first][1] <= start:
            first += 1
        low = start
        index = first
        while index < len(holes) and holes[index][0] < end:
            if holes[index][0] > low:
                remaining.append((low, holes[index][0]))
            low = max(low, holes[index][1])
            index += 1
        if low < end:
            remaining.append((low, end))
    return remaining


# --- containers ---------------------------------------------------------------------------------


def _jpeg_patches(head: bytes) -> Iterator[tuple[BytePatch, ...]]:
    """The patches of each EXIF and XMP APP1 segment before the image data."""
    if not head.startswith(b"\xff\xd8"):
        return
    at = 2
    while at + 4 <= len(head):
        if head[at] != 0xFF:
            return
        marker = head[at + 1]
        if marker == 0xFF:  # a fill byte before the marker
            at += 1
            continue
        if marker in _JPEG_STANDALONE:
            at += 2
            continue
        if marker in (_JPEG_SOS, _JPEG_EOI):
            return
        length = int.from_bytes(head[at + 2 : at + 4], "big")
        if length < 2:
            return
        end = at + 2 + length
        data_start, data_end = at + 4, min(end, len(head))
        if marker == _JPEG_APP1 and head.startswith(_EXIF_PREFIX, data_start):
            tiff_at = data_start + len(_EXIF_PREFIX)
            yield tiff_location_patches(head[tiff_at:data_end], tiff_at)
        elif marker == _JPEG_APP1 and head.startswith(_JPEG_XMP_PREFIXES, data_start):
            yield xmp_location_patches(head[data_start:data_end], data_start)
        at = end


def _webp_patches(head: bytes) -> Iterator[tuple[BytePatch, ...]]:
    """The patches of each EXIF and XMP chunk; some writers put JPEG's ``Exif\\0\\0``
    before the TIFF of the EXIF chunk, which readers skip, and so does this."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WEBP":
        return
    end = min(len(head), 8 + int.from_bytes(head[4:8], "little"))
    at = 12
    while at + 8 <= end:
        size = int.from_bytes(head[at + 4 : at + 8], "little")
        data_start, data_end = at + 8, at + 8 + size
        fourcc = head[at : at + 4]
        if fourcc == b"EXIF":
            if head.startswith(_EXIF_PREFIX, data_start):
                data_start += len(_EXIF_PREFIX)
            yield tiff_location_patches(head[data_start : min(data_end, end)], data_start)
        elif fourcc == b"XMP ":
            yield xmp_location_patches(head[data_start : min(data_end, end)], data_start)
        at = data_end + (size & 1)


def _png_patches(head: bytes) -> Iterator[tuple[BytePatch, ...]]:
    """The patches of each whole chunk of ``head`` that holds EXIF or XMP, CRCs included."""
    if not head.startswith(_PNG_SIGNATURE):
        return
    at = len(_PNG_SIGNATURE)
    while at + 8 <= len(head):
        length, kind = struct.unpack_from(">I4s", head, at)
        data_start = at + 8
        data_end = data_start + length
        if length > _PNG_MAX_LENGTH or kind == b"IEND" or data_end + 4 > len(head):
            return
        if kind == b"eXIf":
            tiff = head[data_start:data_end]
            yield _png_with_crc(head, at, length, tiff_location_patches(tiff, data_start))
        elif kind == b"iTXt":
            yield _png_xmp(head, at, length)
        elif kind in (b"tEXt", b"zTXt"):
            yield _png_raw_profile(head, at, length)
        at = data_end + 4


def _png_with_crc(
    head: bytes, at: int, length: int, patches: tuple[BytePatch, ...]
) -> tuple[BytePatch, ...]:
    """``patches`` (inside the data of the chunk at ``at``) and the patch of the chunk's CRC
    once they are applied; no CRC patch where it was wrong already, as readers must go on
    skipping (or refusing) the chunk."""
    crc_at = at + 8 + length
    covered = bytearray(head[at + 4 : crc_at])
    if not patches or zlib.crc32(covered) != int.from_bytes(head[crc_at : crc_at + 4], "big"):
        return patches
    for patch in patches:
        covered[patch.offset - at - 4 : patch.end - at - 4] = patch.data
    return (*patches, BytePatch(crc_at, zlib.crc32(covered).to_bytes(4, "big")))


def _png_xmp(head: bytes, at: int, length: int) -> tuple[BytePatch, ...]:
    """The patches of an XMP iTXt chunk: its keyword, compression flag and method, language
    tag and translated keyword (each NUL-terminated), then the text."""
    data = head[at + 8 : at + 8 + length]
    if not data.startswith(_PNG_XMP_KEYWORD + b"\0") or len(data) < len(_PNG_XMP_KEYWORD) + 3:
        return ()
    compressed = data[len(_PNG_XMP_KEYWORD) + 1]
    language_end = data.find(b"\0", len(_PNG_XMP_KEYWORD) + 3)
    translated_end = data.find(b"\0", language_end + 1) if language_end >= 0 else -1
    if translated_end < 0:
        return ()
    text_at = at + 8 + translated_end + 1
    text = head[text_at : at + 8 + length]
    if not compressed:
        return _png_with_crc(head, at, length, xmp_location_patches(text, text_at))
    inflated = _inflate(text)
    if inflated is None or not xmp_location_patches(inflated, 0):
        return ()
    return _png_neutralised(at, length)


def _png_raw_profile(head: bytes, at: int, length: int) -> tuple[BytePatch, ...]:
    """For ImageMagick's EXIF in a text chunk (hex, zlib-compressed in zTXt) that holds a
    position or a serial: the chunk made an unknown ancillary one, with zeros for data."""
    data = head[at + 8 : at + 8 + length]
    keyword, separator, text = data.partition(b"\0")
    if not separator or keyword not in _PNG_RAW_PROFILES:
        return ()
    if head[at + 4 : at + 8] == b"zTXt":
        inflated = _inflate(text[1:])  # after the compression method
        if inflated is None:
            return ()
        text = inflated
    tiff = _raw_profile_tiff(text)
    if tiff is None or not tiff_location_patches(tiff, 0):
        return ()
    return _png_neutralised(at, length)


def _png_neutralised(at: int, length: int) -> tuple[BytePatch, ...]:
    """The chunk at ``at`` made one no decoder knows, ancillary, with zeros for data."""
    kind_and_data = _PNG_SKIPPED_CHUNK + bytes(length)
    return (
        BytePatch(at + 4, kind_and_data),
        BytePatch(at + 8 + length, zlib.crc32(kind_and_data).to_bytes(4, "big")),
    )


def _inflate(compressed: bytes) -> bytes | None:
    """``compressed`` inflated, at most :data:`_INFLATE_LIMIT` of it; None if corrupt."""
    try:
        return zlib.decompressobj().decompress(compressed, _INFLATE_LIMIT)
    except zlib.error:
        return None


def _raw_profile_tiff(text: bytes) -> bytes | None:
    """The TIFF in ImageMagick's raw profile text: a newline, the profile's name, its length
    in bytes, then the bytes in hex over several lines; APP1 profiles begin with the
    ``Exif\\0\\0`` of JPEG's segment."""
    words = text.split()
    if len(words) < 3:
        return None
    try:
        data = bytes.fromhex(b"".join(words[2:]).decode("ascii"))
    except ValueError:  # UnicodeDecodeError is one
        return None
    return data.removeprefix(_EXIF_PREFIX)
