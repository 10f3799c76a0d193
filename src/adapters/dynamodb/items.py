"""The table's items: their keys, the timelines an image is on, and how an image is written
to and read from them (see the package's docstring)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from imagecore.convert import format_instant, image_from_record, image_to_record
from imagecore.model import Image, Visibility
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
CLAIM_SK = "CLAIM"
_INT_FIELDS = frozenset(field.name for field in attrs.fields(Image) if field.type in (int, "int"))
_IMAGE_FIELDS = tuple(field.name for field in attrs.fields(Image))

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


def claim_key(image: Image) -> Item:
    """The key of the item that records which image holds the claim on its owner's bytes."""
    return {"pk": {"S": f"CLAIM#{image.user_id}#{image.sha256}"}, "sk": {"S": CLAIM_SK}}


def claim_item(image: Image) -> Item:
    return {**claim_key(image), "image_id": {"S": image.image_id}}


def claim_holder(item: Mapping[str, Any]) -> str:
    """The id of the image a claim item names."""
    return str(item["image_id"]["S"])


def _serialize(values: Mapping[str, Any]) -> Item:
    return {name: _serializer.serialize(value) for name, value in values.items()}


def image_item(image: Image) -> Item:
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


def edge_item(image: Image, tag: str) -> Item:
    values: dict[str, Any] = {
        "pk": image_pk(image.image_id),
        "sk": TAG_SK + tag,
        "position": position_of(image.image_id, image.created_at),
        "owner_timeline": owner_timeline(image.user_id, image.visibility, tag),
        # Never changes after upload, so an edge can carry it for the content_type filter.
        "content_type": image.content_type,
    }
    if image.visibility is Visibility.PUBLIC:
        values["public_timeline"] = public_timeline(tag)
    return _serialize(values)


def items_of(image: Image) -> list[Item]:
    """Every item an image is stored as: the image first, then one edge per tag if active.
    Its content claim, if it holds one, is apart: written only on a condition (the repository's
    add and replace)."""
    edges = [edge_item(image, tag) for tag in dict.fromkeys(image.tags)] if image.is_active else []
    return [image_item(image), *edges]


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
    record["metadata"] = json.loads(record["metadata"])
    return image_from_record(record)


def image_key(image_id: str) -> Item:
    return {"pk": {"S": image_pk(image_id)}, "sk": {"S": IMAGE_SK}}
