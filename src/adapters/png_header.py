"""The size and EXIF of a PNG file, read from its chunks without inflating any of them.

Pillow's PNG opener is not used here: it reads every chunk before the first IDAT, inflating
iCCP, zTXt and iTXt on the way, and fails when those run past the head of a big file. The PNG
specification (https://www.w3.org/TR/png-3/) puts everything needed in the first 33 bytes.
"""

from __future__ import annotations

import struct
import zlib

import attrs

SIGNATURE = b"\x89PNG\r\n\x1a\n"

_CHUNK_HEADER = 8  # be32 data length, 4-byte type
_CHUNK_OVERHEAD = 12  # header and the be32 CRC after the data
_IHDR_END = len(SIGNATURE) + _CHUNK_OVERHEAD + 13
_MAX_LENGTH = 2**31 - 1  # chunk lengths and dimensions are PNG four-byte unsigned integers

_BIT_DEPTHS = {
    0: {1, 2, 4, 8, 16},  # greyscale
    2: {8, 16},  # truecolour
    3: {1, 2, 4, 8},  # indexed
    4: {8, 16},  # greyscale with alpha
    6: {8, 16},  # truecolour with alpha
}


@attrs.frozen
class PngHeader:
    """What the head of a PNG file says: the size, and its eXIf chunk when in the head."""

    width: int
    height: int
    exif: bytes | None = None


def read_png_header(head: bytes) -> PngHeader | None:
    """The header of the PNG file whose first bytes are ``head``, or None unless they start
    with the signature and a well-formed IHDR chunk, which the specification makes the first.

    Never raises; reads no further than ``head`` and walks its chunks at most once.
    """
    if len(head) < _IHDR_END or not head.startswith(SIGNATURE):
        return None
    length, kind = struct.unpack_from(">I4s", head, 8)
    if kind != b"IHDR" or length != 13 or not _crc_ok(head, 8, 13):
        return None
    width, height, depth, colour, compression, filtering, interlace = struct.unpack_from(
        ">IIBBBBB", head, 16
    )
    if not (0 < width <= _MAX_LENGTH and 0 < height <= _MAX_LENGTH):
        return None
    if depth not in _BIT_DEPTHS.get(colour, ()) or compression or filtering or interlace > 1:
        return None
    return PngHeader(width, height, _find_exif(head))


def _find_exif(head: bytes) -> bytes | None:
    """The data of the first eXIf chunk, if it lies whole in ``head`` with a good CRC.

    It may come before or after the image data (libpng reads both), so the walk goes on to
    IEND; IDAT chunks are skipped by their length, so this is one step per chunk.
    """
    position = _IHDR_END
    while position + _CHUNK_HEADER <= len(head):
        length, kind = struct.unpack_from(">I4s", head, position)
        if length > _MAX_LENGTH or kind == b"IEND":
            return None
        if kind == b"eXIf":
            if position + _CHUNK_OVERHEAD + length > len(head) or not _crc_ok(
                head, position, length
            ):
                return None
            return head[position + _CHUNK_HEADER : position + _CHUNK_HEADER + length]
        position += _CHUNK_OVERHEAD + length
    return None


def _crc_ok(head: bytes, position: int, length: int) -> bool:
    """Whether the CRC after the chunk at ``position`` matches its type and data; the caller
    has checked that the whole chunk is in ``head``."""
    covered = head[position + 4 : position + _CHUNK_HEADER + length]
    crc_at = position + _CHUNK_HEADER + length
    return zlib.crc32(covered) == int.from_bytes(head[crc_at : crc_at + 4], "big")
