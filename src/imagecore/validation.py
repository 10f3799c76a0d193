"""Rules for everything a client may set. Each function takes what arrived, of any type, and
returns the clean value or raises InvalidInput with a message a person can act on."""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Mapping

import attrs

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


def _has_control_characters(text: str, allowed: str = "") -> bool:
    """Control characters, and lone surrogates (which no UTF-8 store can hold)."""
    return any(
        (unicodedata.category(ch) == "Cc" and ch not in allowed) or "\ud800" <= ch <= "\udfff"
        for ch in text
    )


def _text(value: object, field: str, max_length: int, allowed_controls: str = "") -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string")
    text = value.strip()
    if len(text) > max_length:
        raise InvalidInput(f"{field} is longer than {max_length} characters")
    if _has_control_characters(text, allowed_controls):
        raise InvalidInput(f"{field} contains control characters")
    return text


def title(value: object, limits: Limits = DEFAULT_LIMITS) -> str:
    return _text(value, "title", limits.max_title_length)


def description(value: object, limits: Limits = DEFAULT_LIMITS) -> str:
    return _text(value, "description", limits.max_description_length, allowed_controls="\n\r\t")


def tag(value: object, limits: Limits = DEFAULT_LIMITS) -> str:
    """One tag: trimmed, lower-cased, without commas (commas separate tags in a query)."""
    if not isinstance(value, str):
        raise InvalidInput("each tag must be a string")
    cleaned = " ".join(value.split()).lower()
    if len(cleaned) > limits.max_tag_length:
        raise InvalidInput(f"a tag may be at most {limits.max_tag_length} characters long")
    if "," in cleaned:
        raise InvalidInput("a tag may not contain a comma")
    if _has_control_characters(cleaned):
        raise InvalidInput("a tag may not contain control characters")
    return cleaned


def tags(value: object, limits: Limits = DEFAULT_LIMITS) -> tuple[str, ...]:
    """Tags, trimmed, lower-cased and deduplicated, in the order first given; blanks are dropped."""
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
    """A flat JSON object: string keys, scalar values, bounded in keys and encoded size."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput("metadata must be a JSON object")
    if len(value) > limits.max_metadata_keys:
        raise InvalidInput(f"metadata may have at most {limits.max_metadata_keys} keys")
    cleaned: dict[str, MetadataValue] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key.strip():
            raise InvalidInput("metadata keys must be non-empty strings")
        if len(key) > limits.max_metadata_key_length or _has_control_characters(key):
            raise InvalidInput(
                f"metadata key {key[:20]!r} must be at most {limits.max_metadata_key_length} "
                "printable characters"
            )
        if isinstance(item, float) and not math.isfinite(item):
            raise InvalidInput(f"metadata value of {key!r} must be a finite number")
        if isinstance(item, str) and any("\ud800" <= ch <= "\udfff" for ch in item):
            raise InvalidInput(f"metadata value of {key!r} is not valid Unicode text")
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


def filename(value: object, limits: Limits = DEFAULT_LIMITS) -> str:
    """The client's file name, kept only to be shown back: never used to build a path."""
    if not isinstance(value, str):
        return "image"
    name = value.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Cs")).strip()
    if name in ("", ".", ".."):
        return "image"
    return name[: limits.max_filename_length]


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
