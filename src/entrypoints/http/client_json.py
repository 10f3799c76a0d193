"""JSON a client sent, decoded one way wherever it comes in: the bodies of ``PATCH /images/{id}``
and ``POST /uploads``, and the ``tags`` and ``metadata`` fields of an upload's form or query
string. Every failure is an InvalidInput that names what was being read; nothing else is raised.

The standard json module, held to RFC 8259, rather than orjson: orjson reads an integer beyond
64 bits as a float (18446744073709551616 becomes 1.8446744073709552e+19, silently), where the
service refuses it by name today, and it cannot refuse duplicate keys. Speed does not decide it:
these texts are at most 64 KiB, and the fields the API takes are a few short strings.

What it accepts is what ``json.loads`` accepted, less what was never JSON or never valid here:
NaN and Infinity, a key given twice in one object, a string with a lone surrogate escape
(``"\\ud800"``, no Unicode text), integers of more than MAX_INTEGER_DIGITS digits, nesting deeper
than MAX_DEPTH, and, in a body, bytes that are not UTF-8 (an initial byte order mark is allowed,
as before; UTF-16 and UTF-32 bodies no longer are, as RFC 8259 §8.1 asks).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from imagecore.errors import InvalidInput

MAX_DEPTH = 16
"""The deepest nesting a JSON text may have. Nothing the API takes nests beyond 2 (a body's
``tags`` array); deeper than this, a text is refused before its fields are looked at."""
MAX_INTEGER_DIGITS = 100
"""The most digits an integer may have: no value the API takes has more than 20 (a 64-bit
metadata value), and int() of a long run of digits costs time quadratic in its length."""


class _Refused(Exception):
    """Raised by the decoder's hooks: what is wrong with the text, after the name of the field."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) < len(pairs):
        counts = Counter(key for key, _ in pairs)
        twice = next(key for key, count in counts.items() if count > 1)
        raise _Refused(f"has the key {twice!r} more than once: give each key once")
    return result


def _integer(literal: str) -> int:
    if len(literal.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise _Refused(f"holds an integer of more than {MAX_INTEGER_DIGITS} digits")
    return int(literal)


def _constant(name: str) -> float:
    raise _Refused(f"is not valid JSON: {name} is not a JSON value")


_DECODER = json.JSONDecoder(
    object_pairs_hook=_unique_keys, parse_int=_integer, parse_constant=_constant
)


def decode_json(data: bytes | str, what: str) -> object:
    """The value of the JSON text ``data`` (a body's bytes, or a field's text), or InvalidInput
    whose message begins with ``what`` ("the body", "metadata") and says what is wrong."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise InvalidInput(
                f"{what} is not UTF-8 text (byte {error.start}): send JSON as UTF-8"
            ) from None
    else:
        text = data
    try:
        value = _DECODER.decode(text)
    except _Refused as refused:
        raise InvalidInput(f"{what} {refused}") from None
    except json.JSONDecodeError as error:
        where = f"{error.msg} at character {error.pos}"
        raise InvalidInput(f"{what} is not valid JSON: {where}") from None
    except RecursionError:  # deeper than the interpreter's stack, far beyond MAX_DEPTH
        raise InvalidInput(_too_deep(what)) from None
    if _may_nest_deep_or_hold_surrogates(text):
        _check_nesting_and_text(value, what)
    return value


def _may_nest_deep_or_hold_surrogates(text: str) -> bool:
    """Whether the value of ``text`` needs looking through: not unless the text has more
    brackets than MAX_DEPTH, a \\u escape, or a lone surrogate of its own. Most have none."""
    return (
        text.count("[") + text.count("{") > MAX_DEPTH
        or "\\u" in text
        or _holds_lone_surrogate(text)
    )


def _holds_lone_surrogate(text: str) -> bool:
    """Whether ``text`` holds a lone surrogate: exactly what the UTF-8 codec refuses, and it
    tells at C speed (a regex took longer than decoding the JSON)."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _check_nesting_and_text(value: object, what: str) -> None:
    """InvalidInput if ``value`` nests deeper than MAX_DEPTH or holds a string (a key or a value)
    with a lone surrogate. A loop, not a recursion: the value may nest nearly as deep as the
    decoder's stack allowed."""
    pending: list[tuple[object, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if _holds_lone_surrogate(item):
                raise InvalidInput(
                    f"{what} is not valid Unicode text: it holds a lone surrogate "
                    "(half of a \\uD83D\\uDE00 pair)"
                )
        elif isinstance(item, dict | list):
            if depth == MAX_DEPTH:
                raise InvalidInput(_too_deep(what))
            children = [*item, *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)


def _too_deep(what: str) -> str:
    return f"{what} is nested more than {MAX_DEPTH} levels deep (arrays and objects)"
