"""The few EXIF facts the service keeps, read from raw EXIF bytes with Pillow's parser.

EXIF is written by cameras, phones, editors and attackers alike, so every value is checked
against what a camera could have written; one that fails is dropped on its own, and nothing
here ever raises or lets a bad value make the image itself fail.
"""

from __future__ import annotations

import math
import re
import unicodedata
import warnings
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TypeVar

import attrs
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from imagecore.model import GeoPosition

MAKE = 0x010F
MODEL = 0x0110
ORIENTATION = 0x0112
DATE_TIME = 0x0132
EXIF_IFD = 0x8769
GPS_IFD = 0x8825
DATE_TIME_ORIGINAL = 0x9003
DATE_TIME_DIGITIZED = 0x9004
OFFSET_TIME = 0x9010
OFFSET_TIME_ORIGINAL = 0x9011
OFFSET_TIME_DIGITIZED = 0x9012
GPS_LATITUDE_REF = 1
GPS_LATITUDE = 2
GPS_LONGITUDE_REF = 3
GPS_LONGITUDE = 4

TEXT_LIMIT = 64
"""The longest camera make or model kept, in characters."""

_EARLIEST_YEAR = 1800
_LATEST_YEAR = 2200
_TIMESTAMP = re.compile(r"([0-9]{4}):([0-9]{2}):([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})")
_OFFSET = re.compile(r"[+-]([0-9]{2}):([0-9]{2})")
_LATEST_OFFSET_MINUTES = 14 * 60  # UTC-12:00 to UTC+14:00 are the offsets in use

# Control characters that are not whitespace (whitespace is collapsed, not removed): a regular
# expression drops them at C speed, so a megabyte of NULs costs next to nothing.
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]")

_T = TypeVar("_T")


@attrs.frozen
class ExifFacts:
    """The EXIF facts of :class:`imagecore.model.ImageFacts`; None where absent or absurd."""

    camera_make: str | None = None
    camera_model: str | None = None
    orientation: int | None = None
    """1 (upright) to 8."""
    captured_at: str | None = None
    """``YYYY-MM-DDTHH:MM:SS``, then ``+HH:MM`` only where the EXIF records the offset."""
    position: GeoPosition | None = None


def exif_facts(raw: bytes) -> ExifFacts:
    """The facts in ``raw``: an EXIF block (a TIFF header and IFDs), with or without the
    ``Exif\\0\\0`` prefix of JPEG's APP1. Never raises: unreadable EXIF gives no facts.

    - ``camera_make`` (0x010F) and ``camera_model`` (0x0110): see :func:`clean_text`.
    - ``orientation`` (0x0112): 1 to 8.
    - ``captured_at``: the first valid of DateTimeOriginal (0x9003), DateTimeDigitized (0x9004)
      and DateTime (0x0132), ``YYYY:MM:DD HH:MM:SS`` with a real date in 1800..2200, followed
      by its OffsetTime* tag (0x9011, 0x9012, 0x9010) where that is a valid ``+HH:MM``.
    - ``position``: GPS latitude and longitude, each three rationals (degrees, minutes,
      seconds) and a reference (N/S, E/W), rounded to 6 decimals; dropped unless every part
      is finite with a non-zero denominator, minutes and seconds are under 60, and the result
      is within 90 and 180 degrees.
    """
    # Pillow warns (rather than raises) about corrupt EXIF; that is expected here, not news.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exif = Image.Exif()
        try:
            exif.load(raw)
        except Exception:  # Pillow raises many types on malformed EXIF; all mean "none"
            return ExifFacts()
        exif_ifd = _ifd(exif, EXIF_IFD)
        return ExifFacts(
            camera_make=_attempt(lambda: clean_text(exif.get(MAKE))),
            camera_model=_attempt(lambda: clean_text(exif.get(MODEL))),
            orientation=_attempt(lambda: _orientation(exif.get(ORIENTATION))),
            captured_at=_attempt(lambda: _captured_at(exif, exif_ifd)),
            position=_attempt(lambda: _position(_ifd(exif, GPS_IFD))),
        )


def clean_text(value: object) -> str | None:
    """``value`` as text fit to show: bytes (and Pillow's Latin-1 reading of EXIF ASCII) are
    decoded as UTF-8 with replacement, control and format characters removed, whitespace
    collapsed to single spaces and stripped, at most :data:`TEXT_LIMIT` characters; None if
    nothing is left or ``value`` is not text at all."""
    if isinstance(value, str):
        # Pillow decodes EXIF ASCII as Latin-1, which maps bytes 1:1: undo that to get the
        # bytes back, since cameras in fact write UTF-8 there.
        try:
            text = value.encode("latin-1").decode("utf-8", "replace")
        except UnicodeEncodeError:
            text = value
    elif isinstance(value, bytes):
        text = value.decode("utf-8", "replace")
    else:
        return None
    kept: list[str] = []
    space = False
    for char in _CONTROLS.sub("", text):
        if char.isspace():
            space = bool(kept)
        elif unicodedata.category(char) not in ("Cc", "Cf"):
            if space:
                kept.append(" ")
                space = False
            kept.append(char)
            if len(kept) > TEXT_LIMIT:
                break  # the rest would be cut off anyway
    return "".join(kept)[:TEXT_LIMIT].strip() or None


def _attempt(read: Callable[[], _T | None]) -> _T | None:
    """``read()``, or None if it raises: one bad fact must not cost the others."""
    try:
        return read()
    except Exception:  # Pillow raises many types on malformed EXIF; all mean "no such fact"
        return None


def _ifd(exif: Image.Exif, tag: int) -> Mapping[int, object]:
    """The sub-IFD ``tag`` points to, or an empty one where the pointer or IFD is corrupt."""
    return _attempt(lambda: exif.get_ifd(tag)) or {}


def _orientation(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 8:
        return value
    return None


def _captured_at(exif: Image.Exif, exif_ifd: Mapping[int, object]) -> str | None:
    for source, stamp_tag, offset_tag in (
        (exif_ifd, DATE_TIME_ORIGINAL, OFFSET_TIME_ORIGINAL),
        (exif_ifd, DATE_TIME_DIGITIZED, OFFSET_TIME_DIGITIZED),
        (exif, DATE_TIME, OFFSET_TIME),  # the offset tags all live in the Exif IFD
    ):
        stamp = _timestamp(source.get(stamp_tag))
        if stamp is not None:
            return stamp + (_offset(exif_ifd.get(offset_tag)) or "")
    return None


def _timestamp(value: object) -> str | None:
    text = _ascii(value)
    match = _TIMESTAMP.fullmatch(text) if text is not None else None
    if match is None:
        return None
    try:
        # naive on purpose: EXIF time is the camera's local time
        year, month, day, hour, minute, second = (int(part) for part in match.groups())
        moment = datetime(year, month, day, hour, minute, second)
    except ValueError:  # 2023:02:30, 25:00:00 and the like
        return None
    if not _EARLIEST_YEAR <= moment.year <= _LATEST_YEAR:
        return None
    return moment.isoformat(timespec="seconds")


def _offset(value: object) -> str | None:
    text = _ascii(value)
    match = _OFFSET.fullmatch(text) if text is not None else None
    if match is None:
        return None
    hours, minutes = int(match[1]), int(match[2])
    if minutes >= 60 or hours * 60 + minutes > _LATEST_OFFSET_MINUTES:
        return None
    return match[0]


def _ascii(value: object) -> str | None:
    """An EXIF ASCII value as str, without the NUL padding and spaces some writers add."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return value.strip("\x00 ") if isinstance(value, str) else None


def _position(gps: Mapping[int, object]) -> GeoPosition | None:
    latitude = _coordinate(gps.get(GPS_LATITUDE), gps.get(GPS_LATITUDE_REF), "N", "S", 90)
    longitude = _coordinate(gps.get(GPS_LONGITUDE), gps.get(GPS_LONGITUDE_REF), "E", "W", 180)
    if latitude is None or longitude is None:
        return None
    return GeoPosition(latitude=latitude, longitude=longitude)


def _coordinate(
    value: object, ref: object, positive: str, negative: str, limit: float
) -> float | None:
    """Decimal degrees from (degrees, minutes, seconds) and a hemisphere reference."""
    if not isinstance(value, tuple) or len(value) != 3:
        return None
    parts = [_non_negative(part) for part in value]
    degrees, minutes, seconds = parts
    if degrees is None or minutes is None or seconds is None:
        return None
    if minutes >= 60 or seconds >= 60:
        return None
    total = degrees + minutes / 60 + seconds / 3600
    if total > limit:
        return None
    hemisphere = _ascii(ref)
    if hemisphere is None or hemisphere.upper() not in (positive, negative):
        return None
    sign = -1 if hemisphere.upper() == negative else 1
    return round(sign * total, 6) + 0.0  # + 0.0 turns -0.0 into 0.0


def _non_negative(value: object) -> float | None:
    """A finite, non-negative EXIF number as float; None for a zero denominator."""
    if isinstance(value, IFDRational):
        if value.denominator == 0:
            return None
        number = float(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        return None
    return number if math.isfinite(number) and number >= 0 else None
