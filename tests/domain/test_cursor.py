"""Pagination cursors: opaque, signed, bound to their filters and caller, and short-lived.
Whatever text arrives as a cursor, the answer is a position or InvalidCursor, never a crash."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagecore.cursor import MAX_CURSOR_LENGTH, CursorCodec
from imagecore.errors import InvalidCursor, InvalidInput
from imagecore.model import Position, SortOrder
from imagecore.query import ListQuery
from tests.support.doubles import CROCKFORD, SECRET, START, FakeClock, crockford

QUERY = ListQuery(user_id="bob", tags=("beach",), order=SortOrder.ASC, limit=10)
POSITION = Position(datetime(2026, 11, 22, 10, 30, 15, 123456, tzinfo=UTC), crockford(42))
CALLER = "alice"


def codec(clock: FakeClock | None = None, secret: bytes = SECRET) -> CursorCodec:
    return CursorCodec(secret=secret, clock=clock or FakeClock())


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signed(payload: object, secret: bytes = SECRET) -> str:
    """A cursor in the documented shape, base64url(payload).base64url(hmac), around any JSON."""
    body = b64(json.dumps(payload).encode())
    return f"{body}.{b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())}"


TOKEN = codec().encode(POSITION, QUERY, CALLER)

# --- round trip -------------------------------------------------------------------------------

image_ids = st.text(alphabet=CROCKFORD, min_size=26, max_size=26)


@given(st.datetimes(timezones=st.just(UTC)), image_ids)
def test_a_cursor_leads_back_to_exactly_the_position_it_was_made_at(
    created_at: datetime, image_id: str
) -> None:
    cursors = codec()
    position = Position(created_at, image_id)
    decoded = cursors.decode(cursors.encode(position, QUERY, CALLER), QUERY, CALLER)
    assert decoded == position
    assert decoded.created_at.microsecond == created_at.microsecond
    assert decoded.created_at.utcoffset() == timedelta(0)


def test_a_position_in_another_offset_comes_back_as_the_same_utc_instant() -> None:
    cursors = codec()
    local = datetime(2026, 11, 22, 18, 0, 0, 1, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    decoded = cursors.decode(cursors.encode(Position(local, "X"), QUERY, CALLER), QUERY, CALLER)
    assert decoded.created_at == datetime(2026, 11, 22, 12, 30, 0, 1, tzinfo=UTC)


def test_a_cursor_keeps_working_when_only_the_page_size_changes() -> None:
    other_limit = ListQuery(user_id="bob", tags=("beach",), order=SortOrder.ASC, limit=99)
    assert codec().decode(TOKEN, other_limit, CALLER) == POSITION


def test_a_cursor_is_url_safe_and_short() -> None:
    assert len(TOKEN) <= MAX_CURSOR_LENGTH
    assert set(TOKEN) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


# --- bound to the query and the caller --------------------------------------------------------


@pytest.mark.parametrize(
    "other",
    [
        ListQuery(user_id="bob", tags=("beach",), order=SortOrder.DESC),
        ListQuery(user_id="carol", tags=("beach",), order=SortOrder.ASC),
        ListQuery(user_id="bob", tags=("beach", "sea"), order=SortOrder.ASC),
        ListQuery(user_id="bob", tags=("beach",), order=SortOrder.ASC, content_type="image/gif"),
        ListQuery(user_id="bob", tags=("beach",), order=SortOrder.ASC, title_prefix="a"),
        ListQuery(user_id="bob", tags=("beach",), order=SortOrder.ASC, start_date=START),
        ListQuery(user_id="bob", tags=("beach",), order=SortOrder.ASC, end_date=START),
        ListQuery(),
    ],
)
def test_a_cursor_used_with_other_filters_is_rejected(other: ListQuery) -> None:
    with pytest.raises(InvalidCursor, match="other filters"):
        codec().decode(TOKEN, other, CALLER)


@pytest.mark.parametrize("other_caller", ["bob", "Alice", "alice2", "alic", ""])
def test_a_cursor_used_by_another_caller_is_rejected(other_caller: str) -> None:
    with pytest.raises(InvalidCursor, match="another caller"):
        codec().decode(TOKEN, QUERY, other_caller)


def test_an_invalid_cursor_is_a_kind_of_invalid_input() -> None:
    # The entrypoints answer 400 for it, like any other bad request parameter.
    assert issubclass(InvalidCursor, InvalidInput)


# --- expiry -----------------------------------------------------------------------------------


def test_a_cursor_works_until_it_expires_a_day_later() -> None:
    clock = FakeClock(START)
    cursors = codec(clock)
    token = cursors.encode(POSITION, QUERY, CALLER)
    clock.advance(timedelta(hours=24) - timedelta(seconds=1))
    assert cursors.decode(token, QUERY, CALLER) == POSITION
    clock.advance(timedelta(seconds=1))
    with pytest.raises(InvalidCursor, match="expired"):
        cursors.decode(token, QUERY, CALLER)
    clock.advance(timedelta(days=365))
    with pytest.raises(InvalidCursor, match="expired"):
        cursors.decode(token, QUERY, CALLER)


def test_the_cursor_lifetime_is_configurable() -> None:
    clock = FakeClock(START)
    cursors = CursorCodec(secret=SECRET, clock=clock, lifetime=timedelta(minutes=5))
    token = cursors.encode(POSITION, QUERY, CALLER)
    clock.advance(timedelta(minutes=4))
    assert cursors.decode(token, QUERY, CALLER) == POSITION
    clock.advance(timedelta(minutes=1))
    with pytest.raises(InvalidCursor, match="expired"):
        cursors.decode(token, QUERY, CALLER)


# --- tampering and garbage --------------------------------------------------------------------


@given(st.data())
def test_a_cursor_with_any_one_character_changed_is_rejected(data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(TOKEN) - 1), label="index")
    replacement = data.draw(
        st.characters(codec="ascii").filter(lambda ch: ch != TOKEN[index]), label="replacement"
    )
    tampered = TOKEN[:index] + replacement + TOKEN[index + 1 :]
    with pytest.raises(InvalidCursor):
        codec().decode(tampered, QUERY, CALLER)


@given(st.integers(0, len(TOKEN) - 1))
def test_a_truncated_cursor_is_rejected(cut: int) -> None:
    with pytest.raises(InvalidCursor):
        codec().decode(TOKEN[:cut], QUERY, CALLER)
    with pytest.raises(InvalidCursor):
        codec().decode(TOKEN[cut + 1 :], QUERY, CALLER)


@pytest.mark.parametrize("suffix", ["A", "=", "==", ".", ".x", " ", "\n"])
def test_a_cursor_with_anything_appended_is_rejected(suffix: str) -> None:
    with pytest.raises(InvalidCursor):
        codec().decode(TOKEN + suffix, QUERY, CALLER)


def test_an_empty_cursor_is_rejected() -> None:
    with pytest.raises(InvalidCursor):
        codec().decode("", QUERY, CALLER)


@pytest.mark.parametrize("size", [MAX_CURSOR_LENGTH + 1, 10_000, 1_000_000])
def test_a_huge_cursor_is_rejected(size: int) -> None:
    with pytest.raises(InvalidCursor):
        codec().decode("A" * size, QUERY, CALLER)
    with pytest.raises(InvalidCursor):
        codec().decode(TOKEN + "A" * size, QUERY, CALLER)


@pytest.mark.parametrize(
    "text",
    ["é", TOKEN[:-1] + "é", "\uff43\uff55\uff52\uff53\uff4f\uff52", TOKEN + "\u200b", "\ud800"],
)
def test_a_cursor_with_non_ascii_characters_is_rejected(text: str) -> None:
    with pytest.raises(InvalidCursor):
        codec().decode(text, QUERY, CALLER)


def test_a_cursor_signed_with_another_secret_is_rejected() -> None:
    foreign = codec(secret=b"another-server-another-secret!!!").encode(POSITION, QUERY, CALLER)
    with pytest.raises(InvalidCursor, match="altered"):
        codec().decode(foreign, QUERY, CALLER)


def test_a_cursor_without_its_signature_is_rejected() -> None:
    payload = TOKEN.partition(".")[0]
    for unsigned in (payload, payload + ".", "." + TOKEN.partition(".")[2]):
        with pytest.raises(InvalidCursor):
            codec().decode(unsigned, QUERY, CALLER)


garbage = (
    st.text()
    | st.text(alphabet="ABCxyz019-_.=", max_size=200)
    | st.builds(lambda a, b: f"{a}.{b}", st.text("ABCxyz019-_"), st.text("ABCxyz019-_"))
    | st.binary(max_size=100).map(lambda raw: b64(raw) + "." + b64(raw[:32]))
)


@given(garbage)
def test_decoding_any_text_gives_invalid_cursor_and_nothing_else(text: str) -> None:
    with pytest.raises(InvalidCursor):
        codec().decode(text, QUERY, CALLER)


# Cursors correctly signed around a body the codec never writes: what an old server version, a
# leaked secret or a bug could produce. Still InvalidCursor, never a crash.
_FINGERPRINT = json.loads(unb64(TOKEN.partition(".")[0]))["f"]
_EXPIRES = int((START + timedelta(days=1)).timestamp())
_GOOD = {"v": 1, "t": 0, "i": "X", "f": _FINGERPRINT, "e": _EXPIRES}


@pytest.mark.parametrize(
    "body",
    [
        [],
        "text",
        None,
        42,
        {},
        {**_GOOD, "v": 2},
        {k: v for k, v in _GOOD.items() if k != "t"},
        {k: v for k, v in _GOOD.items() if k != "f"},
        {k: v for k, v in _GOOD.items() if k != "e"},
        {**_GOOD, "i": 5},
        {**_GOOD, "i": None},
        {**_GOOD, "t": "soon"},
        {**_GOOD, "t": None},
        {**_GOOD, "t": 10**30},
        {**_GOOD, "t": -(10**30)},
        {**_GOOD, "t": 1e308},
        {**_GOOD, "e": 10**30},
        {**_GOOD, "e": "never"},
        {**_GOOD, "e": [1]},
        {**_GOOD, "f": None},
        {**_GOOD, "f": 12},
        {**_GOOD, "f": "é"},
    ],
    ids=repr,
)
def test_a_signed_cursor_with_an_unexpected_body_is_rejected(body: object) -> None:
    with pytest.raises(InvalidCursor):
        codec().decode(signed(body), QUERY, CALLER)


def test_a_signed_cursor_whose_payload_is_not_json_is_rejected() -> None:
    for raw in (b"not json", b"\xff\xfe", b""):
        body = b64(raw)
        token = f"{body}.{b64(hmac.new(SECRET, body.encode(), hashlib.sha256).digest())}"
        with pytest.raises(InvalidCursor):
            codec().decode(token, QUERY, CALLER)


def test_the_documented_cursor_shape_is_accepted() -> None:
    assert codec().decode(signed(_GOOD), QUERY, CALLER) == Position(
        datetime(1970, 1, 1, tzinfo=UTC), "X"
    )


# --- opacity ----------------------------------------------------------------------------------


@pytest.mark.parametrize("caller", ["alice", "auth0|5f7c8ec7c33c6c004bbafe82", "carol@example.com"])
def test_a_cursor_reveals_nothing_about_the_caller(caller: str) -> None:
    token = codec().encode(POSITION, QUERY, caller)
    payload, _, signature = token.partition(".")
    readable = token + unb64(payload).decode() + unb64(signature).decode("latin-1")
    assert caller not in readable
    assert caller.encode() not in unb64(payload)
