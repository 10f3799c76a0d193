"""Image metadata in one DynamoDB table, where every list is a Query, never a Scan.

The table's keys and indexes are written down once, in terraform/modules/metadata/main.tf.

Items:

- the image: ``pk = IMG#<id>``, ``sk = META``, with the image's fields as attributes (numbers
  come back as ``Decimal`` and are turned back into ints here; metadata is kept as JSON text, so
  that ``1.0`` stays a float and any float fits, whatever DynamoDB's number range);
- one edge per tag of an active image: ``pk = IMG#<id>``, ``sk = TAG#<tag>``.

Both carry ``position = <created_at>#<id>``, the order of every list, and, while the image is
active, the timelines it is on: ``owner_timeline`` (its owner's images of one visibility, for
the image item; the same for one tag, for an edge) and, when public, ``public_timeline`` (all
public images; all public images with one tag). A list reads one or two timelines from the two
indexes in position order (the caller's private images and the public ones never overlap),
merges them, and takes the images themselves with a strongly consistent BatchGetItem, checking
each against the query: an index entry a moment stale can never show what the image no longer
allows.
"""

from __future__ import annotations

import functools
import json
import random
import time
import uuid
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from adapters.errors import MissingResource
from imagecore.convert import format_instant, image_from_record, image_to_record
from imagecore.errors import AlreadyExists, VersionConflict
from imagecore.model import Image, ImageState, Position, SortOrder, Visibility
from imagecore.query import ListQuery, fold_title

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        QueryInputTypeDef,
        TransactWriteItemTypeDef,
    )

Item = dict[str, "AttributeValueTypeDef"]

OWNER_INDEX = "owner_timeline"
PUBLIC_INDEX = "public_timeline"
CONTENT_INDEX = "content"
IMAGE_SK = "META"
_TAG_SK = "TAG#"
_INT_FIELDS = frozenset(field.name for field in attrs.fields(Image) if field.type in (int, "int"))
_IMAGE_FIELDS = tuple(field.name for field in attrs.fields(Image))
# A transaction that meets another one on the same items is cancelled; it is tried again after
# a short, growing, jittered pause, this many times in all.
_TRANSACTION_ATTEMPTS = 6
_BATCH_GET_MAX_KEYS = 100
_BATCH_GET_ATTEMPTS = 8
_MAX_SPARSITY = 64
_MAX_BATCH = 200

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def image_pk(image_id: str) -> str:
    return f"IMG#{image_id}"


def position_of(image_id: str, created_at: datetime) -> str:
    """Fixed-width instant, then the id: text order is list order."""
    return f"{format_instant(created_at)}#{image_id}"


def owner_timeline(user_id: str, visibility: Visibility, tag: str | None = None) -> str:
    # User ids cannot hold "#", so the tag, which can, comes last and nothing is ambiguous.
    base = f"O#{user_id}#{visibility.value}"
    return base if tag is None else f"{base}#T#{tag}"


def content_key(user_id: str, sha256: str) -> str:
    """The key of the index that finds a user's active images by the hash of their bytes."""
    return f"C#{user_id}#{sha256}"


def public_timeline(tag: str | None = None) -> str:
    return "P" if tag is None else f"P#T#{tag}"


def _serialize(values: Mapping[str, Any]) -> Item:
    return {name: _serializer.serialize(value) for name, value in values.items()}


def _image_item(image: Image) -> Item:
    record = image_to_record(image)
    record["metadata"] = json.dumps(record["metadata"], ensure_ascii=False, separators=(",", ":"))
    values: dict[str, Any] = {
        "pk": image_pk(image.image_id),
        "sk": IMAGE_SK,
        "position": position_of(image.image_id, image.created_at),
        "title_folded": fold_title(image.title),
        **record,
    }
    if image.is_active:
        values["content_key"] = content_key(image.user_id, image.sha256)
        values["owner_timeline"] = owner_timeline(image.user_id, image.visibility)
        if image.visibility is Visibility.PUBLIC:
            values["public_timeline"] = public_timeline()
    return _serialize(values)


def _edge_item(image: Image, tag: str) -> Item:
    values: dict[str, Any] = {
        "pk": image_pk(image.image_id),
        "sk": _TAG_SK + tag,
        "position": position_of(image.image_id, image.created_at),
        "owner_timeline": owner_timeline(image.user_id, image.visibility, tag),
        # Never changes after upload, so an edge can carry it for the content_type filter.
        "content_type": image.content_type,
    }
    if image.visibility is Visibility.PUBLIC:
        values["public_timeline"] = public_timeline(tag)
    return _serialize(values)


def items_of(image: Image) -> list[Item]:
    """Every item an image is stored as: the image first, then one edge per tag if active."""
    edges = [_edge_item(image, tag) for tag in dict.fromkeys(image.tags)] if image.is_active else []
    return [_image_item(image), *edges]


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _image_from_item(item: Mapping[str, Any]) -> Image:
    values = {name: _deserializer.deserialize(value) for name, value in item.items()}
    record = {name: _plain(values[name]) for name in _IMAGE_FIELDS if name in values}
    for name in _INT_FIELDS & record.keys():
        record[name] = int(record[name])
    record["metadata"] = json.loads(record["metadata"])
    return image_from_record(record)


def _image_key(image_id: str) -> Item:
    return {"pk": {"S": image_pk(image_id)}, "sk": {"S": IMAGE_SK}}


def _cancellation_codes(error: ClientError) -> list[str]:
    reasons = error.response.get("CancellationReasons", [])
    return [reason.get("Code", "") for reason in reasons]


def _pause(attempt: int) -> None:
    time.sleep(random.uniform(0, 0.02 * 2**attempt))  # noqa: S311 - jitter, not a secret


class DynamoDbImageRepository:
    """The ``ImageRepository`` port on one DynamoDB table."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table
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
        image_item, *edges = items_of(image)
        writes: list[TransactWriteItemTypeDef] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": image_item,
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
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
                *self._edge_changes(stored, image),
            ]
            if self._commit(writes, VersionConflict(image.image_id)):
                return
            _pause(attempt)
        raise VersionConflict(image.image_id)

    def _commit(self, writes: list[TransactWriteItemTypeDef], refused: Exception) -> bool:
        """Write all or nothing. False if another transaction on the same items got in the way
        (the caller tries again); ``refused`` is raised if the first write's condition fails."""
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
            if "TransactionConflict" in codes:
                return False
            raise
        return True

    def _conditional_put(self, image: Image, expected_version: int) -> TransactWriteItemTypeDef:
        return {
            "Put": {
                "TableName": self._table,
                "Item": _image_item(image),
                "ConditionExpression": "#version = :expected",
                "ExpressionAttributeNames": {"#version": "version"},
                "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
            }
        }

    def _edge_changes(self, stored: Image, image: Image) -> list[TransactWriteItemTypeDef]:
        """The tag edges to write and delete: only the difference, unless the timelines every
        edge is on have changed (visibility), when each edge that stays is written again."""
        before = set(stored.tags) if stored.is_active else set()
        after = dict.fromkeys(image.tags) if image.is_active else {}
        moved = stored.visibility is not image.visibility
        changes: list[TransactWriteItemTypeDef] = [
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": {"pk": {"S": image_pk(image.image_id)}, "sk": {"S": _TAG_SK + tag}},
                }
            }
            for tag in sorted(before - after.keys())
        ]
        changes += [
            self._put(_edge_item(image, tag)) for tag in after if moved or tag not in before
        ]
        return changes

    def _put(self, item: Item) -> TransactWriteItemTypeDef:
        return {"Put": {"TableName": self._table, "Item": item}}

    # --- reads ----------------------------------------------------------------------------------

    def get(self, image_id: str) -> Image | None:
        return self._get_item(image_id)

    def _get_item(self, image_id: str) -> Image | None:
        response = self._client.get_item(
            TableName=self._table, Key=_image_key(image_id), ConsistentRead=True
        )
        item = response.get("Item")
        return _image_from_item(item) if item is not None else None

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
        # A Scan, the one in this adapter: reconciliation reads everything anyway (it lists every
        # blob too), and tombstones and upload slots are short-lived, so an index for them would
        # mostly be empty writes on the way to another state.
        pages = self._client.get_paginator("scan").paginate(
            TableName=self._table,
            ConsistentRead=True,
            FilterExpression="sk = :image AND #state IN (:deleting, :uploading)",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":image": {"S": IMAGE_SK},
                ":deleting": {"S": ImageState.DELETING.value},
                ":uploading": {"S": ImageState.UPLOADING.value},
            },
        )
        for page in pages:
            for item in page.get("Items", []):
                yield _image_from_item(item)

    def list(
        self, query: ListQuery, caller: str, after: Position | None, limit: int
    ) -> Sequence[Image]:
        if limit <= 0:
            return []
        merged = _MergedTimelines(
            [
                self._timeline(query, index, partition, after)
                for index, partition in _branches(query, caller)
            ],
            descending=query.order is SortOrder.DESC,
            # At most one chunk is read and not returned. A sixth of the page: with the one
            # entry the service reads past a page to know whether there is a next one, a page
            # of 10 or more reads at most 1.2 index entries per image it returns, when no filter
            # rejects any.
            chunk=max(1, limit // 6),
        )
        found: list[Image] = []
        # Filters the index cannot apply (further tags; a title within a tag) are checked on
        # the images; while they reject everything, take more at a time.
        scale = 1
        while len(found) < limit:
            entries = merged.take(min((limit - len(found)) * scale, _MAX_BATCH))
            if not entries:
                break
            images = self._batch_get([entry.image_id for entry in entries])
            before = len(found)
            for entry in entries:
                image = images.get(entry.image_id)
                if image is not None and query.matches(image, caller) and len(found) < limit:
                    found.append(image)
            if len(found) == before:
                scale = min(scale * 2, _MAX_SPARSITY)
        return found

    def _timeline(
        self, query: ListQuery, index: str, partition: str, after: Position | None
    ) -> _Timeline:
        tag = query.tags[0] if query.tags else None
        filters: list[str] = []
        values: dict[str, AttributeValueTypeDef] = {}
        if query.content_type is not None:
            filters.append("content_type = :content_type")
            values[":content_type"] = {"S": query.content_type}
        if query.title_prefix and tag is None:  # edges do not carry the title
            filters.append("begins_with(title_folded, :title)")
            values[":title"] = {"S": fold_title(query.title_prefix)}
        start_key: Item | None = None
        if after is not None:
            # A key, not an item: the query resumes just past this place in the index.
            start_key = {
                index: {"S": partition},
                "position": {"S": position_of(after.image_id, after.created_at)},
                "pk": {"S": image_pk(after.image_id)},
                "sk": {"S": IMAGE_SK if tag is None else _TAG_SK + tag},
            }
        return _Timeline(
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
            start_key=start_key,
        )

    def _batch_get(self, image_ids: Iterable[str]) -> dict[str, Image]:
        wanted = list(dict.fromkeys(image_ids))
        images: dict[str, Image] = {}
        for start in range(0, len(wanted), _BATCH_GET_MAX_KEYS):
            keys = [
                _image_key(image_id) for image_id in wanted[start : start + _BATCH_GET_MAX_KEYS]
            ]
            request: dict[str, Any] = {self._table: {"Keys": keys, "ConsistentRead": True}}
            for attempt in range(_BATCH_GET_ATTEMPTS):
                response = self._client.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self._table, []):
                    image = _image_from_item(item)
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


def _branches(query: ListQuery, caller: str) -> list[tuple[str, str]]:
    """The (index, partition) of each timeline that can hold a match: the caller's own private
    images, and the public ones (everyone's, or one user's)."""
    tag = query.tags[0] if query.tags else None
    branches: list[tuple[str, str]] = []
    if query.user_id is None or query.user_id == caller:
        branches.append((OWNER_INDEX, owner_timeline(caller, Visibility.PRIVATE, tag)))
    if query.user_id is None:
        branches.append((PUBLIC_INDEX, public_timeline(tag)))
    else:
        branches.append((OWNER_INDEX, owner_timeline(query.user_id, Visibility.PUBLIC, tag)))
    return branches


@attrs.frozen
class _Entry:
    position: str
    image_id: str


def _ahead(first: str, second: str, descending: bool) -> bool:
    """Whether ``first`` comes before ``second`` in the list order."""
    return first > second if descending else first < second


class _Timeline:
    """One partition of an index, read in list order a few entries at a time.

    ``frontier`` is how far it has been read: every entry before it in list order has been read.
    """

    def __init__(
        self,
        *,
        client: DynamoDBClient,
        table: str,
        index: str,
        partition: str,
        descending: bool,
        lowest: str | None,
        highest: str | None,
        filter_expression: str | None,
        filter_values: dict[str, AttributeValueTypeDef],
        start_key: Item | None,
    ) -> None:
        self._client = client
        self._table = table
        self._index = index
        self._partition = partition
        self._descending = descending
        self._lowest = lowest
        self._highest = highest
        self._filter = filter_expression
        self._filter_values = filter_values
        self._start_key = start_key
        self.frontier: str | None = None
        self.exhausted = False
        self.buffer: deque[_Entry] = deque()
        self.taken = 0
        # Grows while a filter finds nothing, so a rare match costs few round trips.
        self._sparsity = 1

    def fetch(self, limit: int, until: str | None = None) -> None:
        """Read up to ``limit`` more index entries, and none beyond ``until`` in list order."""
        low, high = self._lowest, self._highest
        if until is not None:
            if self._descending:
                low = until if low is None else max(low, until)
            else:
                high = until if high is None else min(high, until)
        evaluated = 0
        budget = limit * self._sparsity
        found_before = len(self.buffer)
        while evaluated < budget:
            if low is not None and high is not None and low > high:
                response_items: list[Item] = []
                last_key = None
                scanned = 0
            else:
                response = self._client.query(**self._query(budget - evaluated, low, high))
                response_items = response.get("Items", [])
                last_key = response.get("LastEvaluatedKey")
                scanned = response.get("ScannedCount", 0)
            evaluated += scanned
            for item in response_items:
                self.buffer.append(_Entry(item["position"]["S"], item["pk"]["S"][4:]))
                self._start_key = {
                    name: item[name] for name in (self._index, "position", "pk", "sk")
                }
            if self._filter is not None and len(self.buffer) == found_before:
                self._sparsity = min(self._sparsity * 2, _MAX_SPARSITY)
            if last_key is None:
                # Nothing more before ``until`` (or at all): the frontier moves to it.
                if until is None:
                    self.exhausted = True
                else:
                    self.frontier = until
                return
            self._start_key = dict(last_key)
            self.frontier = last_key["position"]["S"]

    def _query(self, limit: int, low: str | None, high: str | None) -> QueryInputTypeDef:
        names = {"#partition": self._index}
        values: dict[str, AttributeValueTypeDef] = {":partition": {"S": self._partition}}
        condition = "#partition = :partition"
        if low is not None or high is not None:
            names["#position"] = "position"  # a reserved word in DynamoDB expressions
        if low is not None and high is not None:
            condition += " AND #position BETWEEN :low AND :high"
            values |= {":low": {"S": low}, ":high": {"S": high}}
        elif low is not None:
            condition += " AND #position >= :low"
            values[":low"] = {"S": low}
        elif high is not None:
            condition += " AND #position <= :high"
            values[":high"] = {"S": high}
        request: QueryInputTypeDef = {
            "TableName": self._table,
            "IndexName": self._index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {**values, **self._filter_values},
            "ScanIndexForward": not self._descending,
            "Limit": limit,
        }
        if self._filter is not None:
            request["FilterExpression"] = self._filter
        if self._start_key is not None:
            request["ExclusiveStartKey"] = self._start_key
        return request


class _MergedTimelines:
    """Timelines that never share an entry, read together as one list in order.

    Reading each timeline a page at a time would read up to a page too many from all but one.
    Instead one timeline reads a small chunk, and each other then reads only up to where that
    chunk ended, as much as the page still needs: at most one chunk is read and not returned.
    """

    def __init__(self, timelines: list[_Timeline], *, descending: bool, chunk: int) -> None:
        self._timelines = timelines
        self._descending = descending
        self._chunk = chunk

    def take(self, wanted: int) -> list[_Entry]:
        """The next ``wanted`` entries in list order (fewer only at the end)."""
        taken: list[_Entry] = []
        while len(taken) < wanted:
            entry = self._pop_ready()
            if entry is not None:
                taken.append(entry)
                continue
            if not self._read_more(wanted - len(taken)):
                break
        return taken

    def _pop_ready(self) -> _Entry | None:
        """The first buffered entry, if no timeline can still hold one before it."""
        holders = [timeline for timeline in self._timelines if timeline.buffer]
        if not holders:
            return None
        first = holders[0]
        for timeline in holders[1:]:
            if _ahead(timeline.buffer[0].position, first.buffer[0].position, self._descending):
                first = timeline
        head = first.buffer[0].position
        for timeline in self._timelines:
            if timeline is first or timeline.exhausted or timeline.buffer:
                continue
            if timeline.frontier is None or _ahead(timeline.frontier, head, self._descending):
                return None
        first.taken += 1
        return first.buffer.popleft()

    def _read_more(self, wanted: int) -> bool:
        """Read from the idle timeline least far along; False when every timeline is read."""
        live = [timeline for timeline in self._timelines if not timeline.exhausted]
        idle = [timeline for timeline in live if not timeline.buffer]
        if not idle:
            return False
        if len(live) == 1:
            idle[0].fetch(wanted)
            return True
        reader = min(idle, key=functools.cmp_to_key(self._compare))
        others = [timeline for timeline in live if timeline is not reader]
        if all(timeline.frontier is not None for timeline in others):
            nearest = min(others, key=functools.cmp_to_key(self._compare)).frontier
            assert nearest is not None
            if reader.frontier is None or _ahead(reader.frontier, nearest, self._descending):
                # Everything up to the others' frontier can be returned as soon as it is read.
                reader.fetch(wanted, until=nearest)
                return True
        # All level: the one that has given the fewest entries reads a chunk, likely far ahead,
        # and the others then catch up to it.
        reader.fetch(self._chunk)
        return True

    def _compare(self, first: _Timeline, second: _Timeline) -> int:
        """Least far along first (nothing read is least of all); then the fewest taken."""
        a, b = first.frontier, second.frontier
        if a != b:
            if a is None or (b is not None and _ahead(a, b, self._descending)):
                return -1
            return 1
        return first.taken - second.taken
