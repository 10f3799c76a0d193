"""The type, displayed size and EXIF of a HEIF-family image (HEIC, AVIF), read from its boxes.

HEIF files are ISOBMFF: a tree of boxes whose ``meta`` box lists the items (the primary image,
its tiles, its thumbnails, its EXIF block), their properties (``ispe`` the coded size, ``irot``
the rotation, ``clap`` the crop) and where each item's bytes are (``iloc``). An iPhone writes
``meta`` first and a big ``mdat`` after it, so the head of the file holds everything read here.

The boxes are parsed by hand rather than by libheif (pillow-heif): libheif wants the whole file,
which the head is not, and these few boxes are simple to read with every length checked. The
layout is that of ISO/IEC 14496-12 (boxes, ``iloc``, ``iinf``, ``iref``, ``pitm``) and
ISO/IEC 23008-12 (``iprp``, ``ipco``, ``ipma``, ``ispe``, ``irot``, ``clap``). The walk is flat
(a fixed path of box types, no recursion) and every count is capped, so it ends quickly.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs

HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"})
AVIF_BRANDS = frozenset({b"avif", b"avis"})
HEIF_BRANDS = frozenset({b"mif1", b"msf1"}) | HEIC_BRANDS | AVIF_BRANDS

_HEVC_CODINGS = frozenset({b"hvc1"})
_AV1_CODINGS = frozenset({b"av01"})
_GRID = b"grid"
_ALPHA_URNS = (b"urn:mpeg:hevc:2015:auxid:1", b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha")
_HEVC_CHROMA = (0.0, 0.5, 1.0, 2.0)
"""The chroma samples per pixel of each HEVC chroma_format_idc: 4:0:0, 4:2:0, 4:2:2, 4:4:4."""

_MAX_TOP_LEVEL_BOXES = 64
"""Boxes walked before ``meta``: a file puts ``ftyp`` and ``meta`` first, maybe a ``free``."""

_MAX_ENTRIES = 4096
"""Items, properties, references and associations read from one list. A 48-megapixel iPhone
photo has under 100 items; libheif itself refuses files with more than 1000."""

_BOX_HEADER = 8
_FULL_BOX_HEADER = 4  # version, 24 bits of flags


class _Malformed(Exception):
    """The boxes contradict themselves or run past the head: no facts, as if not an image."""


@attrs.frozen
class HeifHeader:
    """What the head of a HEIF-family file says about its primary image."""

    content_type: str
    """By the coding of the primary image: image/heic for HEVC, image/avif for AV1 in a file
    with an AVIF brand, image/heif for AV1 in a HEIF without one."""
    width: int
    height: int
    """As displayed: cropped (``clap``) and rotated (``irot``) as a decoder shows it."""
    exif: bytes | None = None
    """The primary image's EXIF block from its TIFF header on, where it lies whole in the head.
    Its orientation is not to be applied: in HEIF, ``irot`` and ``imir`` turn the image."""
    exif_span: tuple[int, int] | None = None
    """Where ``exif`` lies in the file: its absolute offset and length."""
    plane_bytes: float = 3.0
    """The bytes a pixel takes in the decoder's planes (luma, chroma as subsampled, alpha; two
    per sample above 8 bits), from the coding's configuration; 3 (4:4:4) if it has none."""
    alpha: bool = False
    """Whether an alpha plane (an ``auxl`` item) goes with the primary image."""


def is_heif(head: bytes) -> bool:
    """Whether ``head`` starts with an ISOBMFF ``ftyp`` box (the image may still be a video,
    or no HEIF at all: :func:`read_heif_header` tells)."""
    return head[4:8] == b"ftyp"


def read_heif_header(head: bytes) -> HeifHeader | None:
    """The header of the HEIF file whose first bytes are ``head``, or None if these are not the
    boxes of a HEIF image with a HEVC or AV1 primary item (or a grid of them) and its size, or
    if they are cut off before the ``meta`` box ends.

    Never raises; reads no further than ``head``.
    """
    try:
        return _read(memoryview(head))
    except _Malformed:
        return None


def heif_exif_span(head: bytes) -> tuple[int, int] | None:
    """The absolute offset and length of the primary image's EXIF (from its TIFF header on) in
    the HEIF file whose first bytes are ``head``, where it lies whole in ``head``; else None."""
    header = read_heif_header(head)
    return None if header is None else header.exif_span


def _read(data: memoryview) -> HeifHeader | None:
    boxes = _boxes(data, 0, len(data), _MAX_TOP_LEVEL_BOXES, allow_cut=True)
    first = next(boxes, None)
    if first is None or first.kind != b"ftyp":
        return None
    brands = _brands(data, first)
    if not brands & HEIF_BRANDS:
        return None  # an MP4, a QuickTime movie, a JPEG 2000: ISOBMFF, but no HEIF image
    meta = next((box for box in boxes if box.kind == b"meta"), None)
    if meta is None or meta.end > len(data):
        return None
    items = _Meta(data, meta)
    primary = items.primary
    coding = items.coding(primary)
    if coding in _HEVC_CODINGS:
        content_type = "image/heic"
    elif coding in _AV1_CODINGS:
        content_type = "image/avif" if brands & AVIF_BRANDS else "image/heif"
    else:
        return None  # JPEG, JPEG 2000, VVC, uncompressed...: coded as nothing decoded here
    size = items.displayed_size(primary)
    if size is None:
        return None
    span = items.exif_span(primary)
    exif = None if span is None else bytes(data[span[0] : span[0] + span[1]])
    alpha = items.has_alpha(primary)
    plane_bytes = items.plane_bytes(primary, alpha)
    return HeifHeader(content_type, size[0], size[1], exif, span, plane_bytes, alpha)


@attrs.frozen
class _Box:
    kind: bytes
    start: int
    """Where the payload starts, after the size and type (a full box's version and flags are
    the payload's first 4 bytes: see :func:`_full_box`)."""
    end: int


def _boxes(
    data: memoryview, start: int, end: int, limit: int, *, allow_cut: bool = False
) -> Iterator[_Box]:
    """The boxes laid one after the other from ``start`` to ``end``, at most ``limit`` of
    them. A box that runs past ``end`` is malformed, except at the top level
    (``allow_cut``), where it is where the head was cut off: it is given, and the walk ends."""
    position = start
    for _ in range(limit):
        if position + _BOX_HEADER > end:
            return
        size = _uint(data, position, 4)
        kind = bytes(data[position + 4 : position + 8])
        header = _BOX_HEADER
        if size == 1:
            size = _uint(data, position + 8, 8, end)
            header += 8
        elif size == 0:
            size = end - position  # the box runs to the end of the file
        if size < header:
            raise _Malformed
        box_end = position + size
        if box_end > end and not allow_cut:
            raise _Malformed
        yield _Box(kind, position + header, box_end)
        if box_end >= end:
            return
        position = box_end


def _brands(data: memoryview, ftyp: _Box) -> frozenset[bytes]:
    """The major brand and the compatible brands of ``ftyp``."""
    end = min(ftyp.end, len(data))
    if ftyp.start + 8 > end:
        raise _Malformed
    major = bytes(data[ftyp.start : ftyp.start + 4])
    compatible = (bytes(data[at : at + 4]) for at in range(ftyp.start + 8, end - 3, 4))
    return frozenset({major, *compatible})


class _Meta:
    """The items of a ``meta`` box: which is primary, their types, properties, references
    and locations."""

    def __init__(self, data: memoryview, meta: _Box) -> None:
        self._data = data
        self._primary: int | None = None
        self._types: dict[int, bytes] = {}
        self._properties: list[_Box] = []
        self._associations: dict[int, list[int]] = {}
        self._references: dict[bytes, list[tuple[int, list[int]]]] = {}
        self._locations: dict[int, tuple[int, list[tuple[int, int]]]] = {}
        self._idat: _Box | None = None
        _version, start = _full_box(data, meta.start, meta.end)
        for box in _boxes(data, start, meta.end, _MAX_ENTRIES):
            if box.kind == b"pitm":
                version, at = _full_box(data, box.start, box.end)
                self._primary = _uint(data, at, 2 if version == 0 else 4, box.end)
            elif box.kind == b"iinf":
                self._read_iinf(box)
            elif box.kind == b"iref":
                self._read_iref(box)
            elif box.kind == b"iprp":
                self._read_iprp(box)
            elif box.kind == b"iloc":
                self._read_iloc(box)
            elif box.kind == b"idat":
                self._idat = box

    @property
    def primary(self) -> int:
        if self._primary is None or self._primary not in self._types:
            raise _Malformed
        return self._primary

    def coding(self, item: int) -> bytes:
        """How ``item`` is coded; for a grid, how its first tile is."""
        kind = self._types.get(item, b"")
        if kind != _GRID:
            return kind
        tiles = self._referenced(b"dimg", item)
        return self._types.get(tiles[0], b"") if tiles else b""

    def displayed_size(self, item: int) -> tuple[int, int] | None:
        """The size of ``item`` as shown: its ``ispe``, then its transformations in their
        order (a ``clap`` crops in the frame of what precedes it, an odd ``irot`` swaps)."""
        size: tuple[int, int] | None = None
        for index in self._associations.get(item, []):
            if not 1 <= index <= len(self._properties):
                continue  # 0 is "no property"; a dangling one is ignored, as libheif does
            box = self._properties[index - 1]
            if box.kind == b"ispe":
                _version, at = _full_box(self._data, box.start, box.end)
                size = (_uint(self._data, at, 4, box.end), _uint(self._data, at + 4, 4, box.end))
            elif box.kind == b"clap" and size is not None:
                size = (self._clean_aperture(box, 0), self._clean_aperture(box, 8))
            elif box.kind == b"irot" and size is not None and self._quarter_turns(box) & 1:
                size = (size[1], size[0])
        if size is None or size[0] <= 0 or size[1] <= 0:
            return None
        return size

    def has_alpha(self, item: int) -> bool:
        """Whether an auxiliary item of ``item`` is its alpha plane, by its ``auxC`` URN."""
        for source, targets in self._references.get(b"auxl", []):
            if item in targets:
                for box in self._properties_of(source, b"auxC"):
                    _version, at = _full_box(self._data, box.start, box.end)
                    if bytes(self._data[at : box.end]).startswith(_ALPHA_URNS):
                        return True
        return False

    def plane_bytes(self, item: int, alpha: bool) -> float:
        """The bytes per pixel of the decoder's planes for ``item`` (for a grid, its tiles),
        from its ``hvcC`` or ``av1C``: chroma subsampling and bit depth."""
        coded = item
        if self._types.get(item) == _GRID:
            tiles = self._referenced(b"dimg", item)
            coded = tiles[0] if tiles else item
        chroma, deep = 2.0, False  # 4:4:4, 8 bits: what an unknown configuration costs at most
        for box in self._properties_of(coded, b"hvcC"):
            chroma = _HEVC_CHROMA[_uint(self._data, box.start + 16, 1, box.end) & 3]
            deep = _uint(self._data, box.start + 17, 1, box.end) & 7 > 0
        for box in self._properties_of(coded, b"av1C"):
            flags = _uint(self._data, box.start + 2, 1, box.end)
            monochrome, across, down = flags >> 4 & 1, flags >> 3 & 1, flags >> 2 & 1
            chroma = 0.0 if monochrome else 2.0 / ((1 + across) * (1 + down))
            deep = bool(flags & 0x40)
        samples = 1 + chroma + (1 if alpha else 0)
        return samples * (2 if deep else 1)

    def _properties_of(self, item: int, kind: bytes) -> Iterator[_Box]:
        for index in self._associations.get(item, []):
            if 1 <= index <= len(self._properties) and self._properties[index - 1].kind == kind:
                yield self._properties[index - 1]

    def exif_span(self, item: int) -> tuple[int, int] | None:
        """Where the TIFF data of the EXIF item describing ``item`` lies, if whole in the head:
        an EXIF item starts with the 32-bit offset from its payload to the TIFF header."""
        for source, targets in self._references.get(b"cdsc", []):
            if item in targets and self._types.get(source) == b"Exif":
                return self._exif_data(source)
        return None

    def _exif_data(self, item: int) -> tuple[int, int] | None:
        location = self._locations.get(item)
        if location is None:
            return None
        method, extents = location
        if len(extents) != 1:
            return None  # an EXIF block in pieces is rare enough to go without
        offset, length = extents[0]
        if method == 1:
            if self._idat is None:
                return None
            offset += self._idat.start
        elif method != 0:
            return None
        end = offset + length
        if length < 4 or end > len(self._data):
            return None
        tiff_start = offset + 4 + _uint(self._data, offset, 4)
        if tiff_start >= end:
            return None
        return tiff_start, end - tiff_start

    def _quarter_turns(self, irot: _Box) -> int:
        """An ``irot``'s anticlockwise quarter turns: its low two bits."""
        return _uint(self._data, irot.start, 1, irot.end) & 3

    def _clean_aperture(self, box: _Box, at: int) -> int:
        """A ``clap`` width or height (a fraction), rounded as libheif rounds it."""
        numerator = _uint(self._data, box.start + at, 4, box.end)
        denominator = _uint(self._data, box.start + at + 4, 4, box.end)
        if denominator == 0 or numerator >= 1 << 31 or denominator >= 1 << 31:
            raise _Malformed
        return (numerator + denominator // 2) // denominator

    def _referenced(self, kind: bytes, item: int) -> list[int]:
        for source, targets in self._references.get(kind, []):
            if source == item:
                return targets
        return []

    def _read_iinf(self, iinf: _Box) -> None:
        version, at = _full_box(self._data, iinf.start, iinf.end)
        at += 2 if version == 0 else 4  # the entry count: the boxes that follow tell
        for infe in _boxes(self._data, at, iinf.end, _MAX_ENTRIES):
            if infe.kind != b"infe":
                continue
            version, at = _full_box(self._data, infe.start, infe.end)
            if version < 2:
                continue  # the old entries name no item type: no image among them
            id_size = 2 if version == 2 else 4
            item = _uint(self._data, at, id_size, infe.end)
            at += id_size + 2  # and the protection index
            self._types[item] = bytes(self._data[at : at + 4])
            _uint(self._data, at, 4, infe.end)  # checks the type is whole

    def _read_iref(self, iref: _Box) -> None:
        version, at = _full_box(self._data, iref.start, iref.end)
        id_size = 2 if version == 0 else 4
        for reference in _boxes(self._data, at, iref.end, _MAX_ENTRIES):
            source = _uint(self._data, reference.start, id_size, reference.end)
            count = _uint(self._data, reference.start + id_size, 2, reference.end)
            first = reference.start + id_size + 2
            if first + count * id_size > reference.end:
                raise _Malformed
            targets = [_uint(self._data, first + i * id_size, id_size) for i in range(count)]
            self._references.setdefault(reference.kind, []).append((source, targets))

    def _read_iprp(self, iprp: _Box) -> None:
        for box in _boxes(self._data, iprp.start, iprp.end, _MAX_ENTRIES):
            if box.kind == b"ipco" and not self._properties:
                self._properties = list(_boxes(self._data, box.start, box.end, _MAX_ENTRIES))
            elif box.kind == b"ipma":
                self._read_ipma(box)

    def _read_ipma(self, ipma: _Box) -> None:
        version, at = _full_box(self._data, ipma.start, ipma.end)
        flags = _uint(self._data, ipma.start + 1, 3)
        id_size = 2 if version == 0 else 4
        index_size = 2 if flags & 1 else 1
        index_mask = 0x7FFF if flags & 1 else 0x7F  # the top bit says "essential"
        count = _uint(self._data, at, 4, ipma.end)
        at += 4
        for _ in range(min(count, _MAX_ENTRIES)):
            item = _uint(self._data, at, id_size, ipma.end)
            if item in self._associations:
                raise _Malformed  # ISO/IEC 23008-12: an item is listed once
            associations = _uint(self._data, at + id_size, 1, ipma.end)
            at += id_size + 1
            if at + associations * index_size > ipma.end:
                raise _Malformed
            self._associations[item] = [
                _uint(self._data, at + i * index_size, index_size) & index_mask
                for i in range(associations)
            ]
            at += associations * index_size

    def _read_iloc(self, iloc: _Box) -> None:
        version, at = _full_box(self._data, iloc.start, iloc.end)
        if version > 2:
            raise _Malformed
        sizes = _uint(self._data, at, 2, iloc.end)
        offset_size, length_size = sizes >> 12, (sizes >> 8) & 0xF
        base_offset_size, index_size = (sizes >> 4) & 0xF, sizes & 0xF
        if version == 0:
            index_size = 0  # reserved bits then
        if any(size not in (0, 4, 8) for size in (offset_size, length_size, base_offset_size)):
            raise _Malformed
        at += 2
        count_size = 4 if version == 2 else 2
        count = _uint(self._data, at, count_size, iloc.end)
        at += count_size
        id_size = 4 if version == 2 else 2
        for _ in range(min(count, _MAX_ENTRIES)):
            item = _uint(self._data, at, id_size, iloc.end)
            at += id_size
            method = 0
            if version > 0:
                method = _uint(self._data, at, 2, iloc.end) & 0xF
                at += 2
            at += 2  # the data reference index: 0 for "this file", all a HEIF uses
            base = _uint(self._data, at, base_offset_size, iloc.end)
            at += base_offset_size
            extent_count = _uint(self._data, at, 2, iloc.end)
            at += 2
            extent_size = index_size + offset_size + length_size
            if at + extent_count * extent_size > iloc.end:
                raise _Malformed
            extents = []
            for _extent in range(extent_count):
                at += index_size
                offset = _uint(self._data, at, offset_size)
                length = _uint(self._data, at + offset_size, length_size)
                at += offset_size + length_size
                extents.append((base + offset, length))
            self._locations[item] = (method, extents)


def _full_box(data: memoryview, start: int, end: int) -> tuple[int, int]:
    """A full box's version, and where its payload starts after the version and flags."""
    return _uint(data, start, _FULL_BOX_HEADER, end) >> 24, start + _FULL_BOX_HEADER


def _uint(data: memoryview, offset: int, length: int, end: int | None = None) -> int:
    """The unsigned big-endian integer of ``length`` bytes at ``offset``, which must lie
    before ``end`` (the end of its box) and within ``data``; 0 for a length of 0."""
    limit = len(data) if end is None else min(end, len(data))
    if offset < 0 or offset + length > limit:
        raise _Malformed
    return int.from_bytes(data[offset : offset + length], "big")
