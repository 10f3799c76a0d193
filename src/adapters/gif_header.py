"""The size of a GIF file, read from its blocks without decompressing any frame.

Pillow's GIF opener is not used here: it runs the decompression-bomb check while reading the
first frame (so a huge frame raises instead of reporting its size) and needs that frame whole
in the head. The layout is that of GIF89a (https://www.w3.org/Graphics/GIF/spec-gif89a.txt).
"""

from __future__ import annotations

import struct

_SIGNATURES = (b"GIF87a", b"GIF89a")
_SCREEN_END = 13  # signature, logical screen width and height (le16), flags, 2 more bytes
_DESCRIPTOR = 10  # separator, left, top, width, height (le16), flags
_IMAGE = 0x2C
_EXTENSION = 0x21
_TRAILER = 0x3B


def read_gif_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) of the GIF file whose first bytes are ``head``, or None.

    That is the logical screen, enlarged to hold every frame whose descriptor is in the head:
    decoders allocate for a frame whatever its descriptor says, so a small screen must not hide
    a huge frame. None if the signature or screen is cut off, if the size is zero, or if the
    file ends (trailer) without a single frame. Never raises; one step per block.
    """
    if len(head) < _SCREEN_END or head[:6] not in _SIGNATURES:
        return None
    width, height, flags = struct.unpack_from("<HHB", head, 6)
    position = _SCREEN_END + _colour_table_size(flags)
    frames = 0
    while position < len(head):
        block = head[position]
        if block == _IMAGE:
            if position + _DESCRIPTOR > len(head):
                break
            left, top, frame_width, frame_height, flags = struct.unpack_from(
                "<HHHHB", head, position + 1
            )
            width = max(width, left + frame_width)
            height = max(height, top + frame_height)
            frames += 1
            # the local colour table, the LZW minimum code size, then the data sub-blocks
            position = _skip_sub_blocks(
                head, position + _DESCRIPTOR + _colour_table_size(flags) + 1
            )
        elif block == _EXTENSION:
            position = _skip_sub_blocks(head, position + 2)  # after the label byte
        elif block == _TRAILER:
            if frames == 0:
                return None
            break
        else:
            break  # corrupt from here on: a decoder stops too, with what it has
    if width == 0 or height == 0:
        return None
    return width, height


def _colour_table_size(flags: int) -> int:
    """The byte size of the colour table a screen or image descriptor's flags announce."""
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def _skip_sub_blocks(head: bytes, position: int) -> int:
    """The position after a run of data sub-blocks (a length byte, then that many bytes)
    ended by an empty one; past the end of ``head`` if it is cut off."""
    while position < len(head):
        size = head[position]
        position += 1 + size
        if size == 0:
            break
    return position
