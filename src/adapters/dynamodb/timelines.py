"""Reading a list: the timelines a query reads, each a partition of an index read in list
order a few entries at a time, merged in that order."""

from __future__ import annotations

import functools
import math
from collections import deque
from typing import TYPE_CHECKING

import attrs

from adapters.dynamodb.items import (
    IMAGE_SK,
    OWNER_INDEX,
    PUBLIC_INDEX,
    TITLE_PREFIX_LENGTHS,
    Facet,
    Item,
    image_pk,
    kind_facet,
    owner_timeline,
    position_from,
    public_timeline,
    tag_facet,
    title_facet,
)
from imagecore.model import Visibility
from imagecore.query import ListQuery, fold_title

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        QueryInputTypeDef,
    )


MAX_SPARSITY = 64
MAX_BATCH = 200
# A round reads from each timeline its even share of what the page still misses, and this many
# more: one round then most often holds the page, and the catch-up reads exactly up to where it
# ends, about 8 Queries a page over 4 shards. A round of less than the share took 17 (more
# rounds, each a Query per shard); a Query costs at least half a read unit on its shard, so the
# number of Queries, more than the entries, bounds the pages a shard can serve (docs/capacity.md).
_ROUND_MARGIN = 1


def driving_facet(query: ListQuery) -> Facet | None:
    """The facet whose timelines a query reads: its first tag, else its title's first
    characters, else its content type; None to read the plain timelines. What it leaves out is
    filtered on the entries (content type, a longer title) or on the images (further tags)."""
    if query.tags:
        return tag_facet(query.tags[0])
    folded = fold_title(query.title_prefix) if query.title_prefix else ""
    if folded:
        return title_facet(folded, min(len(folded), TITLE_PREFIX_LENGTHS[-1]))
    if query.content_type is not None:
        return kind_facet(query.content_type)
    return None


def entry_sort_key(facet: Facet | None) -> str:
    """The sort key of the items a timeline of this facet holds."""
    return IMAGE_SK if facet is None else facet.sort_key


def timeline_branches(
    query: ListQuery, caller: str, facet: Facet | None, public_shards: int
) -> list[tuple[str, str]]:
    """The (index, partition) of each timeline that can hold a match: the caller's own private
    images, and the public ones: one user's, or everyone's, in every shard."""
    branches: list[tuple[str, str]] = []
    if query.user_id is None or query.user_id == caller:
        branches.append((OWNER_INDEX, owner_timeline(caller, Visibility.PRIVATE, facet)))
    if query.user_id is None:
        branches += [
            (PUBLIC_INDEX, public_timeline(shard, facet)) for shard in range(public_shards)
        ]
    else:
        branches.append((OWNER_INDEX, owner_timeline(query.user_id, Visibility.PUBLIC, facet)))
    return branches


class ReadBudget:
    """The index entries a list may still read (imagecore.query.read_budget)."""

    def __init__(self, entries: int) -> None:
        self.left = entries

    def spend(self, entries: int) -> None:
        self.left -= entries

    @property
    def spent(self) -> bool:
        return self.left <= 0


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
        after: str | None,
        sort_key: str,
        budget: ReadBudget,
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
        self._sort_key = sort_key
        self._start_key = None if after is None else self._key_at(after)
        self._budget = budget
        self.frontier: str | None = None
        self.exhausted = False
        self.buffer: deque[_Entry] = deque()
        self.taken = 0
        # Grows while a filter finds nothing, so a rare match costs few round trips.
        self._sparsity = 1

    def fetch(self, limit: int, until: str | None = None, *, cap: int | None = None) -> None:
        """Read up to ``limit`` more index entries (more while a filter rejects them, but never
        more than ``cap`` nor the list's budget), and none beyond ``until`` in list order."""
        low, high = self._lowest, self._highest
        if until is not None:
            if self._descending:
                low = until if low is None else max(low, until)
            else:
                high = until if high is None else min(high, until)
        evaluated = 0
        wanted = limit * self._sparsity if cap is None else min(limit * self._sparsity, cap)
        found_before = len(self.buffer)
        while evaluated < wanted and not self._budget.spent:
            if low is not None and high is not None and low > high:
                response_items: list[Item] = []
                last_key = None
                scanned = 0
            else:
                size = min(wanted - evaluated, self._budget.left)
                response = self._client.query(**self._query(size, low, high))
                response_items = response.get("Items", [])
                last_key = response.get("LastEvaluatedKey")
                scanned = response.get("ScannedCount", 0)
            evaluated += scanned
            self._budget.spend(scanned)
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
                    # The next read starts past ``until``, not at the last entry the filter
                    # kept: the entries it dropped on the way are not read again.
                    self._start_key = self._key_at(until)
                return
            self._start_key = dict(last_key)
            self.frontier = last_key["position"]["S"]

    def _key_at(self, position: str) -> Item:
        """The index key of the place ``position`` names, where a query resumes just past it: a
        key, not an item; the list's cursor, or another timeline's entry (timelines never share
        one)."""
        return {
            self._index: {"S": self._partition},
            "position": {"S": position},
            "pk": {"S": image_pk(position_from(position).image_id)},
            "sk": {"S": self._sort_key},
        }

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
    chunk ended, as much as the page still needs: at most about one chunk is read and not
    returned. Every read comes out of one budget, shared fairly, so each timeline is read
    before any is read twice and a spent budget still leaves a place to go on from.
    """

    def __init__(
        self, timelines: list[Timeline], *, descending: bool, chunk: int, budget: ReadBudget
    ) -> None:
        self._timelines = timelines
        self._descending = descending
        self._chunk = chunk
        self._budget = budget
        self._last_taken: str | None = None

    def take(self, wanted: int) -> list[_Entry]:
        """The next ``wanted`` entries in list order (fewer only at the end of the timelines or
        of the budget)."""
        taken: list[_Entry] = []
        while len(taken) < wanted:
            entry = self._pop_ready()
            if entry is not None:
                taken.append(entry)
                self._last_taken = entry.position
                continue
            if not self._read_more(wanted - len(taken)):
                break
        return taken

    def read_up_to(self) -> str | None:
        """Once ``take`` came back short: None if every timeline was read to its end and all
        of it taken; else the furthest place in list order such that every entry up to it has
        been taken, where the list goes on.

        ``take`` stops only when no entry is ready, so every entry still buffered lies beyond
        some unbuffered timeline's frontier: the least of those frontiers is the place, or the
        last entry taken while a timeline has not been read at all."""
        pending = [
            timeline for timeline in self._timelines if timeline.buffer or not timeline.exhausted
        ]
        if not pending:
            return None
        frontiers = [timeline.frontier for timeline in pending if not timeline.buffer]
        known = [frontier for frontier in frontiers if frontier is not None]
        if not known or len(known) < len(frontiers):
            return self._last_taken
        # The least far along. An entry is taken only when no frontier is before it, so this is
        # never before the last entry taken.
        return max(known) if self._descending else min(known)

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
        """Read from the idle timeline least far along; False when every timeline is read or
        the budget is spent."""
        if self._budget.spent:
            return False
        live = [timeline for timeline in self._timelines if not timeline.exhausted]
        idle = [timeline for timeline in live if not timeline.buffer]
        if not idle:
            return False
        # Each live timeline's fair share of what is left: none can starve the others.
        share = max(1, self._budget.left // len(live))
        if len(live) == 1:
            idle[0].fetch(wanted, cap=share)
            return True
        if len(live) > 2:
            self._read_round(live, idle, wanted, share)
            return True
        reader = min(idle, key=functools.cmp_to_key(self._compare))
        others = [timeline for timeline in live if timeline is not reader]
        if all(timeline.frontier is not None for timeline in others):
            nearest = min(others, key=functools.cmp_to_key(self._compare)).frontier
            assert nearest is not None
            if reader.frontier is None or _ahead(reader.frontier, nearest, self._descending):
                # Everything up to the others' frontier can be returned as soon as it is read.
                reader.fetch(wanted, until=nearest, cap=share)
                return True
        # All level: the one that has given the fewest entries reads a chunk, likely far ahead,
        # and the others then catch up to it.
        reader.fetch(self._chunk, cap=share)
        return True

    def _read_round(
        self, live: list[Timeline], idle: list[Timeline], wanted: int, share: int
    ) -> None:
        """Many timelines (a sharded public list) are read in rounds, a query each, rather
        than one frontier at a time, which would cost a query for about every entry.

        While fewer entries are in hand than wanted, each idle timeline reads its part of what
        is missing. Then the entries in hand say where the page ends at the latest: each idle
        timeline behind that place reads up to it and no further."""
        held = sorted(
            (entry.position for timeline in live for entry in timeline.buffer),
            reverse=self._descending,
        )
        if len(held) < wanted:
            # Not enough in hand to know where the page ends (one sparse timeline may hold a
            # few entries far ahead): each idle timeline reads its part of what is missing.
            part = math.ceil((wanted - len(held)) / len(live)) + _ROUND_MARGIN
            for timeline in idle:
                timeline.fetch(part, cap=share)
            return
        end = held[wanted - 1]
        for timeline in idle:
            if timeline.frontier is None or _ahead(timeline.frontier, end, self._descending):
                timeline.fetch(wanted, until=end, cap=share)
        # The page ends at ``end`` or before: every idle timeline now reaches it.

    def _compare(self, first: Timeline, second: Timeline) -> int:
        """Least far along first (nothing read is least of all); then the fewest taken."""
        a, b = first.frontier, second.frontier
        if a != b:
            if a is None or (b is not None and _ahead(a, b, self._descending)):
                return -1
            return 1
        return first.taken - second.taken
