"""Reading a list: the timelines a query reads, each a partition of an index read in list
order a few entries at a time, merged in that order."""

from __future__ import annotations

import functools
from collections import deque
from typing import TYPE_CHECKING

import attrs

from adapters.dynamodb.items import (
    OWNER_INDEX,
    PUBLIC_INDEX,
    Item,
    owner_timeline,
    public_timeline,
)
from imagecore.model import Visibility
from imagecore.query import ListQuery

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        QueryInputTypeDef,
    )


MAX_SPARSITY = 64
MAX_BATCH = 200


def timeline_branches(query: ListQuery, caller: str) -> list[tuple[str, str]]:
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


class Timeline:
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
                self._sparsity = min(self._sparsity * 2, MAX_SPARSITY)
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


class MergedTimelines:
    """Timelines that never share an entry, read together as one list in order.

    Reading each timeline a page at a time would read up to a page too many from all but one.
    Instead one timeline reads a small chunk, and each other then reads only up to where that
    chunk ended, as much as the page still needs: at most one chunk is read and not returned.
    """

    def __init__(self, timelines: list[Timeline], *, descending: bool, chunk: int) -> None:
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

    def _compare(self, first: Timeline, second: Timeline) -> int:
        """Least far along first (nothing read is least of all); then the fewest taken."""
        a, b = first.frontier, second.frontier
        if a != b:
            if a is None or (b is not None and _ahead(a, b, self._descending)):
                return -1
            return 1
        return first.taken - second.taken
