"""Rules for everything a client may set. Each function takes what arrived, of any type, and
returns the clean value or raises InvalidInput with a message a person can act on."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping

import attrs

from imagecore import unicode_text
from imagecore.errors import InvalidInput
from imagecore.model import MetadataValue, Visibility


@attrs.frozen
class Limits:
    """Bounds on what one image may carry. Defaults are the documented ones."""

    max_tags: int = 20
    max_tag_length: int = 64
    max_title_length: int = 200
    max_description_length: int = 2000
    max_filename_length: int = 255
    max_metadata_keys: int = 50
    max_metadata_key_length: int = 64
    max_metadata_bytes: int = 8192
    max_user_id_length: int = 128


DEFAULT_LIMITS = Limits()

USER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@|:+=-]*")
IMAGE_ID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
"""26 characters of Crockford base32: a ULID."""
CONTENT_SHA256 = re.compile(r"[0-9a-f]{64}")
"""A SHA-256 in lowercase hexadecimal, as images report theirs."""


def _refuse_hidden(text: str, field: str, multiline: bool = False) -> None:
    """InvalidInput naming the field and the character, if ``text`` holds one that no field may
    (see unicode_text): a control character, a bidirectional control, an invisible one."""
    refused = unicode_text.refused_character(text, multiline)
    if refused is not None:
        raise InvalidInput(f"{field} may not contain {unicode_text.describe_refused(refused)}")


def _text(value: object, field: str, max_length: int, multiline: bool = False) -> str:
    """Text kept as the reader wrote it: in NFC, trimmed, bounded in characters as stored."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string")
    text = unicode_text.canonical(value).strip()
    if len(text) > max_length:
        raise InvalidInput(f"{field} is longer than {max_length} characters")
    _refuse_hidden(text, field, multiline)
    return text


def title(value: object, limits: Limits = DEFAULT_LIMITS) -> str:
    return _text(value, "title", limits.max_title_length)


def description(value: object, limits: Limits = DEFAULT_LIMITS) -> str:
    """Multi-line text: tabs and line breaks are kept."""
    return _text(value, "description", limits.max_description_length, multiline=True)


def tag(value: object, limits: Limits = DEFAULT_LIMITS) -> str:
    """One tag in the form tags are kept and compared in (unicode_text.tag_form): caseless,
    white space collapsed; without commas (commas separate tags in a query)."""
    if not isinstance(value, str):
        raise InvalidInput("each tag must be a string")
    # Checked as sent, to name the character the client gave (folding turns one Hangul filler
    # into another); white space of any kind only separates words. Folding adds none.
    _refuse_hidden(" ".join(value.split()), "tags")
    cleaned = unicode_text.tag_form(value)
    if len(cleaned) > limits.max_tag_length:
        raise InvalidInput(f"a tag may be at most {limits.max_tag_length} characters long")
    if "," in cleaned:
        raise InvalidInput("a tag may not contain a comma")
    return cleaned


def tags(value: object, limits: Limits = DEFAULT_LIMITS) -> tuple[str, ...]:
    """Tags, each in its kept form (see tag) and once, in the order first given; blanks are
    dropped. "BEACH", "beach" and a fullwidth "beach" are one tag."""
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise InvalidInput("tags must be a list of strings")
    cleaned: dict[str, None] = {}
    for item in value:
        one = tag(item, limits)
        if one:
            cleaned[one] = None
    if len(cleaned) > limits.max_tags:
        raise InvalidInput(f"an image may carry at most {limits.max_tags} tags")
    return tuple(cleaned)


def metadata(value: object, limits: Limits = DEFAULT_LIMITS) -> dict[str, MetadataValue]:
    """A flat JSON object: string keys, scalar values, bounded in keys and encoded size.

    Keys and string values are kept in NFC, like titles, and not folded: they are the client's
    own names and data, read back as they were sent, and canonically equivalent spellings of a
    key are one key (sent twice, it is refused). Keys are one line; values may hold tabs and
    line breaks, as a description may.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput("metadata must be a JSON object")
    if len(value) > limits.max_metadata_keys:
        raise InvalidInput(f"metadata may have at most {limits.max_metadata_keys} keys")
    cleaned: dict[str, MetadataValue] = {}
    for given_key, item in value.items():
        if not isinstance(given_key, str) or not given_key.strip():
            raise InvalidInput("metadata keys must be non-empty strings")
        key = unicode_text.canonical(given_key)
        if len(key) > limits.max_metadata_key_length:
            raise InvalidInput(
                f"metadata key {key[:20]!r} must be at most {limits.max_metadata_key_length} "
                "characters"
            )
        _refuse_hidden(key, f"metadata key {key[:20]!r}")
        if key in cleaned:
            raise InvalidInput(f"metadata has the key {key!r} twice, spelled in two ways")
        if isinstance(item, float) and not math.isfinite(item):
            raise InvalidInput(f"metadata value of {key!r} must be a finite number")
        if isinstance(item, str):
            item = unicode_text.canonical(item)
            _refuse_hidden(item, f"metadata value of {key!r}", multiline=True)
        if isinstance(item, int) and not isinstance(item, bool) and not -(2**63) <= item < 2**63:
            raise InvalidInput(f"metadata value of {key!r} is beyond 64-bit integers")
        if item is not None and not isinstance(item, str | int | float | bool):
            raise InvalidInput(
                f"metadata value of {key!r} must be a string, number, boolean or null: "
                "metadata is a flat object"
            )
        cleaned[key] = item
    encoded = json.dumps(cleaned, ensure_ascii=False, separators=(",", ":")).encode()
    if len(encoded) > limits.max_metadata_bytes:
        raise InvalidInput(f"metadata is larger than {limits.max_metadata_bytes} bytes as JSON")
    return cleaned


def visibility(value: object) -> Visibility:
    if value is None:
        return Visibility.PRIVATE
    if not isinstance(value, str) or value not in (Visibility.PRIVATE, Visibility.PUBLIC):
        raise InvalidInput("visibility must be 'private' or 'public'")
    return Visibility(value)


def share_location(value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput("share_location must be true or false")
    return value


def filename(value: object, limits: Limits = DEFAULT_LIMITS) -> str:
    """The client's file name, kept only to be shown back: never used to build a path. In NFC,
    like titles; what no title may hold is removed rather than refused, as the name comes from
    the client's file system (whose names may hold anything but "/") rather than from a person
    writing it, and an upload is not worth failing for it."""
    if not isinstance(value, str):
        return "image"
    name = value.replace("\\", "/").rsplit("/", 1)[-1]
    name = unicode_text.canonical(unicode_text.without_refused(name)).strip()
    if name in ("", ".", ".."):
        return "image"
    # A cut through a subdivision flag would leave its tag characters without the flag.
    return unicode_text.without_refused(name[: limits.max_filename_length])


def user_id(value: object, limits: Limits = DEFAULT_LIMITS) -> str:
    if (
        not isinstance(value, str)
        or len(value) > limits.max_user_id_length
        or not USER_ID.fullmatch(value)
    ):
        raise InvalidInput(
            "a user id is 1 to 128 characters: letters, digits and . _ @ | : + = -, "
            "starting with a letter or digit"
        )
    return value


def is_image_id(value: str) -> bool:
    """Whether a string could be an image id; anything else can never name an image."""
    return bool(IMAGE_ID.fullmatch(value))


def content_sha256(value: object) -> str | None:
    """The SHA-256 a client says its bytes have (any case, padded), in lowercase; None if none."""
    if value is None:
        return None
    if not isinstance(value, str) or not CONTENT_SHA256.fullmatch(value.strip().lower()):
        raise InvalidInput("a content SHA-256 is 64 hexadecimal digits")
    return value.strip().lower()
