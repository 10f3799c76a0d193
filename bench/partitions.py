"""Row 8: the write and read mix of many users against DynamoDB's per-partition limits.

DynamoDB serves at most 1,000 WCU/s and 3,000 RCU/s per partition, and it cannot split the
entries of one partition key value of an index whose sort key only grows (every timeline's is
``position``, created_at#id) across partitions: so the busiest partition key value of the table
and of each index bounds what the whole service can do, whatever the table's on-demand
capacity.

The replay runs the real repository (``adapters.dynamodb``) over ``MeteredDynamoDb``: a stand-in
for the DynamoDB client that keeps the items in dicts, maintains the indexes of the Terraform
definition (``terraform/modules/metadata``) and meters, per partition key value of the table and
of each index, the capacity each call consumes by DynamoDB's published rules:

- an item's size is the UTF-8 length of its attribute names and values (a number: 1 byte per
  two significant digits, plus 1; a list or map: 3 bytes, plus 1 per element);
- a write in a transaction costs 2 WCU per KB (rounded up) of the larger of the item before and
  after, on the item's partition key;
- an index entry holds the table's and the index's keys and the projected attributes; a write
  that adds, removes or changes one costs 1 WCU per KB of it on its index partition (2 writes
  when its keys change: the old one deleted, the new one put); index writes are not doubled by
  the transaction, and a write that changes nothing an index holds writes nothing to it;
- a strongly consistent read (GetItem, BatchGetItem) costs 1 RCU per 4 KB per item; a Query on
  an index (always eventually consistent) 0.5 RCU per 4 KB of the entries it evaluated, those a
  filter drops included.

Conditions are not evaluated: the replay never races. Run alone with
``python -m bench.partitions`` (prints the tables of docs/capacity.md), or as row family 8.
"""

from __future__ import annotations

import bisect
import functools
import math
import random
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import accumulate
from typing import Any

from adapters.aws_resources import find_metadata_module, table_definition
from adapters.dynamodb.items import DEFAULT_PUBLIC_SHARDS, Item, claim_item, items_of
from adapters.dynamodb.repository import DynamoDbImageRepository
from bench.common import REPOSITORY_ROOT, Row
from imagecore import validation
from imagecore.model import Image, ThumbnailStatus, Visibility
from imagecore.query import ListQuery

FAMILY = "8 capacity"
WCU_LIMIT = 1_000
RCU_LIMIT = 3_000
TABLE = "images"
BASE = "table"
"""The meter's name for the base table (each index goes by its own name)."""
DEFAULT_SHARDS = DEFAULT_PUBLIC_SHARDS
"""The public timeline shards as deployed (IMAGECORE_PUBLIC_TIMELINE_SHARDS's default)."""
PUBLIC_RATES = (500, 1_000, 2_000, 4_000, 8_000)
SHARD_COUNTS = (1, DEFAULT_SHARDS, 16, 32)
LIST_RATE = 5_000
READ_PUBLIC_RATE = 2_000
PAGE = 50
_WRITE_UNIT = 1024
_READ_UNIT = 4096
_EPOCH = datetime(2026, 12, 1, tzinfo=UTC)


# --- the table's layout, from the Terraform definition ------------------------------------------


@dataclass(frozen=True)
class Index:
    name: str
    hash_key: str
    range_key: str | None
    projected: frozenset[str] | None
    """The non-key attributes it holds; None for all of them."""


@dataclass(frozen=True)
class Layout:
    keys: tuple[str, ...]
    """The table's key attributes: hash, then range."""
    indexes: tuple[Index, ...]


def layout_of(definition: Mapping[str, Any]) -> Layout:
    """The keys and indexes of a CreateTable definition (``table_definition``'s)."""

    def names(schema: Sequence[Mapping[str, str]]) -> tuple[str, ...]:
        ordered = sorted(schema, key=lambda key: key["KeyType"] != "HASH")
        return tuple(key["AttributeName"] for key in ordered)

    indexes = []
    for index in definition.get("GlobalSecondaryIndexes", []):
        hash_key, *range_key = names(index["KeySchema"])
        projection = index["Projection"]
        projected: frozenset[str] | None = frozenset()
        if projection["ProjectionType"] == "ALL":
            projected = None
        elif projection["ProjectionType"] == "INCLUDE":
            projected = frozenset(projection["NonKeyAttributes"])
        indexes.append(Index(index["IndexName"], hash_key, next(iter(range_key), None), projected))
    return Layout(names(definition["KeySchema"]), tuple(indexes))


@functools.cache
def terraform_layout() -> Layout:
    return layout_of(table_definition(find_metadata_module(REPOSITORY_ROOT)))


# --- DynamoDB's sizes ---------------------------------------------------------------------------


def number_bytes(text: str) -> int:
    digits = Decimal(text).normalize().as_tuple().digits
    return 1 + (len(digits) + 1) // 2


def value_bytes(value: Mapping[str, Any]) -> int:
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return number_bytes(inner)
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(text.encode()) for text in inner)
    if kind == "NS":
        return sum(number_bytes(number) for number in inner)
    if kind == "BS":
        return sum(len(blob) for blob in inner)
    if kind == "L":
        return 3 + sum(1 + value_bytes(element) for element in inner)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + value_bytes(v) for name, v in inner.items())
    raise ValueError(f"no DynamoDB type {kind!r}")


def item_bytes(item: Mapping[str, Any] | None) -> int:
    if item is None:
        return 0
    total = 0
    for name, value in item.items():
        text = value.get("S")  # most are strings: sized here, without a call
        total += len(name.encode()) + (
            len(text.encode()) if text is not None else value_bytes(value)
        )
    return total


def units(size: int, unit: int) -> int:
    """Capacity units for ``size`` bytes: rounded up, and at least one."""
    return max(1, math.ceil(size / unit))


def _scalar(value: Mapping[str, Any]) -> str:
    ((_kind, inner),) = value.items()
    return str(inner)


# --- the metered stand-in for the client --------------------------------------------------------


Where = tuple[str, str]
"""(the table or an index, a partition key value)."""


@dataclass
class Meter:
    """Capacity consumed per partition key value, the writes that consumed it, the busiest
    partition of the table and of each index, and the calls made."""

    wcu: defaultdict[Where, float] = field(default_factory=lambda: defaultdict(float))
    rcu: defaultdict[Where, float] = field(default_factory=lambda: defaultdict(float))
    writes: Counter[Where] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)
    _peaks: dict[str, dict[str, tuple[Where, float]]] = field(
        default_factory=lambda: {"wcu": {}, "rcu": {}}
    )

    def charge(self, kind: str, place: Where, amount: float) -> None:
        consumed = self.wcu if kind == "wcu" else self.rcu
        consumed[place] += amount
        if kind == "wcu":
            self.writes[place] += 1
        peaks = self._peaks[kind]
        if place[0] not in peaks or consumed[place] > peaks[place[0]][1]:
            peaks[place[0]] = (place, consumed[place])

    def hottest(self, kind: str, where: str | None = None) -> tuple[Where, float]:
        """The busiest partition of ``where`` (None: of the table and every index)."""
        peaks = self._peaks[kind]
        if where is not None:
            return peaks.get(where, ((where, "-"), 0.0))
        return max(peaks.values(), key=lambda peak: peak[1], default=((BASE, "-"), 0.0))

    def total(self, kind: str) -> float:
        return sum((self.wcu if kind == "wcu" else self.rcu).values())


_KEY_CONDITION = re.compile(
    r"(?P<hash>[#\w]+) = (?P<value>:\w+)(?: AND (?P<range>[#\w]+) "
    r"(?:(?P<op>>=|<=) (?P<bound>:\w+)|BETWEEN (?P<low>:\w+) AND (?P<high>:\w+)))?"
)
_EQUALS = re.compile(r"(?P<name>[#\w]+) = (?P<value>:\w+)")
_BEGINS = re.compile(r"begins_with\((?P<name>[#\w]+), (?P<value>:\w+)\)")
_HIGHEST = "\U0010ffff"


class MeteredDynamoDb:
    """The calls of the DynamoDB client the repository makes, on dicts, metered.

    ``weight`` scales what is metered: a sampled request standing for several.
    """

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.meter = Meter()
        self.weight = 1.0
        self.written: dict[tuple[str, int], tuple[Image, dict[tuple[str, ...], Item]]] = {}
        """What ``write_change`` wrote last of each image, by its id and version: the next
        write of the image starts from it."""
        self._held = {
            index.name: {*layout.keys, index.hash_key, index.range_key, *(index.projected or ())}
            for index in layout.indexes
        }
        """The attributes each index holds (all, for one that projects all)."""
        self._items: dict[tuple[str, ...], tuple[Item, int]] = {}
        """Each item by its key, with its size."""
        # Per index and partition, the entries' (range key, table keys...) in order, and each
        # entry by that place.
        self._order: dict[str, dict[str, list[tuple[str, ...]]]] = {
            index.name: defaultdict(list) for index in layout.indexes
        }
        self._entries: dict[str, dict[tuple[str, tuple[str, ...]], tuple[Item, int]]] = {
            index.name: {} for index in layout.indexes
        }

    # -- what the repository calls --

    def describe_table(self, TableName: str) -> dict[str, Any]:
        return {"Table": {"TableName": TableName}}

    def transact_write_items(self, TransactItems: Sequence[Mapping[str, Any]], **_: Any) -> Any:
        self.meter.calls["TransactWriteItems"] += 1
        for write in TransactItems:
            ((kind, body),) = write.items()
            if kind == "Put":
                self._write(self._key(body["Item"]), body["Item"], factor=2)
            elif kind == "Delete":
                self._write(self._key(body["Key"]), None, factor=2)
            else:
                raise NotImplementedError(
                    f"a transaction's {kind}: the replay knows Put and Delete"
                )
        return {}

    def get_item(self, TableName: str, Key: Item, ConsistentRead: bool = False) -> Any:
        self.meter.calls["GetItem"] += 1
        item = self._read(Key, ConsistentRead)
        return {} if item is None else {"Item": item}

    def batch_get_item(self, RequestItems: Mapping[str, Any]) -> Any:
        self.meter.calls["BatchGetItem"] += 1
        responses: dict[str, list[Item]] = {}
        for table, request in RequestItems.items():
            found = [
                self._read(key, request.get("ConsistentRead", False)) for key in request["Keys"]
            ]
            responses[table] = [item for item in found if item is not None]
        return {"Responses": responses, "UnprocessedKeys": {}}

    def query(self, **request: Any) -> Any:
        self.meter.calls["Query"] += 1
        index = next(i for i in self.layout.indexes if i.name == request.get("IndexName"))
        names: Mapping[str, str] = request.get("ExpressionAttributeNames", {})
        values: Mapping[str, Any] = request["ExpressionAttributeValues"]
        condition = _KEY_CONDITION.fullmatch(request["KeyConditionExpression"])
        if condition is None or names.get(condition["hash"], condition["hash"]) != index.hash_key:
            raise NotImplementedError(f"key condition {request['KeyConditionExpression']!r}")
        partition = _scalar(values[condition["value"]])
        low = high = None
        if condition["low"]:
            low, high = _scalar(values[condition["low"]]), _scalar(values[condition["high"]])
        elif condition["op"] == ">=":
            low = _scalar(values[condition["bound"]])
        elif condition["op"] == "<=":
            high = _scalar(values[condition["bound"]])
        keep = self._filter(request.get("FilterExpression"), names, values)
        order = self._order[index.name].get(partition, [])
        start = request.get("ExclusiveStartKey")
        start_place = None if start is None else self._place(index, start)
        limit = request.get("Limit", len(order) + 1)
        if request.get("ScanIndexForward", True):
            first = 0 if low is None else bisect.bisect_left(order, (low,))
            if start_place is not None:
                first = max(first, bisect.bisect_right(order, start_place))
            places: Iterator[tuple[str, ...]] = iter(order[first:])
            inside: Callable[[tuple[str, ...]], bool] = lambda p: high is None or p[0] <= high  # noqa: E731
        else:
            end = len(order) if high is None else bisect.bisect_right(order, (high, _HIGHEST))
            if start_place is not None:
                end = min(end, bisect.bisect_left(order, start_place))
            places = reversed(order[:end])
            inside = lambda p: low is None or p[0] >= low  # noqa: E731
        evaluated: list[Item] = []
        items: list[Item] = []
        size = 0
        for place in places:
            if not inside(place) or len(evaluated) == limit:
                break
            entry, entry_size = self._entries[index.name][(partition, place)]
            evaluated.append(entry)
            size += entry_size
            if keep(entry):
                items.append(entry)
        self.meter.charge(
            "rcu", (index.name, partition), 0.5 * units(size, _READ_UNIT) * self.weight
        )
        response: dict[str, Any] = {
            "Items": items,
            "Count": len(items),
            "ScannedCount": len(evaluated),
        }
        if evaluated and len(evaluated) == limit:  # as DynamoDB: stopped by the limit
            last = evaluated[-1]
            response["LastEvaluatedKey"] = {
                name: last[name]
                for name in (index.hash_key, index.range_key, *self.layout.keys)
                if name is not None
            }
        return response

    def transact(self, puts: Sequence[Item], deletes: Sequence[Item] = ()) -> None:
        """One TransactWriteItems of these puts, and deletes of these items' keys."""
        self.transact_write_items(
            [{"Put": {"Item": item}} for item in puts]
            + [
                {"Delete": {"Key": {name: key[name] for name in self.layout.keys}}}
                for key in deletes
            ]
        )

    # -- the table and its indexes --

    def _key(self, item: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(_scalar(item[name]) for name in self.layout.keys)

    def _read(self, key: Item, consistent: bool) -> Item | None:
        found = self._items.get(self._key(key))
        per_unit = 1.0 if consistent else 0.5
        size = 0 if found is None else found[1]
        amount = per_unit * units(size, _READ_UNIT) * self.weight
        self.meter.charge("rcu", (BASE, _scalar(key[self.layout.keys[0]])), amount)
        return None if found is None else found[0]

    def _place(self, index: Index, item: Mapping[str, Any]) -> tuple[str, ...]:
        ranged = () if index.range_key is None else (_scalar(item[index.range_key]),)
        return (*ranged, *self._key(item))

    def _entry(self, index: Index, item: Item | None) -> Item | None:
        """The index's entry for ``item``: None if the item is not on the index."""
        if item is None or index.hash_key not in item:
            return None
        if index.range_key is not None and index.range_key not in item:
            return None
        if index.projected is None:
            return dict(item)
        held = self._held[index.name]
        return {name: value for name, value in item.items() if name in held}

    def _write(self, key: tuple[str, ...], new: Item | None, factor: int) -> None:
        found = self._items.get(key)
        old, old_size = (None, 0) if found is None else found
        new_size = item_bytes(new)
        if new is None:
            self._items.pop(key, None)
        else:
            self._items[key] = (new, new_size)
        wcu = factor * units(max(old_size, new_size), _WRITE_UNIT)
        self.meter.charge("wcu", (BASE, key[0]), wcu * self.weight)
        for index in self.layout.indexes:
            before, after = self._entry(index, old), self._entry(index, new)
            if before == after:
                continue
            entries = self._entries[index.name]
            if (
                before is not None
                and after is not None
                and self._at(index, before) == (at := self._at(index, after))
            ):
                size = item_bytes(after)
                self._charge(at[0], index.name, max(entries[at][1], size))
                entries[at] = (after, size)
                continue
            if before is not None:
                at = self._at(index, before)
                self._charge(at[0], index.name, entries.pop(at)[1])
                order = self._order[index.name][at[0]]
                del order[bisect.bisect_left(order, at[1])]
            if after is not None:
                at = self._at(index, after)
                size = item_bytes(after)
                self._charge(at[0], index.name, size)
                bisect.insort(self._order[index.name][at[0]], at[1])
                entries[at] = (after, size)

    def _at(self, index: Index, entry: Item) -> tuple[str, tuple[str, ...]]:
        """Where an entry is: its partition, and its place in the partition's order."""
        return _scalar(entry[index.hash_key]), self._place(index, entry)

    def _charge(self, partition: str, where: str, size: int) -> None:
        """An index write of an entry of ``size`` bytes."""
        self.meter.charge("wcu", (where, partition), units(size, _WRITE_UNIT) * self.weight)

    @staticmethod
    def _filter(
        expression: str | None, names: Mapping[str, str], values: Mapping[str, Any]
    ) -> Callable[[Item], bool]:
        if expression is None:
            return lambda _entry: True
        tests: list[Callable[[Item], bool]] = []
        for term in expression.split(" AND "):
            equals, begins = _EQUALS.fullmatch(term), _BEGINS.fullmatch(term)
            found = equals or begins
            if found is None:
                raise NotImplementedError(f"filter {term!r}")
            name, wanted = names.get(found["name"], found["name"]), _scalar(values[found["value"]])
            tests.append(_equals(name, wanted) if equals else _begins(name, wanted))
        return lambda entry: all(test(entry) for test in tests)


def _equals(name: str, wanted: str) -> Callable[[Item], bool]:
    return lambda entry: name in entry and _scalar(entry[name]) == wanted


def _begins(name: str, wanted: str) -> Callable[[Item], bool]:
    return lambda entry: name in entry and _scalar(entry[name]).startswith(wanted)


# --- who uploads what -----------------------------------------------------------------------------


HOT_TAGS = (
    "travel", "family", "food", "nature", "sunset", "beach", "friends", "dog", "cat", "city",
    "art", "wedding", "mountains", "snow", "street", "portrait", "flowers", "sea", "car", "party",
)  # fmt: skip
CAMERAS = (
    ("Apple", "iPhone 15 Pro"), ("Samsung", "SM-S921B"), ("Google", "Pixel 8"),
    ("Canon", "Canon EOS R6"), ("SONY", "ILCE-7M4"), ("NIKON CORPORATION", "NIKON Z 6_2"),
)  # fmt: skip
WORDS = (
    "sunset", "at", "the", "beach", "old", "town", "birthday", "lunch", "harbour", "walk",
    "garden", "snow", "morning", "mountains", "party", "view", "from", "our", "trip", "to",
)  # fmt: skip
CONTENT_TYPES = {"image/jpeg": 85, "image/png": 8, "image/webp": 5, "image/gif": 2}
TAG_COUNTS = {0: 15, 1: 20, 2: 25, 3: 15, 4: 10, 5: 8, 6: 7}


@dataclass(frozen=True)
class Population:
    """Who uploads, and what: users and tags are drawn by Zipf's law (rank r has weight
    r^-skew), so a few users upload much more than most, and a few tags are on many images."""

    users: int = 100_000
    user_skew: float = 0.8
    public_share: float = 0.65
    tags: int = 10_000
    tag_skew: float = 1.0
    claim_share: float = 0.5
    """Uploads that declare their SHA-256 (the CLI does): they claim their bytes."""
    edit_share: float = 0.05
    delete_share: float = 0.02
    """Edits and deletes per upload."""

    def share_of_user(self, rank: int) -> float:
        return float(
            rank**-self.user_skew / sum(r**-self.user_skew for r in range(1, self.users + 1))
        )


POPULATION = Population()


def user_name(rank: int) -> str:
    return f"user-{rank:06d}"


def tag_name(rank: int) -> str:
    return HOT_TAGS[rank - 1] if rank <= len(HOT_TAGS) else f"tag{rank}"


class Uploads:
    """Images as the population uploads them, numbered in upload order."""

    def __init__(self, population: Population, seed: int = 21) -> None:
        self.population = population
        self.random = random.Random(seed)  # noqa: S311 - a reproducible draw, not a secret
        self._users = list(
            accumulate(r**-population.user_skew for r in range(1, population.users + 1))
        )
        self._tags = list(
            accumulate(r**-population.tag_skew for r in range(1, population.tags + 1))
        )

    def user(self) -> str:
        return user_name(self._rank(self._users))

    def tag(self) -> str:
        return tag_name(self._rank(self._tags))

    def _rank(self, cumulative: list[float]) -> int:
        return bisect.bisect_left(cumulative, self.random.random() * cumulative[-1]) + 1

    def image(self, n: int) -> Image:
        draw = self.random
        tags: dict[str, None] = {}
        (count,) = draw.choices(list(TAG_COUNTS), weights=list(TAG_COUNTS.values()))
        while len(tags) < count:
            tags[self.tag()] = None
        (content_type,) = draw.choices(list(CONTENT_TYPES), weights=list(CONTENT_TYPES.values()))
        created = _EPOCH + timedelta(microseconds=n * 100)
        return Image(
            image_id=f"01JE{n:022d}",
            user_id=self.user(),
            filename=f"IMG_{n % 10_000:04d}.{content_type.split('/')[1].upper()}",
            content_type=content_type,
            size=draw.randrange(200_000, 6_000_000),
            width=4032,
            height=3024,
            sha256=f"{draw.getrandbits(256):064x}",
            blob_key=f"images/u/01JE{n:022d}",
            created_at=created,
            updated_at=created,
            title=self._title(),
            description=self._description(),
            tags=tuple(tags),
            metadata=self._metadata(),
            visibility=(
                Visibility.PUBLIC
                if draw.random() < self.population.public_share
                else Visibility.PRIVATE
            ),
            claims_content=draw.random() < self.population.claim_share,
        )

    def _title(self) -> str:
        """Mostly what the camera named the file; else a few words, or nothing."""
        draw = self.random.random()
        if draw < 0.55:
            return f"IMG_{self.random.randrange(10_000):04d}"
        if draw < 0.65:
            return f"DSC{self.random.randrange(100_000):05d}"
        if draw < 0.75:
            return ""
        words = self.random.sample(WORDS, self.random.randint(1, 4))
        return " ".join(words).capitalize()

    def _description(self) -> str:
        if self.random.random() < 0.75:
            return ""
        return " ".join(self.random.choices(WORDS, k=self.random.randint(5, 50))).capitalize()

    def _metadata(self) -> dict[str, str | int | float]:
        """What a camera says (EXIF), mostly; now and then a few KB of it (validation's limit
        is 8 KiB as JSON)."""
        draw = self.random.random()
        if draw < 0.07:
            return {}
        make, model = self.random.choice(CAMERAS)
        metadata: dict[str, str | int | float] = {
            "camera_make": make,
            "camera_model": model,
            "iso": self.random.choice((50, 100, 200, 400, 800, 1600)),
            "exposure": f"1/{self.random.choice((60, 125, 250, 500, 1000))}",
            "aperture": self.random.choice((1.8, 2.8, 4.0, 5.6, 8.0)),
            "focal_length_mm": self.random.choice((13, 24, 35, 50, 85)),
            "captured_at": "2026-11-30T17:42:05",
        }
        if draw > 0.97:
            for number in range(40):
                metadata[f"xmp_field_{number:02d}"] = "x" * 90
        return metadata


# --- what a write of an image writes -----------------------------------------------------------


def stored_items(image: Image | None, shards: int) -> list[Item]:
    """Every item ``image`` is stored as, its content claim included while it holds one: the
    one function the model asks what the layout writes (the layout's own, ``items_of``)."""
    if image is None:
        return []
    items = items_of(image, shards)
    if image.holds_content_claim:
        items.append(claim_item(image))
    return items


def write_change(
    client: MeteredDynamoDb, before: Image | None, after: Image | None, shards: int
) -> None:
    """The transaction that stores ``after`` where ``before`` was: the items that are new or
    changed put, those no longer stored deleted (what the repository's add and replace write;
    tests/bench prove the two the same)."""
    keys = client.layout.keys
    old = None
    if before is not None:
        kept = client.written.pop((before.image_id, before.version), None)
        old = kept[1] if kept is not None and kept[0] == before else None
    if old is None:
        old = {tuple(_scalar(item[k]) for k in keys): item for item in stored_items(before, shards)}
    new = {tuple(_scalar(item[k]) for k in keys): item for item in stored_items(after, shards)}
    if after is not None:
        client.written[(after.image_id, after.version)] = (after, new)
    client.transact(
        [item for key, item in new.items() if old.get(key) != item],
        [item for key, item in old.items() if key not in new],
    )


# --- the requests, as the use cases make them ---------------------------------------------------


def repository(client: MeteredDynamoDb, shards: int) -> DynamoDbImageRepository:
    """The repository as deployed with ``shards`` public timeline shards. The one place the
    layout's parameters reach the model: everything else follows from what the repository
    writes and reads."""
    return DynamoDbImageRepository(client, TABLE, public_shards=shards)  # type: ignore[arg-type]


class Requests:
    """Each request's repository calls, in the order its use case makes them (imagecore.uploads,
    .thumbnails, .lifecycle, .reads): the model's requests are the service's."""

    def __init__(self, repository: DynamoDbImageRepository) -> None:
        self.repository = repository

    def upload(self, image: Image) -> None:
        """POST /images: the bytes are stored first (S3), then the metadata."""
        if image.claims_content:
            self.repository.find_by_content(image.user_id, image.sha256)
        self.repository.add(image)

    def open_slot(self, image: Image) -> Image:
        """POST /uploads: a slot, which the uploaded bytes make into the image."""
        if image.claims_content:
            self.repository.find_by_content(image.user_id, image.sha256)
        slot = _evolve(image, state="uploading")
        self.repository.add(slot)
        return slot

    def complete_direct_upload(self, slot: Image, now: datetime) -> None:
        """The worker, told of bytes under uploads/: claims the slot, checks and stores the
        bytes, then makes the slot the image."""
        current = self._get(slot.image_id)
        claimed = current.claimed(now)
        self.repository.replace(claimed, current.version)
        active = _evolve(claimed, state="active", version=claimed.version + 1)
        self.repository.replace(active, claimed.version)

    def complete_thumbnail(self, image_id: str) -> None:
        """The worker: reads the image, stores its thumbnail, reads it again and settles it."""
        self._get(image_id)
        current = self._get(image_id)
        self.repository.replace(current.with_thumbnail(ThumbnailStatus.READY), current.version)

    def edit(self, image_id: str, changes: Mapping[str, Any], now: datetime) -> None:
        """PATCH /images/{id}."""
        current = self._get(image_id)
        self.repository.replace(current.edited(changes, now), current.version)

    def delete(self, image_id: str, now: datetime) -> None:
        """DELETE /images/{id}: a tombstone, the bytes removed, then the record blanked."""
        current = self._get(image_id)
        tombstone = current.tombstoned(now)
        self.repository.replace(tombstone, current.version)
        self.repository.replace(tombstone.erased(), tombstone.version)

    def get(self, image_id: str) -> None:
        """GET /images/{id}, and GET /images/{id}/download (then a presigned URL: no call)."""
        self._get(image_id)

    def list(self, query: ListQuery, caller: str) -> int:
        """GET /images: one more than the page, to know whether there is a next one."""
        return len(self.repository.list(query, caller, None, query.limit + 1).images)

    def _get(self, image_id: str) -> Image:
        image = self.repository.get(image_id)
        assert image is not None, image_id
        return image


def _evolve(image: Image, **changes: Any) -> Image:
    import attrs

    from imagecore.model import ImageState

    if "state" in changes:
        changes["state"] = ImageState(changes["state"])
    return attrs.evolve(image, **changes)


def edit_of(image: Image, draw: random.Random, uploads: Uploads) -> dict[str, Any]:
    """What owners change: mostly the title or a tag, now and then the visibility."""
    roll = draw.random()
    if roll < 0.4:
        return {"title": " ".join(draw.sample(WORDS, 3)).capitalize()}
    if roll < 0.7:
        return {"tags": (*image.tags, uploads.tag())[-6:]}
    if roll < 0.9:
        return {"tags": image.tags[1:]}
    flipped = Visibility.PRIVATE if image.visibility is Visibility.PUBLIC else Visibility.PUBLIC
    return {"visibility": flipped}


# --- the replays -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hottest:
    """The busiest partition of the table or one index, in one simulated second."""

    public_rate: int
    shards: int
    where: str
    partition: str
    units: float

    @property
    def over(self) -> bool:
        return self.units > WCU_LIMIT


@dataclass(frozen=True)
class WriteReplay:
    shards: int
    hottest: list[Hottest]
    """Per public upload rate, the busiest partition of the table and of each index."""
    first_over: tuple[int, str, str] | None
    """The public uploads/s at which a partition first went over 1,000 WCU/s, and which."""
    projected: tuple[int, str, str] | None
    """Where none went over: the rate at which the busiest would, its load growing with it."""
    seconds: float


def replay_writes(
    shards: int,
    rates: Sequence[int] = PUBLIC_RATES,
    population: Population = POPULATION,
    seed: int = 21,
) -> WriteReplay:
    """One simulated second of uploads at each public upload rate, with the thumbnails they
    make, and the edits and deletes of the images uploaded before (population.*_share of the
    uploads), each written as ``write_change`` says: the writes only, as reads cost nothing
    against the write limit. The seconds at the lower rates are the first part of the one at
    the highest: one stream, its busiest partitions read where it has had as many public
    uploads as the rate."""
    started = time.perf_counter()
    layout = terraform_layout()
    client = MeteredDynamoDb(layout)
    uploads = Uploads(population, seed)
    draw = random.Random(seed + 1)  # noqa: S311 - a reproducible draw, not a secret
    wanted = sorted(rates)
    hottest: list[Hottest] = []
    first_over: tuple[int, str, str] | None = None
    active: list[Image] = []
    public = n = 0
    places = (BASE, *(index.name for index in layout.indexes))
    while wanted:
        image = uploads.image(n)
        n += 1
        write_change(client, None, image, shards)  # the upload
        settled = image.with_thumbnail(ThumbnailStatus.READY)
        write_change(client, image, settled, shards)  # its thumbnail, soon after
        active.append(settled)
        now = image.created_at
        if draw.random() < population.edit_share:
            at = draw.randrange(len(active))
            edited = active[at].edited(edit_of(active[at], draw, uploads), now)
            write_change(client, active[at], edited, shards)
            active[at] = edited
        if draw.random() < population.delete_share:
            gone = active.pop(draw.randrange(len(active)))
            tombstone = gone.tombstoned(now)
            write_change(client, gone, tombstone, shards)
            write_change(client, tombstone, tombstone.erased(), shards)
        public += image.visibility is Visibility.PUBLIC
        if first_over is None:
            (where, partition), wcu = client.meter.hottest("wcu")
            if wcu > WCU_LIMIT:
                first_over = (public, where, partition)
        if public == wanted[0]:
            for place in places:
                (where, partition), wcu = client.meter.hottest("wcu", place)
                hottest.append(Hottest(public, shards, where, partition, wcu))
            wanted.pop(0)
    projected = None
    if first_over is None:
        # The busiest partitions by their load per public upload; only those many writes make
        # (a single image's own items do not grow with the rate).
        busiest = [
            (WCU_LIMIT * public / wcu, place)
            for place, wcu in client.meter.wcu.items()
            if client.meter.writes[place] >= 100
        ]
        rate, (where, partition) = min(busiest)
        projected = (round(rate / 100) * 100, where, partition)
    return WriteReplay(shards, hottest, first_over, projected, time.perf_counter() - started)


LIST_MIX: dict[str, int] = {
    "public feed": 40,
    "a user's page": 25,
    "a tag's page": 20,
    "own images": 10,
    "content_type=image/png": 3,
    "title prefix 'img'": 2,
}


def list_query(kind: str, caller: str, uploads: Uploads) -> ListQuery:
    """The first page of a list of that kind (the heaviest: every reader reads the newest)."""
    if kind == "public feed":
        return ListQuery(limit=PAGE)
    if kind == "a user's page":
        return ListQuery(user_id=uploads.user(), limit=PAGE)
    if kind == "a tag's page":
        return ListQuery(tags=(uploads.tag(),), limit=PAGE)
    if kind == "own images":
        return ListQuery(user_id=caller, limit=PAGE)
    if kind == "content_type=image/png":
        return ListQuery(content_type="image/png", limit=PAGE)
    return ListQuery(title_prefix="img", limit=PAGE)


@dataclass(frozen=True)
class ListCost:
    kind: str
    rcu: float
    """Mean RCU of one request."""
    calls: str


@dataclass(frozen=True)
class ReadReplay:
    shards: int
    hottest: list[Hottest]
    costs: list[ListCost]
    seconds: float


def replay_reads(
    shards: int,
    list_rate: int = LIST_RATE,
    public_rate: int = READ_PUBLIC_RATE,
    samples: int = 500,
    population: Population = POPULATION,
    seed: int = 22,
) -> ReadReplay:
    """One simulated second of ``list_rate`` first pages (LIST_MIX; ``samples`` of them, each
    metered as list_rate/samples requests) among uploads at ``public_rate`` public uploads/s,
    after a second of uploads at that rate: readers of the newest pages read the images
    just uploaded, as they would."""
    started = time.perf_counter()
    layout = terraform_layout()
    client = MeteredDynamoDb(layout)
    requests = Requests(repository(client, shards))
    uploads = Uploads(population, seed)
    draw = random.Random(seed + 1)  # noqa: S311 - a reproducible draw, not a secret
    per_second = round(public_rate / population.public_share)
    for n in range(per_second):
        requests.repository.add(uploads.image(n))
    client.meter = Meter()
    kinds = list(LIST_MIX)
    spent: defaultdict[str, list[float]] = defaultdict(list)
    calls: defaultdict[str, Counter[str]] = defaultdict(Counter)
    n = per_second
    for sample in range(samples):
        client.weight = 1.0
        while n < per_second + per_second * (sample + 1) // samples:
            requests.repository.add(uploads.image(n))
            n += 1
        (kind,) = draw.choices(kinds, weights=list(LIST_MIX.values()))
        caller = uploads.user()
        client.weight = list_rate / samples
        before, called = client.meter.total("rcu"), Counter(client.meter.calls)
        requests.list(list_query(kind, caller, uploads), caller)
        spent[kind].append((client.meter.total("rcu") - before) / client.weight)
        calls[kind].update(client.meter.calls - called)
    costs = [
        ListCost(
            kind,
            sum(spent[kind]) / len(spent[kind]),
            ", ".join(
                f"{count / len(spent[kind]):.1f} {name}"
                for name, count in sorted(calls[kind].items())
            ),
        )
        for kind in kinds
        if spent[kind]
    ]
    hottest = []
    for place in (BASE, *(index.name for index in layout.indexes)):
        (where, partition), rcu = client.meter.hottest("rcu", place)
        hottest.append(Hottest(public_rate, shards, where, partition, rcu))
    return ReadReplay(shards, hottest, costs, time.perf_counter() - started)


# --- what each request costs ----------------------------------------------------------------------


@dataclass(frozen=True)
class RequestCost:
    request: str
    calls: str
    wcu: float
    rcu: float


def request_costs(shards: int = DEFAULT_SHARDS) -> list[RequestCost]:
    """Each request once, on a table where the lists read have full pages: alice's 150
    images and 150 public ones of others, JPEG and PNG, tagged travel and beach."""
    client = MeteredDynamoDb(terraform_layout())
    requests = Requests(repository(client, shards))
    uploads = Uploads(POPULATION, seed=23)
    for n in range(300):
        image = _evolve(
            uploads.image(n),
            user_id="alice" if n % 2 else f"user-{n:06d}",
            visibility=Visibility.PUBLIC if n % 4 else Visibility.PRIVATE,
            tags=("travel", "beach"),
            title=f"IMG_{n:04d}",
            content_type="image/png" if n % 3 == 0 else "image/jpeg",
            metadata={"camera_make": "Apple", "camera_model": "iPhone 15 Pro", "iso": 100},
            claims_content=True,
        )
        requests.upload(image)
    last = n
    costs: list[RequestCost] = []

    def measure(name: str, call: Callable[[], object]) -> None:
        wcu, rcu, calls = (
            client.meter.total("wcu"),
            client.meter.total("rcu"),
            Counter(client.meter.calls),
        )
        call()
        made = client.meter.calls - calls
        costs.append(
            RequestCost(
                name,
                ", ".join(f"{count} {api}" for api, count in sorted(made.items())),
                client.meter.total("wcu") - wcu,
                client.meter.total("rcu") - rcu,
            )
        )

    now = _EPOCH + timedelta(days=1)
    typical = _evolve(
        uploads.image(last + 1),
        user_id="alice",
        visibility=Visibility.PUBLIC,
        tags=("travel", "beach"),
        title="IMG_4711",
        content_type="image/jpeg",
        metadata={"camera_make": "Apple", "camera_model": "iPhone 15 Pro", "iso": 100},
        description="",
        claims_content=True,
    )
    # As large as validation lets an image be: it checks each field.
    largest = _evolve(
        uploads.image(last + 2),
        user_id="alice",
        visibility=Visibility.PUBLIC,
        tags=validation.tags([f"tag{number}" for number in range(20)]),
        title=validation.title("T" * 200),
        description=validation.description("D" * 2000),
        metadata=validation.metadata({f"field_{number:02d}": "x" * 148 for number in range(50)}),
        claims_content=True,
    )
    measure("POST /images: public, 2 tags, hash declared", lambda: requests.upload(typical))
    measure(
        "POST /images: 20 tags, 8 KiB metadata, longest title and description",
        lambda: requests.upload(largest),
    )
    direct = _evolve(uploads.image(last + 3), user_id="alice", visibility=Visibility.PUBLIC,
                     tags=("travel", "beach"), claims_content=True)  # fmt: skip
    slot: list[Image] = []
    measure("POST /uploads: the slot", lambda: slot.append(requests.open_slot(direct)))
    measure(
        "direct upload completed (worker)", lambda: requests.complete_direct_upload(slot[0], now)
    )
    measure("thumbnail settled (worker)", lambda: requests.complete_thumbnail(typical.image_id))
    measure("PATCH title", lambda: requests.edit(typical.image_id, {"title": "Beach"}, now))
    measure(
        "PATCH tags: one added",
        lambda: requests.edit(typical.image_id, {"tags": ("travel", "beach", "sea")}, now),
    )
    measure(
        "PATCH visibility: public to private",
        lambda: requests.edit(typical.image_id, {"visibility": Visibility.PRIVATE}, now),
    )
    measure("DELETE /images/{id}", lambda: requests.delete(typical.image_id, now))
    measure("GET /images/{id} (and /download)", lambda: requests.get(direct.image_id))
    for name, query, caller in (
        ("GET /images: public feed", ListQuery(limit=PAGE), "bob"),
        ("GET /images?user_id=alice (by bob)", ListQuery(user_id="alice", limit=PAGE), "bob"),
        ("GET /images?tags=travel", ListQuery(tags=("travel",), limit=PAGE), "bob"),
        ("GET /images: own and public (alice)", ListQuery(limit=PAGE), "alice"),
        (
            "GET /images?content_type=image/png",
            ListQuery(content_type="image/png", limit=PAGE),
            "bob",
        ),
        ("GET /images?title=img", ListQuery(title_prefix="img", limit=PAGE), "bob"),
    ):
        measure(f"{name}, page of {PAGE}", functools.partial(requests.list, query, caller))
    return costs


# --- S3 and Lambda at a reference mix ------------------------------------------------------------


@dataclass(frozen=True)
class Traffic:
    """One request type of the reference mix: how often, how long its Lambda runs, and the S3
    requests it makes (by prefix: ``images/<owner>/...`` or ``uploads/<owner>/...``)."""

    request: str
    rate: float
    """Per second."""
    function: str
    """The Lambda that serves it: "api", "worker", or "" (the client talks to S3 itself)."""
    milliseconds: float
    s3: Mapping[str, float] = field(default_factory=dict)
    """S3 requests per request, by "<prefix> <kind>"."""


HANDLER_MS = 4.7
"""The API handler's warm p50 for a GET against moto server (docs/benchmarks.md, row 5)."""
DYNAMODB_MS = 5.0
"""A DynamoDB call from a Lambda in the same region: single-digit ms (assumed, not measured)."""
S3_MS = 20.0
"""A small S3 request (GET or PUT of a thumbnail, a DELETE, a LIST): assumed."""
PHOTO_PUT_MS = 120.0
"""A 3 MB photo received through API Gateway and PUT to S3 (one PUT under 8 MiB): assumed."""
LIST_CALLS = 7.5
"""DynamoDB calls of a page of LIST_MIX at the default shards, on average, made one after
another (request_costs): the public feed's and the caller's own 8 Query (a round over the
shards and a catch-up) and their BatchGetItem, 9; a tag's, a content type's or a title's 10;
another user's page 2."""
THUMBNAIL_MS = 570.0
"""libvips: a 6000 x 4000 baseline JPEG to its thumbnail, median (docs/benchmarks.md); a
12 MP phone photo takes less."""


def reference_mix(
    public_rate: int = READ_PUBLIC_RATE, population: Population = POPULATION
) -> list[Traffic]:
    """The requests at ``public_rate`` public uploads/s: all uploads through POST /images (a
    direct upload moves the body's PUT to the client and adds the worker's GET, PUT and
    DELETE), one thumbnail each, the population's edits and deletes, LIST_RATE list pages/s,
    and, assumed, as many metadata reads and downloads as a fifth of the pages and two
    thumbnail views per page."""
    uploads = public_rate / population.public_share
    gets = downloads = LIST_RATE / 5
    thumbnails = 2 * LIST_RATE
    api = HANDLER_MS
    return [
        # imagecore.uploads: the bytes to images/<owner>/<id> (a PUT), then the metadata.
        Traffic("POST /images", uploads, "api", api + PHOTO_PUT_MS + 2 * DYNAMODB_MS,
                {"images PUT": 1}),
        # imagecore.thumbnails: reads the original, writes <original>/thumbnail, settles.
        Traffic("thumbnail (worker)", uploads, "worker",
                THUMBNAIL_MS + 2 * S3_MS + 4 * DYNAMODB_MS, {"images GET": 1, "images PUT": 1}),
        Traffic("PATCH /images/{id}", uploads * population.edit_share, "api",
                api + 3 * DYNAMODB_MS),
        # imagecore.lifecycle.finish_delete: the thumbnail, then the original; each delete lists
        # the key's derivatives first (adapters.s3.delete).
        Traffic("DELETE /images/{id}", uploads * population.delete_share, "api",
                api + 5 * DYNAMODB_MS + 4 * S3_MS, {"images LIST": 2, "images DELETE": 2}),
        Traffic("GET /images (page of 50)", LIST_RATE, "api", api + LIST_CALLS * DYNAMODB_MS),
        Traffic("GET /images/{id}", gets, "api", api + DYNAMODB_MS),
        # A 307 to a presigned URL: presigning makes no request; the client GETs from S3.
        Traffic("GET /images/{id}/download", downloads, "api", api + DYNAMODB_MS),
        Traffic("GET /images/{id}/thumbnail", thumbnails, "api", api + DYNAMODB_MS),
        Traffic("the client's GET of a presigned URL", downloads + thumbnails, "", 0,
                {"images GET": 1}),
    ]  # fmt: skip


def s3_and_lambda_table(mix: Sequence[Traffic], population: Population = POPULATION) -> str:
    lines = [
        "| request | per second | Lambda | ms (assumed) | concurrency | S3 requests |",
        "|---|---:|---|---:|---:|---|",
    ]
    by_kind: defaultdict[str, float] = defaultdict(float)
    concurrency: defaultdict[str, float] = defaultdict(float)
    requests: defaultdict[str, float] = defaultdict(float)
    for traffic in mix:
        running = traffic.rate * traffic.milliseconds / 1000  # Little's law
        concurrency[traffic.function] += running
        requests[traffic.function] += traffic.rate
        s3 = ", ".join(f"{count:g} {kind}" for kind, count in traffic.s3.items())
        for kind, count in traffic.s3.items():
            by_kind[kind] += traffic.rate * count
        lines.append(
            f"| {traffic.request} | {traffic.rate:,.0f} | {traffic.function or '-'} | "
            f"{traffic.milliseconds:,.0f} | {running:,.0f} | {s3 or '-'} |"
        )
    heaviest = population.share_of_user(1)
    lines += [
        "",
        "| Lambda | requests/s | concurrency (rate x duration) |",
        "|---|---:|---:|",
        *(
            f"| {name} | {requests[name]:,.0f} | {running:,.0f} |"
            for name, running in concurrency.items()
            if name
        ),
        f"| both | {requests['api'] + requests['worker']:,.0f} | "
        f"{sum(concurrency.values()):,.0f} |",
        "",
        "| S3 requests | per second, all of images/ | the heaviest user's prefix "
        f"({heaviest:.1%} of uploads) |",
        "|---|---:|---:|",
        *(
            f"| {kind} | {rate:,.0f} | {rate * heaviest:,.0f} |"
            for kind, rate in sorted(by_kind.items())
        ),
    ]
    return "\n".join(lines)


def population_table(population: Population = POPULATION, count: int = 20_000) -> str:
    """What ``count`` uploads of the population are: the shares the hot partitions come from."""
    uploads = Uploads(population)
    images = [uploads.image(n) for n in range(count)]

    def share(test: Callable[[Image], bool]) -> str:
        return f"{sum(map(test, images)) / count:.1%}"

    heaviest = user_name(1)
    rows = (
        ("public", share(lambda image: image.visibility is Visibility.PUBLIC)),
        (f"by the heaviest user ({heaviest})", share(lambda image: image.user_id == heaviest)),
        (f"tagged {tag_name(1)}", share(lambda image: tag_name(1) in image.tags)),
        ("JPEG", share(lambda image: image.content_type == "image/jpeg")),
        ("titled IMG_nnnn", share(lambda image: image.title.startswith("IMG_"))),
        ("with more than 1 KB of metadata", share(lambda image: len(str(image.metadata)) > 1024)),
        ("declaring their SHA-256", share(lambda image: image.claims_content)),
    )
    lines = [f"| of {count:,} uploads | share |", "|---|---:|"]
    return "\n".join(lines + [f"| {name} | {value} |" for name, value in rows])


# --- the report ----------------------------------------------------------------------------------


def _name(where: str, partition: str) -> str:
    return f"{where} {partition}" if where != BASE else f"table {partition}"


def sweep_table(replays: Sequence[WriteReplay]) -> str:
    lines = [
        "| public uploads/s | shards | busiest partition (index: key) | WCU/s | limit 1,000 | "
        "busiest owner timeline | WCU/s |",
        "|---:|---:|---|---:|---|---|---:|",
    ]
    for replay in replays:
        for rate in sorted({h.public_rate for h in replay.hottest}):
            at = [h for h in replay.hottest if h.public_rate == rate]
            top = max(at, key=lambda h: h.units)
            owner = next(h for h in at if h.where == "owner_timeline")
            lines.append(
                f"| {rate:,} | {replay.shards} | {_name(top.where, top.partition)} | "
                f"{top.units:,.0f} | {'**over**' if top.over else 'under'} | "
                f"{owner.partition} | {owner.units:,.0f} |"
            )
    return "\n".join(lines)


def breaks_table(replays: Sequence[WriteReplay]) -> str:
    lines = [
        "| shards | first over 1,000 WCU/s at (public uploads/s) | partition |",
        "|---:|---|---|",
    ]
    for replay in replays:
        if replay.first_over is not None:
            rate, where, partition = replay.first_over
            lines.append(f"| {replay.shards} | {rate:,} | {_name(where, partition)} |")
        elif replay.projected is not None:
            rate, where, partition = replay.projected
            lines.append(
                f"| {replay.shards} | none up to {max(PUBLIC_RATES):,}; ~{rate:,} "
                f"(projected: its load grows with the rate) | {_name(where, partition)} |"
            )
    return "\n".join(lines)


def reads_table(replays: Sequence[ReadReplay]) -> str:
    lines = [
        f"| shards | busiest partition at {LIST_RATE:,} lists/s (index: key) | RCU/s "
        "| limit 3,000 | passes it at (lists/s) |",
        "|---:|---|---:|---|---:|",
    ]
    for replay in replays:
        for hot in replay.hottest:
            if hot.units:
                verdict = "**over**" if hot.units > RCU_LIMIT else "under"
                place = _name(hot.where, hot.partition)
                # A partition's reads grow with the list rate, the mix staying the same.
                breaks = round(LIST_RATE * RCU_LIMIT / hot.units, -2)
                lines.append(
                    f"| {replay.shards} | {place} | {hot.units:,.0f} | {verdict} | {breaks:,.0f} |"
                )
    return "\n".join(lines)


def costs_table(costs: Sequence[RequestCost]) -> str:
    lines = ["| request | DynamoDB calls | WCU | RCU |", "|---|---|---:|---:|"]
    lines += [f"| {c.request} | {c.calls} | {c.wcu:g} | {c.rcu:g} |" for c in costs]
    return "\n".join(lines)


@dataclass(frozen=True)
class Capacity:
    writes: list[WriteReplay]
    reads: list[ReadReplay]
    costs: list[RequestCost]
    seconds: float

    def report(self) -> str:
        return "\n\n".join(
            (
                "The population:\n\n" + population_table(),
                f"Per request ({DEFAULT_SHARDS} shards):\n\n" + costs_table(self.costs),
                "Writes, one simulated second per rate:\n\n" + sweep_table(self.writes),
                "Where it breaks:\n\n" + breaks_table(self.writes),
                f"Reads, {LIST_RATE:,} first pages/s among {READ_PUBLIC_RATE:,} public "
                "uploads/s:\n\n" + reads_table(self.reads),
                f"Lambda and S3 at {READ_PUBLIC_RATE:,} public uploads/s and {LIST_RATE:,} "
                "pages/s:\n\n" + s3_and_lambda_table(reference_mix()),
            )
        )


def _replay(task: tuple[str, int, bool]) -> WriteReplay | ReadReplay:
    kind, shards, quick = task
    if kind == "writes":
        return replay_writes(shards, PUBLIC_RATES[:4] if quick else PUBLIC_RATES)
    return replay_reads(shards, samples=200 if quick else 500)


def measure_capacity(quick: bool = False, workers: int = 2) -> Capacity:
    """Every replay, ``workers`` at a time (each is one process's work)."""
    from concurrent.futures import ProcessPoolExecutor

    started = time.perf_counter()
    tasks = [(kind, shards, quick) for kind in ("writes", "reads") for shards in SHARD_COUNTS]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        done = list(pool.map(_replay, tasks))
    writes = [replay for replay in done if isinstance(replay, WriteReplay)]
    reads = [replay for replay in done if isinstance(replay, ReadReplay)]
    return Capacity(writes, reads, request_costs(), time.perf_counter() - started)


def _shards(count: int) -> str:
    return "1 shard" if count == 1 else f"{count} shards"


def rows_of(capacity: Capacity) -> list[Row]:
    def at(shards: int, rate: int) -> Hottest:
        replay = next(r for r in capacity.writes if r.shards == shards)
        return max((h for h in replay.hottest if h.public_rate == rate), key=lambda h: h.units)

    rows = []
    for shards in SHARD_COUNTS:
        hot = at(shards, READ_PUBLIC_RATE)
        default = shards == DEFAULT_SHARDS
        rows.append(
            Row(
                FAMILY,
                f"hottest partition at {READ_PUBLIC_RATE:,} public uploads/s ({_shards(shards)})",
                hot.units,
                "WCU/s",
                target=f"< {WCU_LIMIT:,} WCU/s" if default else "",
                ok=(not hot.over) if default else None,
                note=_name(hot.where, hot.partition),
            )
        )
    for replay in capacity.writes:
        found = replay.first_over or replay.projected
        if found is None:
            continue
        rate, where, partition = found
        default = replay.shards == DEFAULT_SHARDS
        rows.append(
            Row(
                FAMILY,
                f"public uploads/s where a partition first passes {WCU_LIMIT:,} WCU/s "
                f"({_shards(replay.shards)})",
                float(rate),
                "uploads/s",
                target=f"> {READ_PUBLIC_RATE:,}/s" if default else "",
                ok=rate > READ_PUBLIC_RATE if default else None,
                note=_name(where, partition)
                + (
                    "" if replay.first_over else f" (projected; none up to {max(PUBLIC_RATES):,}/s)"
                ),
            )
        )
    for reads in capacity.reads:
        hot = max(reads.hottest, key=lambda h: h.units)
        default = reads.shards == DEFAULT_SHARDS
        rows.append(
            Row(
                FAMILY,
                f"hottest partition at {LIST_RATE:,} list requests/s ({_shards(reads.shards)})",
                hot.units,
                "RCU/s",
                target=f"< {RCU_LIMIT:,} RCU/s" if default else "",
                ok=hot.units < RCU_LIMIT if default else None,
                note=_name(hot.where, hot.partition),
            )
        )
    upload = capacity.costs[0]
    rows.append(Row(FAMILY, upload.request, upload.wcu, "WCU", note=upload.calls))
    return rows


def run(quick: bool) -> list[Row]:
    capacity = measure_capacity(quick)
    print(capacity.report(), flush=True)
    return rows_of(capacity)


def main() -> None:
    capacity = measure_capacity()
    print(capacity.report())
    print(f"\n({capacity.seconds:.0f} s)")


if __name__ == "__main__":
    main()
