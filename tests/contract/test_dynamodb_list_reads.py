"""The DynamoDB repository's lists beyond the contract: each is a Query on timelines (sharded for
the public images) that reads about one index entry per image returned when an index answers the
filter, and never more than the read budget per request when one cannot.

Counts come from DynamoDB's own answers (ScannedCount and Count of each Query), seen through
botocore's event hooks, on 5,000 images in a moto server.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from adapters.dynamodb import DynamoDbImageRepository, items_of
from adapters.dynamodb.items import DEFAULT_PUBLIC_SHARDS
from adapters.dynamodb.timelines import driving_facet, timeline_branches
from imagecore.model import Image, Position, SortOrder, Visibility
from imagecore.query import ListQuery, read_budget
from tests.support.fake_aws import aws_clients, fresh_resources
from tests.support.numbered_images import build_image

STORED = 5_000


PAGE = 50


PAGES = 6


START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Reads:
    """What DynamoDB says it did, call by call."""

    scanned: int = 0
    counted: int = 0
    calls: dict[str, int] = field(default_factory=dict)
    per_request: list[int] = field(default_factory=list)

    def on_call(self, model: Any, **_: Any) -> None:
        self.calls[model.name] = self.calls.get(model.name, 0) + 1

    def on_query(self, parsed: dict[str, Any], **_: Any) -> None:
        self.scanned += parsed.get("ScannedCount", 0)
        self.counted += parsed.get("Count", 0)

    def request_done(self, scanned_before: int) -> None:
        self.per_request.append(self.scanned - scanned_before)


def seed(repository: DynamoDbImageRepository, table: str) -> list[Image]:
    """5,000 images: alice owns a fifth, half of everything is public, a tenth is tagged
    "beach", most are JPEGs titled as cameras name them, one a minute through the year.
    Written with BatchWriteItem, as exactly the items ``add`` writes, since moto copies the
    whole table on every transaction."""
    rng = random.Random(7)
    users = ["alice", *(f"user{n}" for n in range(20))]
    images = [
        build_image(
            n,
            user_id="alice" if rng.random() < 0.2 else rng.choice(users[1:]),
            visibility=Visibility.PUBLIC if rng.random() < 0.5 else Visibility.PRIVATE,
            tags=("beach", "sea") if rng.random() < 0.1 else ("city",),
            content_type=rng.choices(CONTENT_TYPES, weights=(85, 12, 3))[0],
            title=f"IMG_{n:04d}" if rng.random() < 0.6 else rng.choice(WORDS),
            created_at=START + timedelta(minutes=n),
        )
        for n in range(STORED)
    ]
    items = [item for image in images for item in items_of(image, DEFAULT_PUBLIC_SHARDS)]
    client = repository.client
    for start in range(0, len(items), 25):
        batch = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        unprocessed: Any = {table: batch}
        while unprocessed:
            unprocessed = client.batch_write_item(RequestItems=unprocessed).get("UnprocessedItems")
    return images


CONTENT_TYPES = ("image/jpeg", "image/png", "image/webp")
WORDS = ("Sunset over the bay", "Beach day", "Mountain trail", "City lights", "Sunday market")


@pytest.fixture(scope="module")
def stored() -> Iterator[tuple[DynamoDbImageRepository, list[Image]]]:
    with aws_clients("server") as clients, fresh_resources(clients) as (table, _):
        repository = DynamoDbImageRepository(clients.dynamodb, table)
        yield repository, seed(repository, table)


QUERIES = {
    "own images (user_id = caller)": (ListQuery(user_id="alice"), "alice"),
    "another user's images": (ListQuery(user_id="alice"), "user3"),
    "tag": (ListQuery(tags=("beach",)), "alice"),
    "date range": (
        ListQuery(start_date=START + timedelta(days=1), end_date=START + timedelta(days=2)),
        "alice",
    ),
    "tag and date range": (
        ListQuery(tags=("beach",), start_date=START + timedelta(days=1)),
        "user3",
    ),
    "no filter": (ListQuery(), "alice"),
    "content type": (ListQuery(content_type="image/jpeg"), "alice"),
    "rare content type": (ListQuery(content_type="image/webp"), "alice"),
    "title prefix": (ListQuery(title_prefix="img"), "alice"),
    "short title prefix": (ListQuery(title_prefix="S"), "user3"),
    "one user's titles": (ListQuery(user_id="alice", title_prefix="img"), "user3"),
}
"""Filters an index answers: each entry read is a match."""

BUDGETED = {
    "title matching nothing": ListQuery(title_prefix="qqq"),
    "tag and a title matching nothing": ListQuery(tags=("beach",), title_prefix="qqq"),
    "long, rare title prefix": ListQuery(title_prefix="IMG_49"),
    "tag and rare content type": ListQuery(tags=("city",), content_type="image/webp"),
    "two tags no image has together": ListQuery(tags=("beach", "city")),
    "rare content type, one user, a title": ListQuery(
        user_id="alice", content_type="image/webp", title_prefix="Sun"
    ),
}
"""Filters checked on the entries or the images: rare or never matched."""

BUDGETED_REQUESTS = 4
"""Requests each of these makes (fewer if its list ends first): each reads its whole budget."""


@dataclass
class Paged:
    images: list[Image]
    after: Position | None
    """Where the next page would start; None once the list has ended."""


def read_pages(
    repository: DynamoDbImageRepository,
    query: ListQuery,
    caller: str,
    reads: Reads,
    pages: int = PAGES,
) -> Paged:
    """Up to ``pages`` pages of PAGE, as the service asks for them (one more, to know if there
    is a next), going on from a short page's ``read_up_to`` as the service's cursor does."""
    client = repository.client
    client.meta.events.register("after-call.dynamodb.Query", reads.on_query)
    client.meta.events.register("before-call.dynamodb.*", reads.on_call)
    try:
        returned: list[Image] = []
        after: Position | None = None
        for _ in range(pages):
            before = reads.scanned
            found = repository.list(query, caller, after, PAGE + 1)
            reads.request_done(before)
            page = list(found.images[:PAGE])
            returned += page
            if len(found.images) > PAGE:
                after = page[-1].position
            elif found.read_up_to is not None:
                after = found.read_up_to
            else:
                return Paged(returned, None)
        return Paged(returned, after)
    finally:
        client.meta.events.unregister("after-call.dynamodb.Query", reads.on_query)
        client.meta.events.unregister("before-call.dynamodb.*", reads.on_call)


def matching(
    images: list[Image], query: ListQuery, caller: str, up_to: Position | None = None
) -> list[Image]:
    """The model answer, in list order; with ``up_to``, only as far as that place."""
    descending = query.order is SortOrder.DESC
    found = sorted(
        (image for image in images if query.matches(image, caller)),
        key=lambda image: (image.created_at, image.image_id),
        reverse=descending,
    )
    if up_to is None:
        return found
    there = (up_to.created_at, up_to.image_id)
    if descending:
        return [image for image in found if (image.created_at, image.image_id) >= there]
    return [image for image in found if (image.created_at, image.image_id) <= there]


BOTH_ORDERS = {"own images (user_id = caller)", "tag", "no filter"}
"""The others are read newest first only: on moto every Query reads the whole table."""


@pytest.mark.parametrize(
    ("name", "order"),
    [
        (name, order)
        for name in QUERIES
        for order in (list(SortOrder) if name in BOTH_ORDERS else [SortOrder.DESC])
    ],
)
def test_lists_are_queries_reading_at_most_1_2_index_entries_per_image_returned(
    stored: tuple[DynamoDbImageRepository, list[Image]], name: str, order: SortOrder
) -> None:
    repository, images = stored
    query, caller = QUERIES[name]
    query = attrs.evolve(query, order=order)
    reads = Reads()

    returned = read_pages(repository, query, caller, reads).images

    expected = matching(images, query, caller)[: PAGE * PAGES]
    assert [image.image_id for image in returned] == [image.image_id for image in expected]
    assert len(returned) >= 100, "the filter should match several pages"
    assert "Scan" not in reads.calls
    assert reads.counted == reads.scanned, "no entry read was filtered out"
    timelines = len(timeline_branches(query, caller, driving_facet(query), DEFAULT_PUBLIC_SHARDS))
    # Two timelines (one user's lists) merge entry by entry: at most one chunk, a sixth of a
    # page, is read and not returned. The public shards are read in rounds instead, a Query
    # per timeline, so that a page costs a few Queries rather than one per entry (each costs at
    # least half a read unit, as much as 25 entries): a round reads each timeline's share of
    # the page and one more, then each catches up to where the page ends. What a round reads
    # past the page is read for nothing; most of all a sparse timeline's (the caller's few
    # private images), up to half again as many entries as images.
    bound = 1.2 if timelines <= 2 else 1.5
    assert reads.scanned / len(returned) <= bound, (reads.scanned, len(returned), reads.calls)
    if timelines > 2:
        # About one round and one catch-up a page: two Queries a timeline.
        assert reads.calls["Query"] / len(reads.per_request) <= 2 * timelines, reads.calls


@pytest.mark.parametrize("name", list(BUDGETED))
def test_no_list_request_reads_more_than_its_budget_and_a_short_page_goes_on(
    stored: tuple[DynamoDbImageRepository, list[Image]], name: str
) -> None:
    repository, images = stored
    query = BUDGETED[name]
    reads = Reads()

    paged = read_pages(repository, query, "alice", reads, pages=BUDGETED_REQUESTS)

    # Every match up to where the last request read is returned, in order.
    expected = matching(images, query, "alice", up_to=paged.after)
    assert [image.image_id for image in paged.images] == [image.image_id for image in expected]
    assert "Scan" not in reads.calls
    assert max(reads.per_request) <= read_budget(PAGE + 1), reads.per_request


def test_a_title_no_image_has_reads_no_entry(
    stored: tuple[DynamoDbImageRepository, list[Image]],
) -> None:
    repository, _ = stored
    reads = Reads()

    assert read_pages(repository, ListQuery(title_prefix="qqq"), "alice", reads).images == []
    assert reads.scanned == 0
    assert reads.per_request == [0]
