"""The list query: parsing the filters of GET /images, what each filter means, and the
fingerprint that binds a cursor to its filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagecore.errors import InvalidInput
from imagecore.model import ImageState, SortOrder, Visibility
from imagecore.query import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, ListQuery, build_list_query
from tests.support.doubles import START, make_image

MICRO = timedelta(microseconds=1)

# --- parsing ----------------------------------------------------------------------------------


def test_no_filters_means_everything_newest_first_50_per_page() -> None:
    query = build_list_query()
    assert query == ListQuery()
    assert query.order is SortOrder.DESC
    assert query.limit == DEFAULT_PAGE_SIZE == 50


def test_user_id_filter_is_parsed() -> None:
    assert build_list_query(user_id="auth0|bob").user_id == "auth0|bob"


@pytest.mark.parametrize("bad", ["", " bob", "bob smith", "../bob", "b" * 129])
def test_an_invalid_user_id_filter_is_rejected(bad: str) -> None:
    with pytest.raises(InvalidInput, match="user id"):
        build_list_query(user_id=bad)


def test_tags_filter_is_normalised_deduplicated_and_sorted() -> None:
    assert build_list_query(tags=" Sunset,beach , BEACH,,  New  York ").tags == (
        "beach",
        "new york",
        "sunset",
    )


@pytest.mark.parametrize("blank", ["", ",", " , ,"])
def test_blank_tags_filter_filters_nothing(blank: str) -> None:
    assert build_list_query(tags=blank).tags == ()


def test_at_most_ten_tags_may_be_filtered_by() -> None:
    ten = ",".join(f"t{i}" for i in range(10))
    assert len(build_list_query(tags=ten).tags) == 10
    with pytest.raises(InvalidInput, match="at most 10 tags"):
        build_list_query(tags=ten + ",t10")


@pytest.mark.parametrize("count", [11, 20, 21, 50])
def test_too_many_filter_tags_are_refused_with_the_filters_own_limit(count: int) -> None:
    # The message must name the limit of the filter (10), not the 20 tags an image may carry.
    with pytest.raises(InvalidInput, match="filter by at most 10 tags"):
        build_list_query(tags=",".join(f"t{i}" for i in range(count)))


def test_a_tag_repeated_in_the_filter_counts_once() -> None:
    assert build_list_query(tags=",".join(["Beach", "beach "] * 20)).tags == ("beach",)


@pytest.mark.parametrize("bad", ["a\x00b", "x" * 65])
def test_an_invalid_tag_in_the_filter_is_rejected(bad: str) -> None:
    with pytest.raises(InvalidInput):
        build_list_query(tags=f"ok,{bad}")


def test_tags_filter_takes_the_form_tags_are_kept_in() -> None:
    fullwidth = "\uff42\uff45\uff41\uff43\uff48"  # "beach" in fullwidth letters
    assert build_list_query(tags=f"{fullwidth},BEACH,Stra\u00dfe,cafe\u0301").tags == (
        "beach",
        "caf\u00e9",
        "strasse",
    )


@pytest.mark.parametrize("hidden", ["\u202e", "\u200b", "\u2066", "\ufeff"])
def test_a_filter_with_a_bidi_control_or_an_invisible_character_names_its_field(
    hidden: str,
) -> None:
    with pytest.raises(InvalidInput, match=f"^tags .*U\\+{ord(hidden):04X}"):
        build_list_query(tags=f"beach,sun{hidden}set")
    with pytest.raises(InvalidInput, match=f"^title .*U\\+{ord(hidden):04X}"):
        build_list_query(title=f"sun{hidden}set")


@pytest.mark.parametrize("content_type", ["image/jpeg", "image/png", "image/gif", "image/webp"])
def test_each_accepted_content_type_can_be_filtered_by(content_type: str) -> None:
    assert build_list_query(content_type=content_type).content_type == content_type


@pytest.mark.parametrize(
    "bad", ["image/tiff", "IMAGE/PNG", "image/png; q=1", "png", "", "text/html", "image/svg+xml"]
)
def test_any_other_content_type_filter_is_rejected(bad: str) -> None:
    with pytest.raises(InvalidInput, match="content_type"):
        build_list_query(content_type=bad)


def test_title_filter_is_trimmed_and_a_blank_one_filters_nothing() -> None:
    assert build_list_query(title="  Sun ").title_prefix == "Sun"
    assert build_list_query(title="").title_prefix is None
    assert build_list_query(title="   ").title_prefix is None


@pytest.mark.parametrize("bad", ["t" * 201, "two\nlines", "\x00"])
def test_an_invalid_title_filter_is_rejected(bad: str) -> None:
    with pytest.raises(InvalidInput, match="title"):
        build_list_query(title=bad)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-11-22T10:30:00Z", datetime(2026, 11, 22, 10, 30, tzinfo=UTC)),
        ("2026-11-22T10:30:00z", datetime(2026, 11, 22, 10, 30, tzinfo=UTC)),
        ("2026-11-22T10:30:00+00:00", datetime(2026, 11, 22, 10, 30, tzinfo=UTC)),
        ("2026-11-22T12:30:00+02:00", datetime(2026, 11, 22, 10, 30, tzinfo=UTC)),
        ("2026-11-22T05:00:00-05:30", datetime(2026, 11, 22, 10, 30, tzinfo=UTC)),
        ("2026-11-22T10:30:00.123456Z", datetime(2026, 11, 22, 10, 30, 0, 123456, tzinfo=UTC)),
        (" 2026-11-22T10:30:00Z ", datetime(2026, 11, 22, 10, 30, tzinfo=UTC)),
    ],
)
def test_date_times_are_parsed_to_utc_instants(raw: str, expected: datetime) -> None:
    query = build_list_query(start_date=raw, end_date=raw)
    assert query.start_date == expected
    assert query.end_date == expected
    assert query.start_date is not None
    assert query.start_date.utcoffset() == timedelta(0)


def test_a_date_time_without_an_offset_is_utc() -> None:
    query = build_list_query(start_date="2026-11-22T10:30:00", end_date="2026-11-22 11:00")
    assert query.start_date == datetime(2026, 11, 22, 10, 30, tzinfo=UTC)
    assert query.end_date == datetime(2026, 11, 22, 11, 0, tzinfo=UTC)


def test_a_plain_start_date_starts_at_midnight_utc() -> None:
    start = build_list_query(start_date="2026-11-22").start_date
    assert start == datetime(2026, 11, 22, tzinfo=UTC)


def test_a_plain_end_date_includes_the_whole_day() -> None:
    end = build_list_query(end_date="2026-11-22").end_date
    assert end == datetime(2026, 11, 22, 23, 59, 59, 999999, tzinfo=UTC)
    query = build_list_query(start_date="2026-11-22", end_date="2026-11-22")
    last_moment = make_image(created_at=datetime(2026, 11, 22, 23, 59, 59, 999999, tzinfo=UTC))
    next_day = make_image(created_at=datetime(2026, 11, 23, tzinfo=UTC))
    assert query.matches(last_moment, "alice")
    assert not query.matches(next_day, "alice")


@pytest.mark.parametrize("basic", ["20261122", "2026W477"])
def test_a_plain_end_date_in_basic_iso_form_includes_the_whole_day_or_is_rejected(
    basic: str,
) -> None:
    # Python 3.11 reads "20261122" and "2026W477" (ISO-8601 basic forms of 2026-11-22) as a
    # date-time at midnight; as an end date that silently drops the rest of the day, while
    # "2026-11-22" and "2026-W47-7" include it.
    try:
        end = build_list_query(end_date=basic).end_date
    except InvalidInput:
        return
    assert end == datetime(2026, 11, 22, 23, 59, 59, 999999, tzinfo=UTC)


@pytest.mark.parametrize(
    "bad",
    [
        "yesterday",
        "2026-13-01",
        "2026-11-31",
        "22/11/2026",
        "2026-11-22T25:00:00Z",
        "2026-11-22T10:30:00+25:00",
        "2026-11-22T10:30:00Zjunk",
        "1732271400",
        "2026-11-22 10:30 UTC",
    ],
)
def test_a_malformed_date_is_rejected(bad: str) -> None:
    with pytest.raises(InvalidInput, match="start_date"):
        build_list_query(start_date=bad)
    with pytest.raises(InvalidInput, match="end_date"):
        build_list_query(end_date=bad)


@pytest.mark.parametrize("edge", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_date_outside_the_representable_range_is_rejected(edge: str) -> None:
    # The text parses, but moving it to UTC falls off the calendar: a client error, not a crash.
    with pytest.raises(InvalidInput):
        build_list_query(start_date=edge)
    with pytest.raises(InvalidInput):
        build_list_query(end_date=edge)


def test_start_date_after_end_date_is_rejected() -> None:
    with pytest.raises(InvalidInput, match="after"):
        build_list_query(start_date="2026-11-23", end_date="2026-11-22")
    with pytest.raises(InvalidInput, match="after"):
        build_list_query(start_date="2026-11-22T10:00:01Z", end_date="2026-11-22T10:00:00Z")


def test_start_date_equal_to_end_date_is_a_valid_instant_range() -> None:
    query = build_list_query(start_date="2026-11-22T10:30:00Z", end_date="2026-11-22T12:30+02:00")
    assert query.start_date == query.end_date


@pytest.mark.parametrize(("raw", "expected"), [("asc", SortOrder.ASC), ("desc", SortOrder.DESC)])
def test_order_is_asc_or_desc(raw: str, expected: SortOrder) -> None:
    assert build_list_query(order=raw).order is expected


@pytest.mark.parametrize("bad", ["ASC", "up", "", "newest", " asc"])
def test_any_other_order_is_rejected(bad: str) -> None:
    with pytest.raises(InvalidInput, match="order"):
        build_list_query(order=bad)


@pytest.mark.parametrize(("raw", "expected"), [("1", 1), (1, 1), ("100", 100), (37, 37)])
def test_limit_from_1_to_100_is_the_page_size(raw: str | int, expected: int) -> None:
    assert build_list_query(limit=raw).limit == expected


@pytest.mark.parametrize("bad", [0, 101, "0", "101", "x", "-1", -1, "", "1.5", "1e2", "ten"])
def test_a_limit_outside_1_to_100_or_not_a_number_is_rejected(bad: str | int) -> None:
    with pytest.raises(InvalidInput, match=f"1 to {MAX_PAGE_SIZE}"):
        build_list_query(limit=bad)


@pytest.mark.parametrize("bad", ["\uff15", "\u0663", "\u00b2", " 5", "5 ", "+5", "1_0", "0x10"])
def test_a_limit_is_ascii_digits_only(bad: str) -> None:
    # int() reads all of these (fullwidth 5, Arabic-Indic 3, ...) or raises for "²", which
    # str.isdigit() calls a digit.
    with pytest.raises(InvalidInput, match=f"1 to {MAX_PAGE_SIZE}"):
        build_list_query(limit=bad)


def test_a_limit_of_thousands_of_digits_is_rejected() -> None:
    with pytest.raises(InvalidInput, match=f"1 to {MAX_PAGE_SIZE}"):
        build_list_query(limit="9" * 5000)


def test_a_limit_may_have_leading_zeros() -> None:
    assert build_list_query(limit="007").limit == 7
    assert build_list_query(limit="0100").limit == 100


# --- what the filters mean --------------------------------------------------------------------


def test_the_caller_sees_their_own_private_images() -> None:
    assert ListQuery().matches(make_image(user_id="alice"), "alice")


def test_the_caller_sees_other_users_public_images_but_not_their_private_ones() -> None:
    public = make_image(user_id="bob", visibility=Visibility.PUBLIC)
    private = make_image(user_id="bob", visibility=Visibility.PRIVATE)
    assert ListQuery().matches(public, "alice")
    assert not ListQuery().matches(private, "alice")


@pytest.mark.parametrize("state", [ImageState.DELETING, ImageState.DELETED])
@pytest.mark.parametrize("owner", ["alice", "bob"])
def test_an_image_being_deleted_or_deleted_never_matches(state: ImageState, owner: str) -> None:
    image = make_image(user_id=owner, visibility=Visibility.PUBLIC, state=state)
    assert not ListQuery().matches(image, "alice")
    assert not ListQuery(user_id=owner).matches(image, owner)


def test_user_id_filter_keeps_only_that_users_images() -> None:
    query = ListQuery(user_id="bob")
    assert query.matches(make_image(user_id="bob", visibility=Visibility.PUBLIC), "alice")
    assert not query.matches(make_image(user_id="alice"), "alice")
    assert not query.matches(make_image(user_id="bob"), "alice")  # bob's private stays hidden


def test_tags_filter_keeps_images_carrying_every_tag() -> None:
    image = make_image(tags=("beach", "sunset", "family"))
    assert ListQuery(tags=("beach",)).matches(image, "alice")
    assert ListQuery(tags=("beach", "sunset")).matches(image, "alice")
    assert ListQuery(tags=("sunset", "family", "beach")).matches(image, "alice")
    assert not ListQuery(tags=("beach", "city")).matches(image, "alice")
    assert not ListQuery(tags=("beac",)).matches(image, "alice")
    assert not ListQuery(tags=("beach",)).matches(make_image(tags=()), "alice")


def test_content_type_filter_keeps_only_that_type() -> None:
    query = ListQuery(content_type="image/gif")
    assert query.matches(make_image(content_type="image/gif"), "alice")
    assert not query.matches(make_image(content_type="image/png"), "alice")


@pytest.mark.parametrize(
    ("prefix", "title"),
    [
        ("sun", "Sunset at sea"),
        ("SUN", "sunset"),
        ("Sunset at sea", "Sunset at sea"),
        ("été", "Été indien"),
        ("ÉTÉ IN", "été indien"),
        ("ωme", "Ωmega"),
        ("ΣΟΦ", "σοφία"),
        ("straße", "STRASSE 5"),
        ("北京", "北京の夜"),
        ("bea", "\uff22\uff45\uff41\uff43\uff48 hut"),  # a title in fullwidth letters
        ("\uff42\uff45\uff41", "Beach hut"),  # a prefix in fullwidth letters
        ("fi", "\ufb01sh market"),  # the fi ligature
        ("cafe\u0301", "Caf\u00e9 au lait"),  # decomposed prefix, composed title
        ("caf\u00e9", "Cafe\u0301 au lait"),  # and the other way round
        ("\u2460", "1 of 3"),  # a circled digit
    ],
)
def test_title_filter_is_a_case_insensitive_prefix(prefix: str, title: str) -> None:
    assert ListQuery(title_prefix=prefix).matches(make_image(title=title), "alice")


@pytest.mark.parametrize(
    ("prefix", "title"),
    [("sunset", "A sunset"), ("sunsets", "Sunset"), ("ete", "Été"), ("x", ""), ("北京の", "北京")],
)
def test_title_filter_does_not_match_elsewhere_in_the_title(prefix: str, title: str) -> None:
    assert not ListQuery(title_prefix=prefix).matches(make_image(title=title), "alice")


def test_date_range_is_inclusive_at_both_ends() -> None:
    start, end = START, START + timedelta(hours=1)
    query = ListQuery(start_date=start, end_date=end)
    assert query.matches(make_image(created_at=start), "alice")
    assert query.matches(make_image(created_at=end), "alice")
    assert not query.matches(make_image(created_at=start - MICRO), "alice")
    assert not query.matches(make_image(created_at=end + MICRO), "alice")
    assert ListQuery(start_date=start).matches(make_image(created_at=end + MICRO), "alice")
    assert ListQuery(end_date=end).matches(make_image(created_at=start - MICRO), "alice")


def test_every_filter_must_hold_at_once() -> None:
    query = ListQuery(
        user_id="alice",
        tags=("beach",),
        content_type="image/png",
        title_prefix="sun",
        start_date=START,
        end_date=START,
    )
    fits: dict[str, Any] = {"tags": ("beach",), "title": "Sunset", "created_at": START}
    assert query.matches(make_image(**fits), "alice")
    misses: list[dict[str, Any]] = [
        {"user_id": "bob", "visibility": Visibility.PUBLIC},
        {"tags": ("city",)},
        {"content_type": "image/jpeg"},
        {"title": "Moonrise"},
        {"created_at": START + MICRO},
    ]
    for miss in misses:
        assert not query.matches(make_image(**{**fits, **miss}), "alice"), miss


# --- fingerprint ------------------------------------------------------------------------------


def test_fingerprint_ignores_the_page_size() -> None:
    assert ListQuery(limit=1).fingerprint() == ListQuery(limit=100).fingerprint()
    assert (
        build_list_query(tags="a", limit="5").fingerprint()
        == build_list_query(tags="a", limit=None).fingerprint()
    )


def test_fingerprint_ignores_the_order_tags_were_given_in() -> None:
    assert ListQuery(tags=("a", "b")).fingerprint() == ListQuery(tags=("b", "a")).fingerprint()
    assert (
        build_list_query(tags="Sunset,beach").fingerprint()
        == build_list_query(tags="beach, sunset, BEACH").fingerprint()
    )


BASE = ListQuery(
    user_id="alice",
    tags=("beach", "sunset"),
    content_type="image/png",
    title_prefix="Sun",
    start_date=START,
    end_date=START + timedelta(days=1),
    order=SortOrder.DESC,
)


@pytest.mark.parametrize(
    "change",
    [
        {"user_id": "bob"},
        {"user_id": None},
        {"tags": ("beach",)},
        {"tags": ("beach", "sunset", "city")},
        {"tags": ()},
        {"content_type": "image/jpeg"},
        {"content_type": None},
        {"title_prefix": "Sunset"},
        {"title_prefix": None},
        {"start_date": START + MICRO},
        {"start_date": None},
        {"end_date": START + timedelta(days=1) - MICRO},
        {"end_date": None},
        {"order": SortOrder.ASC},
    ],
    ids=repr,
)
def test_fingerprint_differs_when_any_filter_differs(change: dict[str, Any]) -> None:
    assert attrs.evolve(BASE, **change).fingerprint() != BASE.fingerprint()


instants = st.sampled_from([None, START, START + MICRO, START + timedelta(days=1)])
queries = st.builds(
    ListQuery,
    user_id=st.sampled_from([None, "alice", "bob", "a"]),
    tags=st.lists(st.sampled_from(["a", "b", "a b", "ab", "c"]), unique=True, max_size=3).map(
        tuple
    ),
    content_type=st.sampled_from([None, "image/png", "image/gif"]),
    title_prefix=st.sampled_from([None, "s", "su", "Sun", "sun", "Été", "été"]),
    start_date=instants,
    end_date=instants,
    order=st.sampled_from(SortOrder),
    limit=st.integers(1, 100),
)


def meaning(query: ListQuery) -> tuple[object, ...]:
    """What decides which images match and in which order."""
    title = query.title_prefix.casefold() if query.title_prefix is not None else None
    return (
        query.user_id,
        frozenset(query.tags),
        query.content_type,
        title,
        query.start_date,
        query.end_date,
        query.order,
    )


@given(queries, queries)
def test_fingerprints_are_equal_exactly_when_the_filters_mean_the_same(
    first: ListQuery, second: ListQuery
) -> None:
    assert (first.fingerprint() == second.fingerprint()) == (meaning(first) == meaning(second))
