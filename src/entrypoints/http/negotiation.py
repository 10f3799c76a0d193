"""Content negotiation for renditions: which of the formats a rendition is kept in a client's
``Accept`` header asks for, best first.

AVIF and WebP are served only to clients that name them: browsers that decode them say so
(``image/avif,image/webp,*/*``), while ``*/*`` and ``image/*`` are sent by clients of every
age, so a wildcard stands for JPEG, which every client decodes. A type given ``q=0`` is never
served. With no ``Accept`` header at all, JPEG.
"""

from __future__ import annotations

from imagecore.model import RENDITION_CONTENT_TYPES

_UNIVERSAL = "image/jpeg"
_WILDCARDS = ("*/*", "image/*")


def acceptable_image_types(header: str | None) -> tuple[str, ...]:
    """The rendition content types the header accepts, the client's most wanted first (its
    quality values; ours, RENDITION_CONTENT_TYPES' order, between equals)."""
    if header is None or not header.strip():
        return (_UNIVERSAL,)
    named: dict[str, float] = {}
    wildcard = 0.0
    for entry in header.split(",")[:64]:  # a header of thousands of entries is not worth more
        media_type, quality = _parsed(entry)
        if media_type in RENDITION_CONTENT_TYPES:
            named[media_type] = max(quality, named.get(media_type, 0.0))
        elif media_type in _WILDCARDS:
            wildcard = max(wildcard, quality)
    if _UNIVERSAL not in named and wildcard > 0:
        named[_UNIVERSAL] = wildcard
    wanted = [kind for kind in RENDITION_CONTENT_TYPES if named.get(kind, 0.0) > 0]
    return tuple(sorted(wanted, key=lambda kind: -named[kind]))


def _parsed(entry: str) -> tuple[str, float]:
    """An Accept entry's media type (lower case, parameters dropped) and its quality (1 unless
    a valid ``q`` says otherwise; 0 for a ``q`` that is no number: refused, not guessed)."""
    media_type, *parameters = entry.split(";")
    quality = 1.0
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                quality = min(max(float(value.strip()), 0.0), 1.0)
            except ValueError:
                quality = 0.0
            if quality != quality:  # NaN
                quality = 0.0
    return media_type.strip().lower(), quality
