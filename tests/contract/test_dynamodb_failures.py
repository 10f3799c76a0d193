"""The DynamoDB repository's failures beyond the contract: throttling, transient errors and
transaction conflicts are retried, an error that outlasts the retries is raised, and a failed
version condition is a VersionConflict that changes nothing.

Failures are injected by a botocore hook in front of a moto server.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from adapters.dynamodb import DynamoDbImageRepository
from imagecore.errors import VersionConflict
from imagecore.query import ListQuery
from tests.support.fake_aws import fresh_resources, moto_server
from tests.support.numbered_images import build_image


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
        found.image_id for found in repository.list(ListQuery(tags=("z",)), "alice", None, 5).images
    ] == []
