"""What a client says of a new image, validated, and what its EXIF adds to it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from imagecore import validation
from imagecore.commands import ImageFields
from imagecore.errors import InvalidInput
from imagecore.model import Image, ImageFacts, MetadataValue, Visibility


@attrs.frozen
class ImageDetails:
    """The validated fields of a new image."""

    filename: str
    title: str
    description: str
    tags: tuple[str, ...]
    metadata: dict[str, MetadataValue]
    visibility: Visibility

    @classmethod
    def validated(cls, fields: ImageFields, limits: validation.Limits) -> ImageDetails:
        return cls(
            filename=validation.filename(fields.filename, limits),
            title=validation.title(fields.title, limits),
            description=validation.description(fields.description, limits),
            tags=validation.tags(fields.tags, limits),
            metadata=validation.metadata(fields.metadata, limits),
            visibility=validation.visibility(fields.visibility),
        )

    @classmethod
    def of_slot(cls, slot: Image) -> ImageDetails:
        """The details a direct-upload slot keeps for the image it becomes."""
        return cls(
            filename=slot.filename,
            title=slot.title,
            description=slot.description,
            tags=slot.tags,
            metadata=dict(slot.metadata),
            visibility=slot.visibility,
        )

    def with_late(
        self, late_fields: Mapping[str, object] | None, limits: validation.Limits
    ) -> ImageDetails:
        """These details overridden by the fields that arrived after the bytes, validated."""
        if not late_fields:
            return self
        late = dict(late_fields)
        given = {**attrs.asdict(self, recurse=False), **late}
        return ImageDetails.validated(ImageFields(**given), limits)

    def metadata_with_exif(self, facts: ImageFacts, limits: validation.Limits) -> dict[str, Any]:
        """The client's metadata plus what the EXIF says, where the client said nothing; the
        EXIF is left out if the two together would break a metadata limit."""
        merged = {**exif_metadata(facts), **self.metadata}
        try:
            return validation.metadata(merged, limits)
        except InvalidInput:
            return self.metadata


def exif_metadata(facts: ImageFacts) -> dict[str, MetadataValue]:
    """The metadata an image's EXIF fills in (camera_make, camera_model, captured_at,
    gps_latitude, gps_longitude), where it has them."""
    found: dict[str, MetadataValue] = {
        "camera_make": facts.camera_make,
        "camera_model": facts.camera_model,
        "captured_at": facts.captured_at,
    }
    if facts.position is not None:
        found["gps_latitude"] = facts.position.latitude
        found["gps_longitude"] = facts.position.longitude
    return {key: value for key, value in found.items() if value is not None}
