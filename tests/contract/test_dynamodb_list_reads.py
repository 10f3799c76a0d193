"""The DynamoDB repository's lists beyond the contract: each is a Query that reads about one index
entry per image returned, whatever the table's size.

Counts come from DynamoDB's own answers (ScannedCount and Count of each Query), seen through
botocore's event hooks, on 5,000 images in moto in-process.
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
from imagecore.model import Image, Position, SortOrder, Visibility
from imagecore.query import ListQuery
from tests.support.fake_aws import fresh_resources, in_process_aws
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

    def on_call(self, model: Any, **_: Any) -> None:
        self.calls[model.name] = self.calls.get(model.name, 0) + 1

    def on_query(self, parsed: dict[str, Any], **_: Any) -> None:
        self.scanned += parsed.get("ScannedCount", 0)
        self.counted += parsed.get("Count", 0)


def seed(repository: DynamoDbImageRepository, table: str) -> list[Image]:
    """5,000 images: alice owns a fifth, half of everything is public, a tenth is tagged
    "beach", one a minute through the year. Written with BatchWriteItem, as exactly the items
    ``add`` writes, since moto copies the whole table on every transaction."""
    rng = random.Random(7)
    users = ["alice", *(f"user{n}" for n in range(20))]
    images = [
        build_image(
            n,
            user_id="alice" if rng.random() < 0.2 else rng.choice(users[1:]),
            visibility=Visibility.PUBLIC if rng.random() < 0.5 else Visibility.PRIVATE,
            tags=("beach", "sea") if rng.random() < 0.1 else ("city",),
            created_at=START + timedelta(minutes=n),
        )
        for n in range(STORED)
    ]
    items = [item for image in images for item in items_of(image)]
    client = repository.client
    for start in range(0, len(items), 25):
        batch = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        unprocessed: Any = {table: batch}
        while unprocessed:
            unprocessed = client.batch_write_item(RequestItems=unprocessed).get("UnprocessedItems")
    return images


@pytest.fixture(scope="module")
def stored() -> Iterator[tuple[DynamoDbImageRepository, list[Image]]]:
    with in_process_aws() as clients, fresh_resources(clients) as (table, _):
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
}


def read_pages(
    repository: DynamoDbImageRepository, query: ListQuery, caller: str, reads: Reads
) -> list[Image]:
    """PAGES pages of PAGE, as the service asks for them (one more, to know if there is a next)."""
    client = repository.client
    client.meta.events.register("after-call.dynamodb.Query", reads.on_query)
    client.meta.events.register("before-call.dynamodb.*", reads.on_call)
    try:
        returned: list[Image] = []
        after: Position | None = None
        for _ in range(PAGES):
            found = list(repository.list(query, caller, after, PAGE + 1))
            page = found[:PAGE]
            returned += page
            if len(found) <= PAGE:
                break
            after = page[-1].position
        return returned
    finally:
        client.meta.events.unregister("after-call.dynamodb.Query", reads.on_query)
        client.meta.events.unregister("before-call.dynamodb.*", reads.on_call)


@pytest.mark.parametrize("order", list(SortOrder))
@pytest.mark.parametrize("name", list(QUERIES))
def test_lists_are_queries_reading_at_most_1_2_index_entries_per_image_returned(
    stored: tuple[DynamoDbImageRepository, list[Image]], name: str, order: SortOrder
) -> None:
    repository, images = stored
    query, caller = QUERIES[name]
    query = attrs.evolve(query, order=order)
    reads = Reads()

    returned = read_pages(repository, query, caller, reads)

    expected = sorted(
        (image for image in images if query.matches(image, caller)),
        key=lambda image: (image.created_at, image.image_id),
        reverse=order is SortOrder.DESC,
    )[: PAGE * PAGES]
    assert [image.image_id for image in returned] == [image.image_id for image in expected]
    assert len(returned) >= 100, "the filter should match several pages"
    assert "Scan" not in reads.calls
    assert reads.counted == reads.scanned, "no entry read was filtered out"
    assert reads.scanned / len(returned) <= 1.2, (reads.scanned, len(returned), reads.calls)
