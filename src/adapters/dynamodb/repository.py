"""The ``ImageRepository`` port on one DynamoDB table."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from adapters.dynamodb.items import (
    CONTENT_INDEX,
    DEFAULT_PUBLIC_SHARDS,
    IMAGE_SK,
    Facet,
    Item,
    claim_holder,
    claim_item,
    claim_key,
    content_key,
    edges_of,
    image_from_item,
    image_item,
    image_key,
    image_pk,
    items_of,
    kind_facet,
    position_from,
    position_of,
)
from adapters.dynamodb.timelines import (
    MAX_BATCH,
    MAX_SPARSITY,
    MergedTimelines,
    ReadBudget,
    Timeline,
    driving_facet,
    entry_sort_key,
    timeline_branches,
)
from adapters.errors import MissingResource
from imagecore.convert import format_instant
from imagecore.errors import AlreadyExists, DuplicateContent, VersionConflict
from imagecore.model import Image, ImageState, Position, SortOrder, ThumbnailStatus
from imagecore.query import Listed, ListQuery, fold_title, read_budget

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        TransactWriteItemTypeDef,
    )


# A transaction that meets another one on the same items is cancelled; it is tried again after
# a short, growing, jittered pause, this many times in all.
_TRANSACTION_ATTEMPTS = 6
_BATCH_GET_MAX_KEYS = 100
_BATCH_GET_ATTEMPTS = 8


def _cancellation_codes(error: ClientError) -> list[str]:
    reasons = error.response.get("CancellationReasons", [])
    return [reason.get("Code", "") for reason in reasons]


def _claim_holder(error: ClientError) -> str | None:
    """The image holding the content claim whose write ``error`` refused, if one was refused:
    only a claim's write asks for the item it found."""
    for reason in error.response.get("CancellationReasons", []):
        found = reason.get("Item")
        if reason.get("Code") == "ConditionalCheckFailed" and found is not None:
            return claim_holder(found)
    return None


def _pause(attempt: int) -> None:
    time.sleep(random.uniform(0, 0.02 * 2**attempt))  # noqa: S311 - jitter, not a secret


class DynamoDbImageRepository:
    """The ``ImageRepository`` port on one DynamoDB table."""

    def __init__(
        self, client: DynamoDBClient, table: str, public_shards: int = DEFAULT_PUBLIC_SHARDS
    ) -> None:
        if public_shards < 1:
            raise ValueError("public_shards must be at least 1")
        self._client = client
        self._table = table
        # Public images are spread over this many timelines per facet. Only ever raise it: an
        # image stays on the shard its id chose, and the reads cover shards below the count.
        self._public_shards = public_shards
        try:
            client.describe_table(TableName=table)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            missing = code == "ResourceNotFoundException"
            raise MissingResource(
                f"the DynamoDB table {table!r} (IMAGECORE_TABLE) "
                + ("does not exist" if missing else f"cannot be used: {exc}")
            ) from None
        except BotoCoreError as exc:
            raise MissingResource(f"cannot reach the DynamoDB table {table!r}: {exc}") from None

    @property
    def client(self) -> DynamoDBClient:
        return self._client

    # --- writes ---------------------------------------------------------------------------------

    def add(self, image: Image) -> None:
        image_item, *edges = items_of(image, self._public_shards)
        writes: list[TransactWriteItemTypeDef] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": image_item,
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            *self._claim_changes(None, image),
            *(self._put(edge) for edge in edges),
        ]
        for attempt in range(_TRANSACTION_ATTEMPTS):
            if self._commit(writes, AlreadyExists(image.image_id)):
                return
            _pause(attempt)
        raise RuntimeError(f"DynamoDB kept cancelling the upload of {image.image_id}")

    def replace(self, image: Image, expected_version: int) -> None:
        for attempt in range(_TRANSACTION_ATTEMPTS):
            stored = self._get_item(image.image_id)
            if stored is None or stored.version != expected_version:
                raise VersionConflict(image.image_id)
            writes = [
                self._conditional_put(image, expected_version),
                *self._claim_changes(stored, image),
                *self._edge_changes(stored, image),
            ]
            if self._commit(writes, VersionConflict(image.image_id)):
                return
            _pause(attempt)
        raise VersionConflict(image.image_id)

    def _commit(self, writes: list[TransactWriteItemTypeDef], refused: Exception) -> bool:
        """Write all or nothing. False if another transaction on the same items got in the way
        (the caller tries again); ``refused`` is raised if the first write's condition fails,
        and DuplicateContent if a content claim's does."""
        try:
            # The token makes botocore's own retries of this call idempotent: a transaction that
            # succeeded but whose answer was lost is neither applied twice nor refused.
            self._client.transact_write_items(
                TransactItems=writes, ClientRequestToken=uuid.uuid4().hex
            )
        except ClientError as exc:
            codes = _cancellation_codes(exc)
            if codes and codes[0] == "ConditionalCheckFailed":
                raise refused from None
            holder = _claim_holder(exc)
            if holder is not None:
                raise DuplicateContent(holder) from None
            if "TransactionConflict" in codes:
                return False
            raise
        return True

    def _claim_changes(self, stored: Image | None, image: Image) -> list[TransactWriteItemTypeDef]:
        """The claim item to delete, and the one to write on the condition that no image holds
        it yet, when the claim the image holds changes (a tombstone releases it)."""
        held = claim_key(stored) if stored is not None and stored.holds_content_claim else None
        wanted = claim_key(image) if image.holds_content_claim else None
        if held == wanted:
            return []
        changes: list[TransactWriteItemTypeDef] = []
        if held is not None:
            changes.append({"Delete": {"TableName": self._table, "Key": held}})
        if wanted is not None:
            changes.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": claim_item(image),
                        "ConditionExpression": "attribute_not_exists(pk)",
                        # The holder comes back with the refusal: no read, no race with it.
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
            )
        return changes

    def _conditional_put(self, image: Image, expected_version: int) -> TransactWriteItemTypeDef:
        return {
            "Put": {
                "TableName": self._table,
                "Item": image_item(image, self._public_shards),
                "ConditionExpression": "#version = :expected",
                "ExpressionAttributeNames": {"#version": "version"},
                "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
            }
        }

    def _edge_changes(self, stored: Image, image: Image) -> list[TransactWriteItemTypeDef]:
        """The edges to delete and to write: only those that differ (a changed tag or title;
        every edge when the visibility moves the timelines they are on)."""
        before = edges_of(stored, self._public_shards)
        after = edges_of(image, self._public_shards)
        changes: list[TransactWriteItemTypeDef] = [
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": {"pk": {"S": image_pk(image.image_id)}, "sk": {"S": sort_key}},
                }
            }
            for sort_key in sorted(before.keys() - after.keys())
        ]
        changes += [self._put(item) for key, item in after.items() if before.get(key) != item]
        return changes

    def _put(self, item: Item) -> TransactWriteItemTypeDef:
        return {"Put": {"TableName": self._table, "Item": item}}

    # --- reads ----------------------------------------------------------------------------------

    def get(self, image_id: str) -> Image | None:
        return self._get_item(image_id)

    def _get_item(self, image_id: str) -> Image | None:
        response = self._client.get_item(
            TableName=self._table, Key=image_key(image_id), ConsistentRead=True
        )
        item = response.get("Item")
        return image_from_item(item) if item is not None else None

    def find_by_content(self, user_id: str, sha256: str) -> Image | None:
        response = self._client.query(
            TableName=self._table,
            IndexName=CONTENT_INDEX,
            KeyConditionExpression="content_key = :content",
            ExpressionAttributeValues={":content": {"S": content_key(user_id, sha256)}},
            Limit=1,
        )
        for key in response.get("Items", []):
            image = self._get_item(key["pk"]["S"].removeprefix("IMG#"))
            # The index lags the table: what it names may have been deleted since.
            if image is not None and image.is_active and image.sha256 == sha256:
                return image
        return None

    def unsettled(self) -> Iterator[Image]:
        # Scans, this and pending_thumbnails, the only ones in this adapter: reconciliation reads
        # everything anyway (it lists every blob too), and tombstones, upload slots and pending
        # thumbnails are short-lived, so an index for them would mostly be empty writes on the
        # way to another state.
        return self._scan(
            "sk = :image AND #state IN (:deleting, :uploading)",
            {"#state": "state"},
            {
                ":image": {"S": IMAGE_SK},
                ":deleting": {"S": ImageState.DELETING.value},
                ":uploading": {"S": ImageState.UPLOADING.value},
            },
        )

    def revision(self) -> None:
        """DynamoDB has no cheap change counter: every list is read afresh."""
        return

    def pending_thumbnails(self, created_before: datetime) -> Iterator[Image]:
        # created_at is stored fixed-width (format_instant), so text order is time order.
        return self._scan(
            "sk = :image AND #state = :active AND thumbnail_status = :pending"
            " AND created_at < :before",
            {"#state": "state"},
            {
                ":image": {"S": IMAGE_SK},
                ":active": {"S": ImageState.ACTIVE.value},
                ":pending": {"S": ThumbnailStatus.PENDING.value},
                ":before": {"S": format_instant(created_before)},
            },
        )

    def _scan(
        self, condition: str, names: dict[str, str], values: dict[str, AttributeValueTypeDef]
    ) -> Iterator[Image]:
        pages = self._client.get_paginator("scan").paginate(
            TableName=self._table,
            ConsistentRead=True,
            FilterExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
        for page in pages:
            for item in page.get("Items", []):
                yield image_from_item(item)

    def list(self, query: ListQuery, caller: str, after: Position | None, limit: int) -> Listed:
        if limit <= 0:
            return Listed([])
        facet = driving_facet(query)
        budget = ReadBudget(read_budget(limit))
        branches = timeline_branches(query, caller, facet, self._public_shards)
        merged = MergedTimelines(
            [
                self._timeline(query, facet, index, partition, after, budget)
                for index, partition in branches
            ],
            descending=query.order is SortOrder.DESC,
            # Two timelines: at most one chunk is read and not returned, a sixth of the page
            # (with the one entry the service reads past a page to know whether there is a next
            # one, a page of 10 or more reads at most 1.2 index entries per image it returns,
            # when no filter rejects any). More (the public shards) are read in rounds.
            chunk=max(1, limit // 6),
            budget=budget,
        )
        found: list[Image] = []
        # Filters the index cannot apply (further tags) are checked on the images; while they
        # reject everything, take more at a time.
        scale = 1
        while len(found) < limit:
            entries = merged.take(min((limit - len(found)) * scale, MAX_BATCH))
            if not entries:
                break
            images = self._batch_get([entry.image_id for entry in entries])
            before = len(found)
            for entry in entries:
                image = images.get(entry.image_id)
                if image is not None and query.matches(image, caller) and len(found) < limit:
                    found.append(image)
            if len(found) == before:
                scale = min(scale * 2, MAX_SPARSITY)
        if len(found) == limit:
            return Listed(found)
        place = merged.read_up_to()
        return Listed(found, None if place is None else position_from(place))

    def _timeline(
        self,
        query: ListQuery,
        facet: Facet | None,
        index: str,
        partition: str,
        after: Position | None,
        budget: ReadBudget,
    ) -> Timeline:
        filters: list[str] = []
        values: dict[str, AttributeValueTypeDef] = {}
        if query.content_type is not None and facet != kind_facet(query.content_type):
            filters.append("content_type = :content_type")
            values[":content_type"] = {"S": query.content_type}
        folded = fold_title(query.title_prefix) if query.title_prefix else ""
        if folded and (facet is None or facet.letter != "N" or facet.value != folded):
            filters.append("begins_with(title_folded, :title)")
            values[":title"] = {"S": folded}
        return Timeline(
            client=self._client,
            table=self._table,
            index=index,
            partition=partition,
            descending=query.order is SortOrder.DESC,
            lowest=format_instant(query.start_date) if query.start_date else None,
            # "$" sorts just above "#": every position of that instant is included.
            highest=format_instant(query.end_date) + "$" if query.end_date else None,
            filter_expression=" AND ".join(filters) or None,
            filter_values=values,
            after=None if after is None else position_of(after.image_id, after.created_at),
            sort_key=entry_sort_key(facet),
            budget=budget,
        )

    def _batch_get(self, image_ids: Iterable[str]) -> dict[str, Image]:
        wanted = list(dict.fromkeys(image_ids))
        images: dict[str, Image] = {}
        for start in range(0, len(wanted), _BATCH_GET_MAX_KEYS):
            keys = [image_key(image_id) for image_id in wanted[start : start + _BATCH_GET_MAX_KEYS]]
            request: dict[str, Any] = {self._table: {"Keys": keys, "ConsistentRead": True}}
            for attempt in range(_BATCH_GET_ATTEMPTS):
                response = self._client.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self._table, []):
                    image = image_from_item(item)
                    images[image.image_id] = image
                request = dict(response.get("UnprocessedKeys") or {})
                if not request:
                    break
                _pause(attempt)
            else:
                raise RuntimeError(
                    f"DynamoDB left keys of {self._table!r} unread after {_BATCH_GET_ATTEMPTS}"
                    " tries"
                )
        return images
