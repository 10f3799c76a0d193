"""The one cattrs converter: models to and from plain JSON-ready data, configured once.

Instants travel as ISO-8601 in UTC with a ``Z`` and microseconds, so text order is time order.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import attrs
import cattrs

from imagecore.model import (
    Image,
    ImageState,
    MetadataValue,
    SortOrder,
    ThumbnailStatus,
    Visibility,
)

converter = cattrs.Converter()


# Every image read or listed passes through these two, twice each, so they avoid strftime and
# needless conversions: a page of 50 spent a tenth of its time here.
def format_instant(moment: datetime) -> str:
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"  # "+00:00" -> "Z"


def parse_instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text)  # takes the "Z" since Python 3.11
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


converter.register_unstructure_hook(datetime, format_instant)
converter.register_structure_hook(datetime, lambda value, _: parse_instant(value))
# Metadata values are validated scalars already; cattrs need only copy the object.
converter.register_unstructure_hook_func(
    lambda cls: cls == Mapping[str, MetadataValue], lambda value: dict(value)
)
converter.register_structure_hook_func(
    lambda cls: cls == Mapping[str, MetadataValue], lambda value, _: dict(value)
)
converter.register_unstructure_hook_func(lambda cls: cls == tuple[str, ...], list)
# Bytes (a location patch's) are stored as base64 text, which every store keeps as is.
converter.register_unstructure_hook(bytes, lambda value: base64.b64encode(value).decode())
converter.register_structure_hook(bytes, lambda value, _: base64.b64decode(value))
for _enum in (Visibility, ThumbnailStatus, ImageState, SortOrder):
    converter.register_unstructure_hook(_enum, lambda member: member.value)

_INTERNAL_FIELDS = (
    "blob_key",
    "state",
    "edit_version",
    "claims_content",
    "resumable_until",
    "upload_handle",
    "location_patches",
)
RESOURCE_FIELDS: tuple[str, ...] = tuple(
    field.name for field in attrs.fields(Image) if field.name not in _INTERNAL_FIELDS
)
"""The fields of an image as the API shows it."""


def image_to_record(image: Image) -> dict[str, Any]:
    """Every field, for storage."""
    record: dict[str, Any] = converter.unstructure(image)
    return record


def image_from_record(record: Mapping[str, Any]) -> Image:
    return converter.structure(record, Image)


def image_to_resource(image: Image) -> dict[str, Any]:
    """The public representation of an image: what the API returns. Its renditions are an
    object by name, each with the path that serves it."""
    resource = image_to_record(image)
    for field in _INTERNAL_FIELDS:
        del resource[field]
    resource["renditions"] = {
        rendition.name: {
            "width": rendition.width,
            "height": rendition.height,
            "content_types": list(rendition.content_types),
            "url": f"/images/{image.image_id}/renditions/{rendition.name}",
        }
        for rendition in image.renditions
    }
    return resource
