"""The one decoding of JSON a client sends (bodies, and the tags and metadata fields): whatever
arrives, a value or InvalidInput naming the field; the JSON clients send today reads as it did
with json.loads; what is refused is what was never JSON, or never valid here."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from entrypoints.http.client_json import MAX_DEPTH, MAX_INTEGER_DIGITS, decode_json
from imagecore.errors import InvalidInput


def refusal(data: bytes | str, what: str = "metadata") -> str:
    with pytest.raises(InvalidInput) as refused:
        decode_json(data, what)
    message = refused.value.message
    assert message.startswith(f"{what} "), message
    return message


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# --- what clients send today ------------------------------------------------------------------


def no_lone_surrogates(text: str) -> bool:
    return not any("\ud800" <= ch <= "\udfff" for ch in text)


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


json_texts = st.text().filter(no_lone_surrogates)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**MAX_INTEGER_DIGITS) + 1, 10**MAX_INTEGER_DIGITS - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | json_texts,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(json_texts, children, max_size=4)
    ),
    max_leaves=20,
).filter(lambda value: depth(value) <= MAX_DEPTH)


@given(json_values, st.booleans())
def test_any_json_text_reads_as_json_loads_reads_it(value: object, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert decode_json(text, "metadata") == json.loads(text)
    assert decode_json(text.encode(), "the body") == json.loads(text.encode())


def test_a_body_may_start_with_a_byte_order_mark_as_json_loads_allowed() -> None:
    body = b'\xef\xbb\xbf{"title": "t"}'
    assert decode_json(body, "the body") == json.loads(body) == {"title": "t"}


def test_a_surrogate_pair_escape_is_the_character_it_encodes() -> None:
    assert decode_json('["\\ud83d\\ude00"]', "tags") == ["\U0001f600"]


def test_nesting_up_to_the_limit_is_read() -> None:
    value = decode_json(nested(MAX_DEPTH), "metadata")
    assert depth(value) == MAX_DEPTH


def test_integers_up_to_the_limit_of_digits_are_read_whole() -> None:
    big = "9" * MAX_INTEGER_DIGITS
    assert decode_json(f'{{"n": -{big}}}', "metadata") == {"n": -int(big)}


# --- what is refused, by name -------------------------------------------------------------------


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 900, 30_000])
def test_nesting_past_the_limit_is_refused_however_deep(levels: int) -> None:
    assert "nested more than" in refusal(nested(levels))
    assert "nested more than" in refusal('{"a":' * levels + "1" + "}" * levels, "the body")


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 900, 30_000])
def test_unclosed_nesting_is_refused_however_deep(levels: int) -> None:
    refusal("[" * levels)
    refusal('{"a":' * levels, "the body")


def test_a_key_given_twice_is_refused() -> None:
    assert "'title' more than once" in refusal('{"title": "a", "title": "b"}', "the body")
    assert "'k' more than once" in refusal('{"x": {"k": 1, "k": 1}}')


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(constant: str) -> None:
    assert constant in refusal(f'{{"k": {constant}}}')


def test_integers_past_the_limit_of_digits_are_refused_without_reading_them() -> None:
    assert "digits" in refusal("1" * (MAX_INTEGER_DIGITS + 1))
    assert "digits" in refusal('{"k": -' + "9" * 5000 + "}")


@pytest.mark.parametrize(
    "text", ['"\\ud800"', '{"\\udfff": 1}', '["a", "\\ude00\\ud83d"]', '{"k": ["x\\ud83d"]}']
)
def test_a_lone_surrogate_escape_is_not_unicode_text(text: str) -> None:
    assert "lone surrogate" in refusal(text)


@pytest.mark.parametrize("body", [b'{"t": "\xff"}', b'"\xed\xa0\x80"', b"\xff\xfe{\x00}\x00"])
def test_a_body_that_is_not_utf8_is_refused(body: bytes) -> None:
    assert "not UTF-8" in refusal(body, "the body")


@pytest.mark.parametrize("text", ["", "{", "[1,]", "{'a': 1}", '{"a": 1} x', "\ufeff{}", "nan"])
def test_text_that_is_not_json_is_refused_with_where(text: str) -> None:
    assert "is not valid JSON" in refusal(text, "tags")


def value_or_refusal(data: bytes | str, what: str) -> str | None:
    """None when ``data`` decodes, else the message of the InvalidInput it raises (anything
    else propagates and fails the test)."""
    try:
        decode_json(data, what)
    except InvalidInput as refused:
        return refused.message
    return None


@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_bytes_are_a_value_or_invalid_input(data: bytes) -> None:
    message = value_or_refusal(data, "the body")
    assert message is None or message.startswith("the body ")


@given(st.text(alphabet='[]{}":,0123456789.eE+-\\nulrsfa \ud800', max_size=300))
def test_any_text_of_json_punctuation_is_a_value_or_invalid_input(text: str) -> None:
    message = value_or_refusal(text, "tags")
    assert message is None or message.startswith("tags ")
