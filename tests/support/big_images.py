"""Big images made cheaply: the pixel bombs of the thumbnail tests, built without ever holding
their pixels, so that making a 100-megapixel PNG takes a fraction of a second."""

from __future__ import annotations

import os
import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def repeated_zlib(block: bytes, times: int) -> bytes:
    """A zlib stream of ``block`` repeated ``times`` times, compressing ``block`` once: after a
    full flush a deflate block depends on nothing before it, so its bytes can be repeated."""
    compressor = zlib.compressobj(9)
    first = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    header, body = first[:2], first[2:]
    checksum = 1
    for _ in range(times):
        checksum = zlib.adler32(block, checksum)
    return header + body * times + b"\x03\x00" + struct.pack(">I", checksum)  # empty final block


def uniform_png(
    width: int, height: int, colour: tuple[int, int, int] = (16, 32, 48), *, rows: int = 100
) -> bytes:
    """A valid RGB PNG of one colour, whatever its size only a few hundred KB: the "97 KB
    10000 x 10000" bomb of the hardening issue. ``rows`` must divide ``height``."""
    assert height % rows == 0
    row = b"\0" + bytes(colour) * width  # filter type None
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", repeated_zlib(row * rows, height // rows))
        + png_chunk(b"IEND", b"")
    )


def interlaced_png_header(width: int, height: int) -> bytes:
    """An interlaced (Adam7) RGBA PNG whose pixel data is junk: a decoder must hold such an
    image whole, so its header alone says what it would cost; decoding it fails."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 1)
    return (
        PNG_SIGNATURE
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x07" * 64))
        + png_chunk(b"IEND", b"")
    )


def padded_png(size: int) -> bytes:
    """A valid PNG of exactly ``size`` bytes: a small picture, then a private ancillary chunk
    of random bytes (which decoders skip) before its end. A big upload made in milliseconds."""
    picture = uniform_png(300, 200)
    body, end = picture[:-12], picture[-12:]  # IEND is the last 12 bytes
    filler = size - len(picture) - 12
    assert filler >= 0, f"a padded PNG is {len(picture) + 12} bytes at least"
    return body + png_chunk(b"prVt", os.urandom(filler)) + end
