"""The list query: which images a caller asked for, and the rule that says whether one matches."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time

import attrs

from imagecore import unicode_text, validation
from imagecore.errors import InvalidInput
from imagecore.model import ACCEPTED_CONTENT_TYPES, Image, Position, SortOrder

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
MAX_FILTER_TAGS = 10
MIN_READ_BUDGET = 200
READ_BUDGET_PER_IMAGE = 4


def read_budget(limit: int) -> int:
    """How many index entries a list of up to ``limit`` images may read: a filter the index
    cannot apply can reject every entry, and without a bound one request would read the whole
    table. Past it the page comes back short, with the place it read up to."""
    return max(READ_BUDGET_PER_IMAGE * limit, MIN_READ_BUDGET)


@attrs.frozen
class Listed:
    """A repository's answer to a list: the matching images, in list order, and ``read_up_to``
    when it stopped at its read budget before the end of the list. Every match before that
    place is among the images; the list goes on strictly after it."""

    images: Sequence[Image]
    read_up_to: Position | None = None


def fold_title(text: str) -> str:
    """The form titles are compared in, as tags are (unicode_text.caseless): a title prefix
    matches whatever its case and however compatibility characters spell it."""
    return unicode_text.caseless(text)


@attrs.frozen
class ListQuery:
    """Filters of ``GET /images``. Every filter narrows; visibility is applied on top of them."""

    user_id: str | None = None
    tags: tuple[str, ...] = ()
    content_type: str | None = None
    title_prefix: str | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    order: SortOrder = SortOrder.DESC
    limit: int = DEFAULT_PAGE_SIZE

    def matches(self, image: Image, caller: str) -> bool:
        """The meaning of the query, stated once; every repository must agree with it."""
        return (
            image.is_visible_to(caller)
            and (self.user_id is None or image.user_id == self.user_id)
            and all(tag in image.tags for tag in self.tags)
            and (self.content_type is None or image.content_type == self.content_type)
            and (
                self.title_prefix is None
                or fold_title(image.title).startswith(fold_title(self.title_prefix))
            )
            and (self.start_date is None or image.created_at >= self.start_date)
            and (self.end_date is None or image.created_at <= self.end_date)
        )

    def fingerprint(self) -> str:
        """Everything that decides which images match and in what order (not the page size)."""
        parts = [
            self.user_id or "",
            ",".join(sorted(self.tags)),
            self.content_type or "",
            fold_title(self.title_prefix) if self.title_prefix is not None else "\x00",
            self.start_date.isoformat() if self.start_date else "",
            self.end_date.isoformat() if self.end_date else "",
            self.order.value,
        ]
        return "\x1f".join(parts)


def _parse_instant(value: str, field: str, end_of_day: bool) -> datetime:
    text = value.strip()
    try:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        else:
            moment = datetime.combine(day, time.max if end_of_day else time.min)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidInput(
            f"{field} must be an ISO-8601 date or date-time, such as 2026-11-22 or "
            "2026-11-22T10:30:00Z"
        ) from None
    return moment


def build_list_query(
    *,
    user_id: str | None = None,
    tags: str | None = None,
    content_type: str | None = None,
    title: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    order: str | None = None,
    limit: str | int | None = None,
) -> ListQuery:
    """Turn the textual filters of a request into a ListQuery, or raise InvalidInput.

    ``end_date`` given as a plain date includes that whole day.
    """
    parsed_tags: tuple[str, ...] = ()
    if tags:
        wanted = {unicode_text.tag_form(part) for part in tags.split(",") if part.strip()}
        if len(wanted) > MAX_FILTER_TAGS:
            raise InvalidInput(f"filter by at most {MAX_FILTER_TAGS} tags")
        parsed_tags = tuple(sorted(validation.tags(sorted(wanted))))
    if content_type is not None and content_type not in ACCEPTED_CONTENT_TYPES:
        raise InvalidInput(f"content_type must be one of {', '.join(ACCEPTED_CONTENT_TYPES)}")
    start = _parse_instant(start_date, "start_date", end_of_day=False) if start_date else None
    end = _parse_instant(end_date, "end_date", end_of_day=True) if end_date else None
    if start and end and start > end:
        raise InvalidInput("start_date is after end_date")
    try:
        sort_order = SortOrder(order) if order is not None else SortOrder.DESC
    except ValueError:
        raise InvalidInput("order must be 'asc' or 'desc'") from None
    page_size = _page_size(limit)
    title_prefix = None
    if title is not None:
        title_prefix = validation.title(title)
        if not title_prefix:
            title_prefix = None
    return ListQuery(
        user_id=validation.user_id(user_id) if user_id is not None else None,
        tags=parsed_tags,
        content_type=content_type,
        title_prefix=title_prefix,
        start_date=start,
        end_date=end,
        order=sort_order,
        limit=page_size,
    )


def _page_size(limit: str | int | None) -> int:
    if limit is None:
        return DEFAULT_PAGE_SIZE
    if isinstance(limit, int):
        size = limit
    else:
        # ASCII digits only: int() would also take " 5", "+5", "1_0" and other scripts' digits.
        digits = _PAGE_SIZE_DIGITS.fullmatch(limit)
        size = int(digits[1]) if digits else 0
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise InvalidInput(f"limit must be a whole number from 1 to {MAX_PAGE_SIZE}")
    return size


_PAGE_SIZE_DIGITS = re.compile(r"0*([0-9]{1,3})")
