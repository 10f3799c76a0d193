"""What the service does with Unicode text: the form each kind of field is kept in, the form
tags and titles are compared in, and the characters no field may hold.

- Titles, descriptions, file names and metadata keys and string values are kept in NFC: the
  same text typed on any keyboard (an é as one code point, or an e and a combining accent, as
  macOS file names spell it) is stored as one string, and nothing a reader sees changes.
- Tags, and titles where a list compares them, take the :func:`caseless` form: compatibility
  characters become their plain equivalents (fullwidth letters, ligatures, circled digits) and
  case is folded, as Unicode's compatibility caseless matching says: "BEACH", "beach" and the
  fullwidth "beach" are one tag.
- Text that could show a reader something other than what is stored is refused: control
  characters, bidirectional embeddings, overrides and isolates, and invisible characters. Real
  text keeps what it needs: ZWNJ and ZWJ (Persian, Indic scripts, emoji sequences), the LRM,
  RLM and ALM marks, variation selectors, and the tag characters of subdivision flags.

Unicode keeps normal forms and case folding of assigned characters stable across its versions,
so a form stored by one Python is the form another computes.
"""

from __future__ import annotations

import re
import unicodedata

_CONTROLS = "\x00-\x1f\x7f-\x9f"
"""Unicode's control characters (category Cc), as a range of a regular expression's class."""

_CONTROLS_BUT_LINE_BREAKS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
"""The same without tab, line feed and carriage return, which multi-line text may hold."""

_SURROGATES = "\ud800-\udfff"
"""Lone surrogates: JSON can carry them, but they are not text and no UTF-8 store can hold them."""

_BIDI_CONTROLS = "\u202a-\u202e\u2066-\u2069"
"""Embeddings, overrides and isolates (and their terminators): they reorder what is displayed,
so that "gnp.exe" reversed reads as a picture's name. The LRM, RLM and ALM marks, which
Hebrew and Arabic text use and which cannot reorder a run of letters, are not among them."""

_INVISIBLE = (
    "\u00ad"  # SOFT HYPHEN
    "\u034f"  # COMBINING GRAPHEME JOINER
    "\u115f\u1160\u3164\uffa0"  # HANGUL FILLERs: blank, and modern Hangul never needs them
    "\u17b4\u17b5"  # KHMER VOWEL INHERENT AQ and AA, which Unicode says not to use
    "\u180e"  # MONGOLIAN VOWEL SEPARATOR
    "\u200b"  # ZERO WIDTH SPACE
    "\u2060-\u2065"  # WORD JOINER, the invisible mathematical operators, and one unassigned
    "\u206a-\u206f"  # the deprecated format characters
    "\ufeff"  # ZERO WIDTH NO-BREAK SPACE (a byte order mark)
    "\ufff0-\ufffb"  # unassigned, and the interlinear annotation characters
    "\U0001bca0-\U0001bca3"  # SHORTHAND FORMAT controls
    "\U0001d173-\U0001d17a"  # MUSICAL SYMBOL BEGIN BEAM and the other musical format controls
    "\U000e0000-\U000e00ff"  # the tag characters, invisible ASCII, and unassigned neighbours
    "\U000e01f0-\U000e0fff"  # unassigned, beyond the variation selectors supplement
)
"""Characters that show as nothing: Unicode's default-ignorable code points, less those real
text needs (ZWNJ, ZWJ, LRM, RLM, ALM and the variation selectors), plus the interlinear
annotation characters, which are not meant to be exchanged at all."""

_SUBDIVISION_FLAG = "\U0001f3f4[\U000e0030-\U000e0039\U000e0061-\U000e007a]{3,7}\U000e007f"
"""The one place tag characters are text: a flag of a country's subdivision (🏴 followed by a
region and subdivision code spelled in tag letters, then CANCEL TAG), as Scotland's is."""


def _refused(controls: str) -> re.Pattern[str]:
    """Finds each subdivision flag (group ``flag``) and each refused character (``refused``)."""
    return re.compile(
        f"(?P<flag>{_SUBDIVISION_FLAG})"
        f"|(?P<refused>[{controls}{_SURROGATES}{_BIDI_CONTROLS}{_INVISIBLE}])"
    )


_REFUSED_IN_A_LINE = _refused(_CONTROLS)
_REFUSED_IN_TEXT = _refused(_CONTROLS_BUT_LINE_BREAKS)


def canonical(text: str) -> str:
    """The text in NFC, the form every field but tags is kept in."""
    return unicodedata.normalize("NFC", text)


def caseless(text: str) -> str:
    """The form in which two texts are the same tag, or one title starts with another:
    Unicode's compatibility caseless match (NFKD, case folding, NFKD again, case folding
    again), composed again in NFKC so that what is stored stays short and readable. Applying it
    twice changes nothing."""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFD", text).casefold())
    return unicodedata.normalize("NFKC", decomposed.casefold())


def tag_form(text: str) -> str:
    """A tag as it is kept and compared: caseless, with its runs of white space made one space
    and none at its ends."""
    return " ".join(caseless(text).split())


def refused_character(text: str, multiline: bool = False) -> str | None:
    """The first character of ``text`` that no field may hold, or None: a control character
    (but tab, line feed and carriage return in ``multiline`` text), a lone surrogate, a
    bidirectional control or an invisible character (tag characters only outside a
    subdivision flag)."""
    pattern = _REFUSED_IN_TEXT if multiline else _REFUSED_IN_A_LINE
    for found in pattern.finditer(text):
        if found["refused"] is not None:
            return found["refused"]
    return None


def without_refused(text: str) -> str:
    """``text`` without the characters :func:`refused_character` would name."""
    return _REFUSED_IN_A_LINE.sub(lambda found: found["flag"] or "", text)


def describe_refused(character: str) -> str:
    """What a refused character is, and which it is, for a message a person can act on."""
    if unicodedata.category(character) == "Cc":
        kind = "a control character"
    elif "\ud800" <= character <= "\udfff":
        kind = "a lone surrogate, which is not Unicode text"
    elif "\u202a" <= character <= "\u202e" or "\u2066" <= character <= "\u2069":
        kind = "a bidirectional embedding, override or isolate"
    else:
        kind = "an invisible character"
    name = unicodedata.name(character, "")
    return f"{kind} (U+{ord(character):04X}{' ' + name if name else ''})"
