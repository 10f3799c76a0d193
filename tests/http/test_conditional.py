"""Byte ranges and the numbers of headers, as RFC 9110 reads them: ASCII digits of any length
(leading zeros too), a start beyond the content is unsatisfiable, an end beyond it is its last
byte, a suffix longer than it is all of it, and anything else is no range at all."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from entrypoints.http.conditional import requested_range
from entrypoints.http.header_numbers import exceeds
from imagecore.errors import RangeNotSatisfiable
from imagecore.model import ByteRange

sizes = st.integers(0, 2000)
positions = st.integers(0, 3000) | st.integers(0, 10**40)
zeros = st.integers(0, 5).map(lambda count: "0" * count)


@given(sizes, positions, positions, zeros, zeros)
def test_a_range_is_its_bytes_within_the_content(
    size: int, first: int, last: int, pad_first: str, pad_last: str
) -> None:
    header = f"bytes={pad_first}{first}-{pad_last}{last}"
    if last < first:
        assert requested_range(header, size) is None
    elif first >= size:
        with pytest.raises(RangeNotSatisfiable):
            requested_range(header, size)
    else:
        assert requested_range(header, size) == ByteRange(first, min(last, size - 1))


@given(sizes, positions, zeros)
def test_an_open_range_runs_to_the_end(size: int, first: int, pad: str) -> None:
    if first >= size:
        with pytest.raises(RangeNotSatisfiable):
            requested_range(f"bytes={pad}{first}-", size)
    else:
        assert requested_range(f"bytes={pad}{first}-", size) == ByteRange(first, size - 1)


@given(sizes, positions, zeros)
def test_a_suffix_is_the_last_bytes_or_all_of_them(size: int, length: int, pad: str) -> None:
    if length == 0 or size == 0:
        with pytest.raises(RangeNotSatisfiable):
            requested_range(f"bytes=-{pad}{length}", size)
    else:
        expected = ByteRange(max(size - length, 0), size - 1)
        assert requested_range(f"bytes=-{pad}{length}", size) == expected


def test_positions_of_any_length_are_read_without_int() -> None:
    many = "9" * 10_000  # past int()'s 4300 digits
    assert requested_range(f"bytes=0-{many}", 100) == ByteRange(0, 99)
    assert requested_range(f"bytes=-{many}", 100) == ByteRange(0, 99)
    assert requested_range(f"bytes={many}-1", 100) is None  # the end is before the start
    with pytest.raises(RangeNotSatisfiable):
        requested_range(f"bytes={many}-", 100)
    with pytest.raises(RangeNotSatisfiable):
        requested_range(f"bytes={many}-{many}9", 100)
    assert requested_range("bytes=" + "0" * 10_000 + "5-", 100) == ByteRange(5, 99)


@pytest.mark.parametrize(
    "header",
    ["bytes=²-", "bytes=0-²", "bytes=-²", "bytes=\u0663-", "bytes=+1-", "bytes=1_0-",
     "bytes=1 -2", "bytes=1- 2", "bytes=0x1-", "bytes=-", "bytes=1-2,3-4", "items=0-1",
     "bytes 0-1", "bytes=1.5-"],
)  # fmt: skip
def test_anything_else_is_no_range(header: str) -> None:
    assert requested_range(header, 100) is None


@given(st.integers(0, 10**30), st.integers(0, 10**30), zeros)
def test_a_content_length_exceeds_a_limit_as_its_number_does(
    declared: int, limit: int, pad: str
) -> None:
    assert exceeds(f"{pad}{declared}", limit) is (declared > limit)


@pytest.mark.parametrize("declared", ["", "²", "\u0663", "+5", "-5", " 5", "5 ", "1_000", "5e3"])
def test_a_content_length_that_is_not_ascii_digits_exceeds_nothing(declared: str) -> None:
    assert not exceeds(declared, 0)


def test_a_content_length_of_any_length_is_compared_without_int() -> None:
    assert exceeds("9" * 10_000, 10**9)
    assert not exceeds("0" * 10_000 + "7", 7)
