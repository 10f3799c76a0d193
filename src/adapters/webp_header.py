"""The canvas size and EXIF of a WebP file, read from the RIFF container without decoding.

Pillow cannot do this on the head of a file: its WebP plugin hands the whole file to libwebp's
demuxer, which refuses a truncated one. The layout is that of the WebP container specification
(https://developers.google.com/speed/webp/docs/riff_container); the checks mirror libwebp's
``WebPGetInfo`` so that what passes here is what libwebp would start decoding.
"""

from __future__ import annotations

import attrs

_RIFF_HEADER = 12  # "RIFF", le32 size of what follows, "WEBP"
_CHUNK_HEADER = 8  # FourCC, le32 payload size; payloads are padded to an even length

_MAX_RIFF_SIZE = 0xFFFFFFFF - _CHUNK_HEADER - 1
"""libwebp's MAX_CHUNK_PAYLOAD: a RIFF size above it is corrupt, not big."""

_MAX_CANVAS_PIXELS = 0xFFFFFFFF
"""The container spec: canvas width x height MUST be at most 2^32 - 1."""

_VP8_FRAME_HEADER = 10  # 3-byte frame tag, 3-byte start code, 2 x 2-byte dimension
_VP8_START_CODE = b"\x9d\x01\x2a"
_VP8L_HEADER = 5  # signature byte, then 14 + 14 + 1 + 3 bits
_VP8L_SIGNATURE = 0x2F
_VP8X_PAYLOAD = 10  # flags, 3 reserved bytes, 2 x 24-bit (dimension - 1)


@attrs.frozen
class WebPHeader:
    """What the head of a WebP file says: the canvas, and its EXIF chunk when in the head."""

    width: int
    height: int
    exif: bytes | None = None


def read_webp_header(head: bytes) -> WebPHeader | None:
    """The header of the WebP file whose first bytes are ``head``, or None if they are not
    a well-formed WebP header (lossy ``VP8 ``, lossless ``VP8L`` or extended ``VP8X``).

    Never raises; reads no further than ``head`` and walks its chunks at most once.
    """
    if len(head) < _RIFF_HEADER + _CHUNK_HEADER or head[:4] != b"RIFF" or head[8:12] != b"WEBP":
        return None
    riff_size = _le(head, 4, 4)
    if riff_size < 4 + _CHUNK_HEADER or riff_size > _MAX_RIFF_SIZE:
        return None
    # Bytes past the RIFF chunk are not part of the image (libwebp ignores them too).
    end = min(len(head), _CHUNK_HEADER + riff_size)
    fourcc = head[12:16]
    size = _le(head, 16, 4)
    payload = head[20 : min(end, 20 + size)]
    if fourcc == b"VP8 ":
        dimensions = _vp8_dimensions(payload, size)
    elif fourcc == b"VP8L":
        dimensions = _vp8l_dimensions(payload, size)
    elif fourcc == b"VP8X":
        dimensions = _vp8x_canvas(payload, size)
    else:
        return None  # the first chunk must say which of the three the file is
    if dimensions is None:
        return None
    width, height = dimensions
    exif = None
    if fourcc == b"VP8X":  # only the extended format may carry metadata chunks
        exif = _find_chunk(head, 20 + size + (size & 1), end, b"EXIF")
    return WebPHeader(width, height, exif)


def _vp8_dimensions(payload: bytes, size: int) -> tuple[int, int] | None:
    """A lossy key frame's size (RFC 6386, 9.1). The 2 scaling bits above each 14-bit
    dimension only ask the decoder to upscale; libwebp ignores them, and so do we."""
    if size < _VP8_FRAME_HEADER or len(payload) < _VP8_FRAME_HEADER:
        return None
    tag = _le(payload, 0, 3)
    key_frame = tag & 1 == 0
    profile = (tag >> 1) & 7
    shown = (tag >> 4) & 1
    first_partition_size = tag >> 5
    if not key_frame or profile > 3 or not shown or first_partition_size >= size:
        return None
    if payload[3:6] != _VP8_START_CODE:
        return None
    width = _le(payload, 6, 2) & 0x3FFF
    height = _le(payload, 8, 2) & 0x3FFF
    if width == 0 or height == 0:
        return None
    return width, height


def _vp8l_dimensions(payload: bytes, size: int) -> tuple[int, int] | None:
    """A lossless image's size: 14 bits each of width - 1 and height - 1, then the alpha
    hint bit and a 3-bit version that must be 0."""
    if size < _VP8L_HEADER or len(payload) < _VP8L_HEADER or payload[0] != _VP8L_SIGNATURE:
        return None
    bits = _le(payload, 1, 4)
    if bits >> 29 != 0:
        return None
    return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1


def _vp8x_canvas(payload: bytes, size: int) -> tuple[int, int] | None:
    """The extended format's canvas: 24 bits each of width - 1 and height - 1. Every frame
    of an animation and the still image are drawn on this canvas, so it is the size."""
    if size < _VP8X_PAYLOAD or len(payload) < _VP8X_PAYLOAD:
        return None
    width = _le(payload, 4, 3) + 1
    height = _le(payload, 7, 3) + 1
    if width * height > _MAX_CANVAS_PIXELS:
        return None
    return width, height


def _find_chunk(head: bytes, start: int, end: int, fourcc: bytes) -> bytes | None:
    """The payload of the first ``fourcc`` chunk from ``start``, if it lies whole before
    ``end``. Every step moves at least one chunk header forward, so this ends quickly."""
    position = start
    while position + _CHUNK_HEADER <= end:
        size = _le(head, position + 4, 4)
        data_end = position + _CHUNK_HEADER + size
        if head[position : position + 4] == fourcc:
            return head[position + _CHUNK_HEADER : data_end] if data_end <= end else None
        position = data_end + (size & 1)
    return None


def _le(data: bytes, offset: int, length: int) -> int:
    """The unsigned little-endian integer at ``offset``; callers check the bounds."""
    return int.from_bytes(data[offset : offset + length], "little")
