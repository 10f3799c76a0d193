"""Numbers in request headers (Content-Length, Range) as RFC 9110 writes them: one or more ASCII
digits, of any length. Read here without handing a client's text to int() as it is: int() takes
other scripts' digits ("²" passes str.isdigit(), "٣" is 3), signs, spaces and underscores, and
raises ValueError past 4300 digits."""

from __future__ import annotations


def is_number(text: str) -> bool:
    """Whether ``text`` is one or more ASCII digits, and nothing else."""
    return text.isascii() and text.isdigit()


def clamped(digits: str, ceiling: int) -> int:
    """The number ``digits`` (a run of ASCII digits) spells, or ``ceiling`` if that is smaller;
    however many digits there are (``ceiling`` is at least 0)."""
    significant = digits.lstrip("0")
    if len(significant) > len(str(ceiling)):
        return ceiling
    return min(int(significant or "0"), ceiling)


def exceeds(text: str, limit: int) -> bool:
    """Whether ``text`` is a number (ASCII digits) above ``limit``; False for anything else."""
    return is_number(text) and clamped(text, limit + 1) > limit


def less_than(digits: str, other: str) -> bool:
    """Whether the number ``digits`` spells is less than the one ``other`` spells (both runs of
    ASCII digits of any length), compared without converting either."""
    a, b = digits.lstrip("0"), other.lstrip("0")
    return (len(a), a) < (len(b), b)
