"""The rules for everything a client may set: each takes anything and returns the clean value or
raises InvalidInput, never another error."""

from __future__ import annotations

import contextlib
import json
import math
import unicodedata
from collections.abc import Callable

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from ulid import ULID

from imagecore import validation
from imagecore.errors import InvalidInput
from imagecore.model import Visibility
from tests.support.doubles import CROCKFORD

LIMITS = validation.DEFAULT_LIMITS

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
anything = json_values | st.binary() | st.sets(st.integers()) | st.builds(object)


def has_control(text: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in text)


# The documented rule, restated from Unicode's own tables rather than from the code's list.
DEFAULT_IGNORABLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)  # fmt: skip
"""Default_Ignorable_Code_Point, from DerivedCoreProperties.txt: what may show as nothing."""
NEEDED_BY_REAL_TEXT = (
    (0x061C, 0x061C), (0x180B, 0x180D), (0x180F, 0x180F), (0x200C, 0x200F), (0xFE00, 0xFE0F),
    (0xE0100, 0xE01EF),
)  # fmt: skip
"""ALM; the Mongolian free variation selectors; ZWNJ, ZWJ, LRM and RLM; variation selectors."""
INTERLINEAR_ANNOTATION = ((0xFFF9, 0xFFFB),)


def _within(ch: str, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(low <= ord(ch) <= high for low, high in ranges)


def is_refused(ch: str, multiline: bool = False) -> bool:
    """Whether no text field may hold ``ch`` (tag characters of a subdivision flag aside)."""
    if multiline and ch in "\t\n\r":
        return False
    return (
        unicodedata.category(ch) in ("Cc", "Cs")
        or (_within(ch, DEFAULT_IGNORABLE) and not _within(ch, NEEDED_BY_REAL_TEXT))
        or _within(ch, INTERLINEAR_ANNOTATION)
    )


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def compatibility_caseless(text: str) -> str:
    """Unicode's compatibility caseless match (definition D146): two texts match when this is
    equal for both."""
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFD", text).casefold())
    return unicodedata.normalize("NFKD", folded.casefold())


def kept_tag(raw: str) -> str:
    """The documented form of a tag: compatibility caseless, composed (NFKC), white space
    collapsed."""
    return " ".join(unicodedata.normalize("NFKC", compatibility_caseless(raw)).split())


# --- tags -------------------------------------------------------------------------------------


def test_tags_are_trimmed_and_lower_cased() -> None:
    assert validation.tags(["  Beach ", "SUNSET", "Été"]) == ("beach", "sunset", "été")


def test_internal_whitespace_in_a_tag_collapses_to_one_space() -> None:
    assert validation.tags(["New   York\t City", "a \n b"]) == ("new york city", "a b")


def test_duplicate_tags_are_dropped_keeping_the_order_first_given() -> None:
    assert validation.tags(["b", "A", "a", " B ", "c", "a"]) == ("b", "a", "c")


def test_blank_tags_are_dropped() -> None:
    assert validation.tags(["", "   ", "x", "\t"]) == ("x",)


def test_no_tags_means_an_empty_tuple() -> None:
    assert validation.tags(None) == ()
    assert validation.tags([]) == ()


def test_a_tuple_of_tags_is_accepted_like_a_list() -> None:
    assert validation.tags(("A", "b")) == ("a", "b")


def test_twenty_tags_are_accepted_and_twenty_one_rejected() -> None:
    twenty = [f"tag{i}" for i in range(LIMITS.max_tags)]
    assert validation.tags(twenty) == tuple(twenty)
    with pytest.raises(InvalidInput, match="at most 20 tags"):
        validation.tags([*twenty, "one-more"])


def test_repeated_tags_count_once_towards_the_limit() -> None:
    assert validation.tags(["Same", "same "] * 30) == ("same",)


def test_a_tag_may_be_64_characters_after_trimming_but_not_65() -> None:
    longest = "x" * LIMITS.max_tag_length
    assert validation.tags([f"  {longest}  "]) == (longest,)
    with pytest.raises(InvalidInput, match="64"):
        validation.tags([longest + "y"])


@pytest.mark.parametrize("bad", ["a,b", ",", "beach, sunset"])
def test_a_tag_with_a_comma_is_rejected(bad: str) -> None:
    with pytest.raises(InvalidInput, match="comma"):
        validation.tags([bad])


@pytest.mark.parametrize("bad", ["a\x00b", "\x1b[31mred", "del\x7f", "bell\x07"])
def test_a_tag_with_control_characters_is_rejected(bad: str) -> None:
    with pytest.raises(InvalidInput, match="control"):
        validation.tags([bad])


@pytest.mark.parametrize("bad", ["beach,sunset", "beach", 5, {"a": 1}, {"a", "b"}, b"ab", True])
def test_tags_that_are_not_a_list_are_rejected(bad: object) -> None:
    with pytest.raises(InvalidInput, match="list of strings"):
        validation.tags(bad)


@pytest.mark.parametrize("bad", [[1], ["ok", None], [["nested"]], [b"bytes"]])
def test_a_tag_that_is_not_a_string_is_rejected(bad: object) -> None:
    with pytest.raises(InvalidInput, match="string"):
        validation.tags(bad)


# Fullwidth b and B, the fi ligature, j with caron (which case folding decomposes), final and
# capital sigma, a combining acute, the iota subscript, and a fullwidth comma.
tag_text = st.text(max_size=70) | st.text(
    alphabet="aAbBéÉİß  \t,\uff42\uff22\ufb01\u01f0\u03c2\u03a3\u0301\u0345\uff0c", max_size=8
)


@given(st.lists(tag_text, max_size=25))
def test_clean_tags_are_normalised_unique_and_within_bounds(raw: list[str]) -> None:
    try:
        cleaned = validation.tags(raw)
    except InvalidInput:
        return
    assert len(cleaned) == len(set(cleaned)) <= LIMITS.max_tags
    for one in cleaned:
        assert one
        assert one == kept_tag(one)
        assert unicodedata.normalize("NFKD", one) == compatibility_caseless(one)
        assert len(one) <= LIMITS.max_tag_length
        assert "," not in one
        assert not any(is_refused(ch) for ch in one)
    expected = list(dict.fromkeys(kept_tag(t) for t in raw if kept_tag(t)))
    assert list(cleaned) == expected


@given(st.lists(tag_text, max_size=25))
def test_normalising_normalised_tags_changes_nothing(raw: list[str]) -> None:
    try:
        cleaned = validation.tags(raw)
    except InvalidInput:
        return
    assert validation.tags(list(cleaned)) == cleaned


@given(anything)
def test_tags_of_any_value_are_clean_or_invalid_input(value: object) -> None:
    with contextlib.suppress(InvalidInput):
        validation.tags(value)


def test_a_tag_is_one_tag_whatever_its_case_and_compatibility_spelling() -> None:
    fullwidth = "\uff42\uff45\uff41\uff43\uff48"  # "beach" in fullwidth letters
    fullwidth_capitals = "\uff22\uff25\uff21\uff23\uff28"
    assert validation.tags([fullwidth, "BEACH", "beach", fullwidth_capitals]) == ("beach",)


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ("Straße", "strasse"),
        ("STRASSE", "strasse"),
        ("ΟΔΟΣ", "οδοσ"),  # a final sigma is a sigma
        ("\ufb01sh", "fish"),  # the fi ligature
        ("cafe\u0301", "café"),  # decomposed, as macOS spells it: one tag with the composed one
        ("\u2460 place", "1 place"),  # a circled digit
        ("\u01f0", "\u01f0"),  # case folding decomposes it; the kept form is composed again
    ],
)
def test_tags_are_kept_compatibility_caseless_and_composed(raw: str, kept: str) -> None:
    assert validation.tags([raw]) == (kept,)


def test_a_fullwidth_comma_is_a_comma_in_a_tag() -> None:
    with pytest.raises(InvalidInput, match="comma"):
        validation.tags(["beach\uff0csunset"])


def test_the_tag_limit_counts_characters_as_kept() -> None:
    # U+FDFA is one character that stands for eighteen.
    assert len(kept_tag("\ufdfa")) == 18
    with pytest.raises(InvalidInput, match="64"):
        validation.tags(["\ufdfa" * 4])


# --- title and description --------------------------------------------------------------------


def test_title_is_trimmed_and_none_is_empty() -> None:
    assert validation.title("  Sunset at sea \n") == "Sunset at sea"
    assert validation.title(None) == ""


def test_title_may_be_200_characters_after_trimming_but_not_201() -> None:
    longest = "t" * LIMITS.max_title_length
    assert validation.title(f"  {longest} ") == longest
    with pytest.raises(InvalidInput, match="200"):
        validation.title(longest + "t")


@pytest.mark.parametrize("bad", ["two\nlines", "tab\there", "nul\x00", "\x1b[2J", "del\x7fete"])
def test_title_with_control_characters_inside_is_rejected(bad: str) -> None:
    with pytest.raises(InvalidInput, match="control"):
        validation.title(bad)


@pytest.mark.parametrize("bad", [5, ["a"], {"a": "b"}, b"bytes", True])
def test_title_and_description_must_be_strings(bad: object) -> None:
    with pytest.raises(InvalidInput, match="string"):
        validation.title(bad)
    with pytest.raises(InvalidInput, match="string"):
        validation.description(bad)


def test_description_keeps_line_breaks_and_tabs() -> None:
    text = "First line\r\nsecond\tline\nthird"
    assert validation.description(f"  {text}  ") == text
    assert validation.description(None) == ""


@pytest.mark.parametrize("bad", ["nul\x00", "escape\x1b[0m", "bell\x07", "del\x7f!"])
def test_description_with_other_control_characters_is_rejected(bad: str) -> None:
    with pytest.raises(InvalidInput, match="control"):
        validation.description(bad)


def test_description_may_be_2000_characters_but_not_2001() -> None:
    longest = "d" * LIMITS.max_description_length
    assert validation.description(longest) == longest
    with pytest.raises(InvalidInput, match="2000"):
        validation.description(longest + "d")


@given(st.text(max_size=250))
def test_a_clean_title_is_nfc_trimmed_bounded_and_free_of_refused_characters(raw: str) -> None:
    text = nfc(raw).strip()
    try:
        cleaned = validation.title(raw)
    except InvalidInput:
        assert len(text) > LIMITS.max_title_length or any(is_refused(ch) for ch in text)
        return
    assert cleaned == text
    assert len(cleaned) <= LIMITS.max_title_length
    assert not any(is_refused(ch) for ch in cleaned)


@given(st.text(max_size=250))
def test_a_clean_description_is_nfc_and_free_of_refused_characters_but_line_breaks(
    raw: str,
) -> None:
    text = nfc(raw).strip()
    try:
        cleaned = validation.description(raw)
    except InvalidInput:
        assert any(is_refused(ch, multiline=True) for ch in text)
        return
    assert cleaned == text
    assert not any(is_refused(ch, multiline=True) for ch in cleaned)


def test_text_is_kept_in_nfc_so_each_spelling_of_it_is_one() -> None:
    assert validation.title("Cafe\u0301 au lait") == "Caf\u00e9 au lait"
    assert validation.description("  na\u0308ive\n") == "n\u00e4ive"


def test_text_is_not_folded_further_than_nfc() -> None:
    # Compatibility characters and case are the writer's choice; only tags fold them.
    text = "\ufb01sh \uff22EACH \u2460"
    assert validation.title(text) == text
    assert validation.description(text) == text
    assert validation.metadata({text: text}) == {text: text}


# --- metadata ---------------------------------------------------------------------------------


def test_no_metadata_means_an_empty_object() -> None:
    assert validation.metadata(None) == {}
    assert validation.metadata({}) == {}


def test_flat_metadata_is_accepted_unchanged() -> None:
    data = {"camera": "X100V", "iso": 400, "f": 2.8, "flash": False, "lens": None, "é": "ü"}
    assert validation.metadata(data) == data


@pytest.mark.parametrize("bad", [[], [("a", 1)], "{}", 5, b"{}", True])
def test_metadata_that_is_not_an_object_is_rejected(bad: object) -> None:
    with pytest.raises(InvalidInput, match="JSON object"):
        validation.metadata(bad)


@pytest.mark.parametrize("nested", [{"a": 1}, [1, 2], [], {}, (1,), {1, 2}, b"x", object()])
def test_metadata_values_that_are_not_scalars_are_rejected(nested: object) -> None:
    with pytest.raises(InvalidInput, match="flat object"):
        validation.metadata({"exif": nested})


@pytest.mark.parametrize("key", [1, None, 2.5, ("a",), True])
def test_metadata_keys_that_are_not_strings_are_rejected(key: object) -> None:
    with pytest.raises(InvalidInput, match="keys"):
        validation.metadata({key: "x"})


@pytest.mark.parametrize("key", ["", "   ", "a\x00", "tab\there", "x" * 65])
def test_blank_long_or_unprintable_metadata_keys_are_rejected(key: str) -> None:
    with pytest.raises(InvalidInput, match="key"):
        validation.metadata({key: "x"})


def test_metadata_keys_and_string_values_are_kept_in_nfc() -> None:
    assert validation.metadata({"cafe\u0301": "cre\u0300me", "n": 1}) == {
        "caf\u00e9": "cr\u00e8me",
        "n": 1,
    }


def test_a_metadata_key_sent_in_two_spellings_is_refused_not_merged() -> None:
    with pytest.raises(InvalidInput, match="twice"):
        validation.metadata({"caf\u00e9": 1, "cafe\u0301": 2})


def test_metadata_values_may_hold_line_breaks_but_no_other_control_character() -> None:
    assert validation.metadata({"notes": "one\r\ntwo\tthree"}) == {"notes": "one\r\ntwo\tthree"}
    with pytest.raises(InvalidInput, match=r"metadata value of 'notes' .*control character"):
        validation.metadata({"notes": "bell\x07"})


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_metadata_numbers_must_be_finite(number: float) -> None:
    with pytest.raises(InvalidInput, match="finite"):
        validation.metadata({"exposure": number})


def test_metadata_may_have_50_keys_but_not_51() -> None:
    fifty = {f"k{i}": i for i in range(LIMITS.max_metadata_keys)}
    assert validation.metadata(fifty) == fifty
    with pytest.raises(InvalidInput, match="50 keys"):
        validation.metadata({**fifty, "one-more": 1})


def test_metadata_is_bounded_by_its_size_in_utf8_json_bytes() -> None:
    # {"k":"…"} is 8 bytes around the value; é is two bytes in UTF-8.
    room = LIMITS.max_metadata_bytes - 8
    assert validation.metadata({"k": "x" * room}) == {"k": "x" * room}
    assert validation.metadata({"k": "é" * (room // 2)}) == {"k": "é" * (room // 2)}
    with pytest.raises(InvalidInput, match="8192 bytes"):
        validation.metadata({"k": "x" * (room + 1)})
    with pytest.raises(InvalidInput, match="8192 bytes"):
        validation.metadata({"k": "é" * (room // 2 + 1)})


def is_plain(text: str, multiline: bool = False) -> bool:
    """Text the rules keep unchanged: in NFC, without a refused character."""
    return text == nfc(text) and not any(is_refused(ch, multiline) for ch in text)


metadata_keys = st.text(min_size=1, max_size=LIMITS.max_metadata_key_length).filter(
    lambda key: bool(key.strip()) and is_plain(key)
)
plain_scalars = json_scalars.filter(
    lambda value: not isinstance(value, str) or is_plain(value, multiline=True)
)


@given(st.dictionaries(metadata_keys, plain_scalars, max_size=LIMITS.max_metadata_keys))
def test_any_flat_json_object_within_bounds_is_accepted_unchanged(data: dict[str, object]) -> None:
    encoded = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    assume(len(encoded) <= LIMITS.max_metadata_bytes)
    cleaned = validation.metadata(data)
    assert cleaned == data
    assert [type(value) for value in cleaned.values()] == [type(value) for value in data.values()]


@given(anything)
def test_metadata_of_any_value_is_clean_or_invalid_input(value: object) -> None:
    with contextlib.suppress(InvalidInput):
        validation.metadata(value)


def test_metadata_integers_are_64_bit_so_every_store_can_hold_them() -> None:
    edges = {"max": 2**63 - 1, "min": -(2**63), "flag": True}
    assert validation.metadata(edges) == edges
    for beyond in (2**63, -(2**63) - 1, 10**30):
        with pytest.raises(InvalidInput, match="64-bit"):
            validation.metadata({"n": beyond})


def test_metadata_with_an_integer_too_long_to_write_is_invalid_input() -> None:
    # A Python caller (or a JSON parser without the digit limit) can pass an int that json.dumps
    # refuses to write; that is the client's mistake, not a server fault.
    with pytest.raises(InvalidInput):
        validation.metadata({"n": 10**5000})


# --- what no text may hold, and what real text keeps ----------------------------------------------

SCOTLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"
"""A subdivision flag: a black flag, "gbsct" in tag letters, then CANCEL TAG."""


def _kept_title(text: str) -> str:
    return validation.title(text)


def _kept_description(text: str) -> str:
    return validation.description(text)


def _kept_tag(text: str) -> str:
    (kept,) = validation.tags([text])
    return kept


def _kept_metadata_key(text: str) -> str:
    (kept,) = validation.metadata({text: 1})
    return kept


def _kept_metadata_value(text: str) -> str:
    kept = validation.metadata({"k": text})["k"]
    assert isinstance(kept, str)
    return kept


TEXT_FIELDS: dict[str, Callable[[str], str]] = {
    "title": _kept_title,
    "description": _kept_description,
    "tags": _kept_tag,
    "metadata key": _kept_metadata_key,
    "metadata value": _kept_metadata_value,
}
"""Each text field a client sets, by the name its refusals give: what the rules keep of a text."""

REFUSED = {
    "LEFT-TO-RIGHT EMBEDDING": "\u202a",
    "RIGHT-TO-LEFT EMBEDDING": "\u202b",
    "POP DIRECTIONAL FORMATTING": "\u202c",
    "LEFT-TO-RIGHT OVERRIDE": "\u202d",
    "RIGHT-TO-LEFT OVERRIDE": "\u202e",
    "LEFT-TO-RIGHT ISOLATE": "\u2066",
    "RIGHT-TO-LEFT ISOLATE": "\u2067",
    "FIRST STRONG ISOLATE": "\u2068",
    "POP DIRECTIONAL ISOLATE": "\u2069",
    "ZERO WIDTH SPACE": "\u200b",
    "WORD JOINER": "\u2060",
    "FUNCTION APPLICATION": "\u2061",
    "INVISIBLE TIMES": "\u2062",
    "INVISIBLE SEPARATOR": "\u2063",
    "INVISIBLE PLUS": "\u2064",
    "INHIBIT SYMMETRIC SWAPPING": "\u206a",
    "ZERO WIDTH NO-BREAK SPACE": "\ufeff",
    "MONGOLIAN VOWEL SEPARATOR": "\u180e",
    "SOFT HYPHEN": "\u00ad",
    "COMBINING GRAPHEME JOINER": "\u034f",
    "HANGUL FILLER": "\u3164",
    "HANGUL CHOSEONG FILLER": "\u115f",
    "HALFWIDTH HANGUL FILLER": "\uffa0",
    "KHMER VOWEL INHERENT AQ": "\u17b4",
    "INTERLINEAR ANNOTATION ANCHOR": "\ufff9",
    "SHORTHAND FORMAT LETTER OVERLAP": "\U0001bca0",
    "MUSICAL SYMBOL BEGIN BEAM": "\U0001d173",
    "LANGUAGE TAG": "\U000e0001",
    "TAG LATIN SMALL LETTER I, outside a flag": "\U000e0069",
    "TAG LATIN CAPITAL LETTER A, in a flag": "\U0001f3f4\U000e0041\U000e0042\U000e0043\U000e007f",
    "a flag's tag letters without CANCEL TAG": "\U0001f3f4\U000e0067\U000e0062\U000e0073",
    "ESCAPE": "\x1b",
    "NULL": "\x00",
}


@pytest.mark.parametrize("field", TEXT_FIELDS)
@pytest.mark.parametrize("hidden", REFUSED.values(), ids=REFUSED)
def test_bidi_controls_and_invisible_characters_are_refused_naming_the_field(
    field: str, hidden: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        TEXT_FIELDS[field](f"beach{hidden}sunset")

    message = refused.value.message
    assert message.startswith(field)
    named = next(ch for ch in hidden if is_refused(ch))
    assert f"U+{ord(named):04X}" in message


REAL_TEXT = {
    "Persian, with a ZWNJ": "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
    "Devanagari, with a ZWJ": "\u0915\u094d\u200d\u0937",
    "an emoji family, joined by ZWJs": "\U0001f468\u200d\U0001f469\u200d\U0001f467",
    "a red heart, with its emoji variation selector": "\u2764\ufe0f",
    "the flag of Scotland, in tag characters": SCOTLAND,
    "Hebrew, with a right-to-left mark": "\u05e9\u05dc\u05d5\u05dd \u200f(2026)",
    "English, with a left-to-right mark": "c++\u200e",
    "Arabic digits, with an Arabic letter mark": "\u0661\u061c/\u0662",
    "an Arabic number sign": "\u0600\u0661\u0662",
    "a Japanese name's ideographic variation sequence": "\u845b\U000e0100\u98fe",
    "Mongolian, with a free variation selector": "\u182d\u180b\u1820",
    "Thai": "\u0e01\u0e23\u0e38\u0e07\u0e40\u0e17\u0e1e",
}


@pytest.mark.parametrize("field", TEXT_FIELDS)
@pytest.mark.parametrize("text", REAL_TEXT.values(), ids=REAL_TEXT)
def test_real_text_keeps_its_joiners_marks_selectors_and_flags(field: str, text: str) -> None:
    assert text == nfc(text) == kept_tag(text), "the example is already in every kept form"
    assert TEXT_FIELDS[field](text) == text


# --- text that cannot be stored -----------------------------------------------------------------
# json.loads('"\\ud800"') returns a lone surrogate, so any JSON body can carry one. It is not
# encodable as UTF-8: SQLite, DynamoDB and the HTTP response would all fail on it later.


def test_metadata_with_a_lone_surrogate_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        validation.metadata(json.loads('{"camera": "\\ud800"}'))
    with pytest.raises(InvalidInput):
        validation.metadata(json.loads('{"\\udfff": "x"}'))


@pytest.mark.parametrize("rule", [validation.title, validation.description])
def test_text_with_a_lone_surrogate_is_invalid_input(rule: Callable[[object], str]) -> None:
    with pytest.raises(InvalidInput):
        rule(json.loads('"sunset \\ud83c"'))


def test_a_tag_with_a_lone_surrogate_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        validation.tags(json.loads('["beach", "\\ud83c"]'))


@given(st.text(alphabet=st.characters(codec=None, categories=["Cs", "Ll", "Po"]), max_size=20))
def test_a_sanitised_filename_is_always_valid_utf8(raw: str) -> None:
    validation.filename(raw).encode("utf-8")


# --- visibility -------------------------------------------------------------------------------


def test_visibility_defaults_to_private() -> None:
    assert validation.visibility(None) is Visibility.PRIVATE


@pytest.mark.parametrize(("raw", "expected"), [("private", "private"), ("public", "public")])
def test_visibility_is_private_or_public(raw: str, expected: str) -> None:
    assert validation.visibility(raw) is Visibility(expected)


@pytest.mark.parametrize("bad", ["PUBLIC", "Public", " public", "", "friends", 1, True, ["public"]])
def test_any_other_visibility_is_rejected(bad: object) -> None:
    with pytest.raises(InvalidInput, match="visibility"):
        validation.visibility(bad)


# --- filename ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("beach.jpg", "beach.jpg"),
        ("  holiday photo.png  ", "holiday photo.png"),
        ("../../etc/passwd", "passwd"),
        ("/absolute/path/pic.gif", "pic.gif"),
        ("C:\\Users\\me\\Pictures\\pic.webp", "pic.webp"),
        ("mixed/sep\\arated.png", "arated.png"),
        ("nul\x00byte.png", "nulbyte.png"),
        ("\u202egnp.exe", "gnp.exe"),
        ("zero\u200bwidth.png", "zerowidth.png"),
        ("Été à la plage.jpg", "Été à la plage.jpg"),
    ],
)
def test_filename_keeps_only_a_printable_last_path_component(raw: str, expected: str) -> None:
    assert validation.filename(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", ".", "..", "a/..", "dir/", "..\\", "\x00\x01", None, 5])
def test_a_filename_with_nothing_usable_becomes_image(raw: object) -> None:
    assert validation.filename(raw) == "image"


def test_a_long_filename_is_cut_to_255_characters() -> None:
    assert validation.filename("x" * 1000 + ".png") == "x" * 255


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("cafe\u0301.jpg", "caf\u00e9.jpg"),  # as macOS spells it: kept composed
        ("\U0001f468\u200d\U0001f469\u200d\U0001f467.png", None),  # an emoji family keeps its ZWJ
        ("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645.jpg", None),  # Persian, with its ZWNJ
        ("\u05e9\u05dc\u05d5\u05dd\u200f.jpg", None),  # Hebrew, with a right-to-left mark
        (SCOTLAND + ".png", None),
        ("photo\u2066gpj.exe\u2069.png", "photogpj.exe.png"),
        ("soft\u00adhyphen\ufeff.png", "softhyphen.png"),
        ("\U000e0069\U000e0067\U000e006eore.png", "ore.png"),  # tag characters outside a flag
    ],
)
def test_a_filename_is_kept_in_nfc_without_what_no_field_may_hold(
    raw: str, expected: str | None
) -> None:
    assert validation.filename(raw) == (raw if expected is None else expected)


def test_a_filename_cut_through_a_flag_keeps_no_stray_tag_characters() -> None:
    name = validation.filename("x" * 250 + SCOTLAND + ".png")
    assert name == "x" * 250 + "\U0001f3f4"


@given(st.text() | st.text(alphabet="./\\ \x00\x1f\u200b\u202ea", max_size=300))
def test_a_sanitised_filename_can_never_name_a_path(raw: str) -> None:
    name = validation.filename(raw)
    assert name
    assert "/" not in name
    assert "\\" not in name
    assert name not in (".", "..")
    assert not has_control(name)
    assert not any(is_refused(ch) for ch in name)
    assert name == nfc(name)
    assert len(name) <= LIMITS.max_filename_length


# --- user id ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "good",
    [
        "alice",
        "a",
        "7",
        "auth0|5f7c8ec7c33c6c004bbafe82",
        "user@example.com",
        "A1._@|:+=-",
        "u" * 128,
    ],
)
def test_user_ids_of_letters_digits_and_separators_are_accepted(good: str) -> None:
    assert validation.user_id(good) == good


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "-alice",
        ".hidden",
        "_x",
        "al ice",
        "alice\n",
        "ålice",
        "a/b",
        "a\\b",
        "u" * 129,
        None,
        5,
    ],
)
def test_other_user_ids_are_rejected(bad: object) -> None:
    with pytest.raises(InvalidInput, match="user id"):
        validation.user_id(bad)


@given(st.text(max_size=140) | anything)
def test_an_accepted_user_id_is_returned_unchanged(raw: object) -> None:
    try:
        cleaned = validation.user_id(raw)
    except InvalidInput:
        return
    assert cleaned == raw
    assert isinstance(cleaned, str)
    assert 1 <= len(cleaned) <= 128
    assert cleaned.isascii()
    assert cleaned[0].isalnum()


# --- image id ---------------------------------------------------------------------------------


def test_a_ulid_is_an_image_id() -> None:
    assert validation.is_image_id(str(ULID()))
    assert validation.is_image_id("01JD8ZQ7X3K2M4N5P6Q7R8S9TV")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "01JD8ZQ7X3K2M4N5P6Q7R8S9T",  # 25 characters
        "01JD8ZQ7X3K2M4N5P6Q7R8S9TVW",  # 27
        "01JD8ZQ7X3K2M4N5P6Q7R8S9TI",  # I, L, O and U are not Crockford digits
        "01JD8ZQ7X3K2M4N5P6Q7R8S9TL",
        "01JD8ZQ7X3K2M4N5P6Q7R8S9TO",
        "01JD8ZQ7X3K2M4N5P6Q7R8S9TU",
        "01JD8ZQ7X3K2M4N5P6Q7R8S9TV\n",
        "../../../../etc/passwd0000",
        "01JD8ZQ7X3K2M4N5P6Q7R8S9T-",
    ],
)
def test_strings_that_are_not_ulids_are_not_image_ids(bad: str) -> None:
    assert not validation.is_image_id(bad)


@given(st.text(alphabet=CROCKFORD, min_size=26, max_size=26))
def test_any_26_crockford_characters_are_an_image_id(raw: str) -> None:
    assert validation.is_image_id(raw)


@given(st.text(max_size=30))
def test_an_image_id_is_exactly_26_crockford_characters(raw: str) -> None:
    expected = len(raw) == 26 and all(ch in CROCKFORD for ch in raw)
    assert validation.is_image_id(raw) is expected
