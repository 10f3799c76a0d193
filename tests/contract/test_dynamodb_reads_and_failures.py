"""The DynamoDB repository's promises beyond the contract: lists are Queries that read about one
index entry per image returned, whatever the table's size, and failures are retried or reported
as the use cases expect.

Counts come from DynamoDB's own answers (ScannedCount and Count of each Query), seen through
botocore's event hooks. Failures are injected by a hook in front of a moto server.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from adapters.dynamodb import DynamoDbImageRepository, items_of
from imagecore.errors import VersionConflict
from imagecore.model import Image, Position, SortOrder, Visibility
from imagecore.query import ListQuery
from tests.aws import fresh_resources, in_process_aws, moto_server
from tests.contract.conftest import build_image

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


# --- failures -------------------------------------------------------------------------------------


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body

    def read(self, *_: Any) -> bytes:
        return self._body


def failing(operation: str, times: int, status: int, body: dict[str, Any]) -> Any:
    """A botocore hook that answers the first ``times`` calls of ``operation`` with an error,
    as DynamoDB would, before the request reaches moto; the rest go through."""
    attempts = itertools.count(1)
    seen: list[int] = []

    def hook(request: Any, **_: Any) -> AWSResponse | None:
        attempt = next(attempts)
        seen.append(attempt)
        if attempt > times:
            return None
        raw = json.dumps(body).encode()
        return AWSResponse(
            request.url, status, {"Content-Type": "application/x-amz-json-1.0"}, _Raw(raw)
        )

    hook.seen = seen  # type: ignore[attr-defined]
    return hook


@pytest.fixture
def repository() -> Iterator[DynamoDbImageRepository]:
    # On moto server: in-process moto answers from a hook of its own that runs whatever an
    # earlier hook answered, so a failure injected in front of it would still be applied.
    clients = moto_server().clients()
    with fresh_resources(clients) as (table, _):
        yield DynamoDbImageRepository(clients.dynamodb, table)


THROTTLED = {
    "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
    "message": "The level of configured provisioned throughput for the table was exceeded.",
}
INTERNAL = {"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError", "message": "oops"}


@pytest.mark.parametrize(
    ("body", "status"), [(THROTTLED, 400), (INTERNAL, 500)], ids=["throttled", "internal-error"]
)
def test_throttling_and_transient_errors_are_retried_with_backoff(
    repository: DynamoDbImageRepository, body: dict[str, Any], status: int
) -> None:
    image = build_image(1)
    repository.add(image)
    hook = failing("GetItem", 3, status, body)
    repository.client.meta.events.register_first("before-send.dynamodb.GetItem", hook)

    assert repository.get(image.image_id) == image
    assert hook.seen == [1, 2, 3, 4]


def test_an_error_that_outlasts_the_retries_is_raised(
    repository: DynamoDbImageRepository,
) -> None:
    hook = failing("GetItem", 100, 400, THROTTLED)
    repository.client.meta.events.register_first("before-send.dynamodb.GetItem", hook)

    with pytest.raises(ClientError, match="ProvisionedThroughputExceeded"):
        repository.get(build_image(1).image_id)
    assert len(hook.seen) == 5, "botocore's standard mode: five attempts in all"


def conflict(count: int) -> dict[str, Any]:
    return {
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "message": "Transaction cancelled, please refer cancellation reasons for specific reasons",
        "CancellationReasons": [{"Code": "TransactionConflict"}, *[{"Code": "None"}] * count],
    }


def test_a_transaction_conflict_is_retried_for_an_update(
    repository: DynamoDbImageRepository,
) -> None:
    image = build_image(1, tags=("a", "b"))
    repository.add(image)
    hook = failing("TransactWriteItems", 2, 400, conflict(2))
    repository.client.meta.events.register_first("before-send.dynamodb.TransactWriteItems", hook)
    updated = build_image(1, tags=("b", "c"), title="new", version=2)

    repository.replace(updated, expected_version=1)

    assert repository.get(image.image_id) == updated
    assert len(hook.seen) == 3


def test_a_transaction_conflict_is_retried_for_an_upload(
    repository: DynamoDbImageRepository,
) -> None:
    image = build_image(1, tags=("a",))
    hook = failing("TransactWriteItems", 1, 400, conflict(1))
    repository.client.meta.events.register_first("before-send.dynamodb.TransactWriteItems", hook)

    repository.add(image)

    assert repository.get(image.image_id) == image


def test_a_failed_version_condition_is_a_version_conflict_and_changes_nothing(
    repository: DynamoDbImageRepository,
) -> None:
    image = build_image(1, tags=("a",))
    repository.add(image)
    repository.replace(build_image(1, tags=("a",), title="first", version=2), expected_version=1)

    with pytest.raises(VersionConflict):
        repository.replace(build_image(1, tags=("z",), version=2), expected_version=1)

    assert repository.get(image.image_id).title == "first"  # type: ignore[union-attr]
    assert [
        found.image_id for found in repository.list(ListQuery(tags=("z",)), "alice", None, 5)
    ] == []
