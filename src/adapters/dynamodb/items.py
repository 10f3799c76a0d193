"""The table's items: their keys, the timelines an image is on, and how an image is written
to and read from them (see the package's docstring)."""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from imagecore.convert import format_instant, image_from_record, image_to_record, parse_instant
from imagecore.model import Image, Position, Visibility
from imagecore.query import fold_title

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
    )

Item = dict[str, "AttributeValueTypeDef"]

OWNER_INDEX = "owner_timeline"
PUBLIC_INDEX = "public_timeline"
CONTENT_INDEX = "content"
IMAGE_SK = "META"
TAG_SK = "TAG#"
KIND_SK = "KIND#"
TITLE_SK = "TITLE#"
CLAIM_SK = "CLAIM"
TTL_ATTRIBUTE = "expires_at"
TITLE_PREFIX_LENGTHS = (1, 2, 3)
DEFAULT_PUBLIC_SHARDS = 4
_INT_FIELDS = frozenset(field.name for field in attrs.fields(Image) if field.type in (int, "int"))
_IMAGE_FIELDS = tuple(field.name for field in attrs.fields(Image))

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def image_pk(image_id: str) -> str:
    return f"IMG#{image_id}"


def position_of(image_id: str, created_at: datetime) -> str:
    """Fixed-width instant, then the id: text order is list order."""
    return f"{format_instant(created_at)}#{image_id}"


def position_from(text: str) -> Position:
    """The list place a ``position`` attribute names."""
    instant, _, image_id = text.partition("#")
    return Position(parse_instant(instant), image_id)


@attrs.frozen
class Facet:
    """What narrows a timeline to the images with one value of one field: it names the
    timeline's partition (after the owner or the shard) and the sort key of the edge item that
    puts an image on it. The value comes last in the partition, so it may hold "#"."""

    letter: str
    value: str
    sort_key: str

    @property
    def suffix(self) -> str:
        return f"#{self.letter}#{self.value}"


def tag_facet(tag: str) -> Facet:
    return Facet("T", tag, TAG_SK + tag)


def kind_facet(content_type: str) -> Facet:
    return Facet("K", content_type, KIND_SK)


def title_facet(folded_title: str, length: int) -> Facet:
    """The images whose folded title begins with these ``length`` characters."""
    return Facet("N", folded_title[:length], f"{TITLE_SK}{length}")


def facets_of(image: Image) -> list[Facet]:
    """Every faceted timeline an active image is on: one per tag, its content type, and the
    first one, two and three characters of its title, so that those filters read only matches."""
    folded = fold_title(image.title)
    return [
        *(tag_facet(tag) for tag in dict.fromkeys(image.tags)),
        kind_facet(image.content_type),
        *(title_facet(folded, length) for length in TITLE_PREFIX_LENGTHS if len(folded) >= length),
    ]


def owner_timeline(user_id: str, visibility: Visibility, facet: Facet | None = None) -> str:
    # User ids cannot hold "#", so the facet's value, which can, comes last: nothing is ambiguous.
    base = f"O#{user_id}#{visibility.value}"
    return base if facet is None else base + facet.suffix


def public_shard(image_id: str, shards: int) -> int:
    """The shard of the public timelines an image is on, for good: its id decides."""
    return zlib.crc32(image_id.encode()) % shards


def public_timeline(shard: int, facet: Facet | None = None) -> str:
    """One shard of the public images (of one facet): no partition takes every public upload."""
    base = f"P{shard}"
    return base if facet is None else base + facet.suffix


def content_key(user_id: str, sha256: str) -> str:
    """The key of the index that finds a user's active images by the hash of their bytes."""
    return f"C#{user_id}#{sha256}"


def claim_key(image: Image) -> Item:
    """The key of the item that records which image holds the claim on its owner's bytes."""
    return {"pk": {"S": f"CLAIM#{image.user_id}#{image.sha256}"}, "sk": {"S": CLAIM_SK}}


def claim_item(image: Image) -> Item:
    return {**claim_key(image), "image_id": {"S": image.image_id}}


def claim_holder(item: Mapping[str, Any]) -> str:
    """The id of the image a claim item names."""
    return str(item["image_id"]["S"])


_JSON_FIELDS = frozenset({"metadata", "renditions", "placeholder", "location_patches"})
"""Fields kept as JSON text: DynamoDB has no floats (only Decimal) and would turn nested
numbers into Decimals; these are never filtered on."""


def _serialize(values: Mapping[str, Any]) -> Item:
    return {name: _serializer.serialize(value) for name, value in values.items()}


def image_item(image: Image, public_shards: int) -> Item:
    record = image_to_record(image)
    for name in _JSON_FIELDS:
        record[name] = json.dumps(record[name], ensure_ascii=False, separators=(",", ":"))
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
            values["public_timeline"] = public_timeline(public_shard(image.image_id, public_shards))
    forgettable = image.forgettable_after
    if forgettable is not None:
        # DynamoDB's time to live removes the item some time after this, with no Scan.
        values[TTL_ATTRIBUTE] = int(forgettable.timestamp())
    return _serialize(values)


def edge_item(image: Image, facet: Facet, public_shards: int) -> Item:
    values: dict[str, Any] = {
        "pk": image_pk(image.image_id),
        "sk": facet.sort_key,
        "position": position_of(image.image_id, image.created_at),
        "owner_timeline": owner_timeline(image.user_id, image.visibility, facet),
        # For the filters a timeline of another facet applies: the content type never changes,
        # and an edit of the title writes every edge again (the repository's replace).
        "content_type": image.content_type,
        "title_folded": fold_title(image.title),
    }
    if image.visibility is Visibility.PUBLIC:
        values["public_timeline"] = public_timeline(
            public_shard(image.image_id, public_shards), facet
        )
    return _serialize(values)


def edges_of(image: Image, public_shards: int) -> dict[str, Item]:
    """The edge items of an image by sort key: none unless it is active."""
    if not image.is_active:
        return {}
    return {facet.sort_key: edge_item(image, facet, public_shards) for facet in facets_of(image)}


def items_of(image: Image, public_shards: int) -> list[Item]:
    """Every item an image is stored as: the image first, then its edges. Its content claim,
    if it holds one, is apart: written only on a condition (the repository's add and replace)."""
    return [image_item(image, public_shards), *edges_of(image, public_shards).values()]


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def image_from_item(item: Mapping[str, Any]) -> Image:
    values = {name: _deserializer.deserialize(value) for name, value in item.items()}
    record = {name: _plain(values[name]) for name in _IMAGE_FIELDS if name in values}
    for name in _INT_FIELDS & record.keys():
        record[name] = int(record[name])
    for name in _JSON_FIELDS & record.keys():  # an item written before a field was may lack it
        record[name] = json.loads(record[name])
    return image_from_record(record)


def image_key(image_id: str) -> Item:
    return {"pk": {"S": image_pk(image_id)}, "sk": {"S": IMAGE_SK}}
