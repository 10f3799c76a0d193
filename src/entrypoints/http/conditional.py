"""HTTP conditional and partial requests: entity-tag matching and byte ranges."""

from __future__ import annotations

from entrypoints.http.header_numbers import clamped, is_number, less_than
from imagecore.errors import RangeNotSatisfiable
from imagecore.model import ByteRange


def etag_matches(header: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` list names ``etag`` (weak comparison, as RFC 9110 asks)."""
    if not header:
        return False
    bare = etag.removeprefix("W/")
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == bare:
            return True
    return False


def requested_range(header: str | None, size: int) -> ByteRange | None:
    """The single byte range a ``Range`` header asks for, or None to send the whole body.

    A header we do not honour (another unit, several ranges, nonsense) is ignored, as RFC 9110
    allows; a well-formed range that lies wholly outside the content is RangeNotSatisfiable.
    Positions are ASCII digits of any length (RFC 9110 §14.1.2): an end beyond the content is
    its last byte, a suffix longer than the content is all of it.
    """
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip(_OWS).lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip(_OWS).partition("-")
    if not dash or not (first or last):
        return None
    if (first and not is_number(first)) or (last and not is_number(last)):
        return None
    if not first:  # a suffix: the last N bytes
        length = clamped(last, size)
        if length == 0:
            raise RangeNotSatisfiable("the requested range is empty")
        return ByteRange(size - length, size - 1)
    if last and less_than(last, first):
        return None
    start = clamped(first, size)
    if start >= size:
        raise RangeNotSatisfiable(f"the range starts beyond the {size} bytes of the image")
    end = clamped(last, size - 1) if last else size - 1
    return ByteRange(start, end)


_OWS = " \t"
"""Optional whitespace (RFC 9110 §5.6.3), tolerated around the unit and the range."""
