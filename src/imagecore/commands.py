"""What a caller asks the use cases for, as it arrived: the use cases validate every field."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import Enum
from typing import Final

import attrs

from imagecore.errors import InvalidInput


def _known_fields(
    data: object, known: Sequence[str], refusal: Callable[[str], str]
) -> dict[str, object]:
    """A JSON body's fields, when it is an object of ``known`` fields only; else InvalidInput,
    with ``refusal`` given the unknown ones, sorted and joined."""
    if not isinstance(data, Mapping):
        raise InvalidInput("the body must be a JSON object")
    unknown = sorted(str(key) for key in data if key not in known)
    if unknown:
        raise InvalidInput(refusal(", ".join(unknown)))
    return {str(key): value for key, value in data.items()}


class _Unset(Enum):
    UNSET = "UNSET"


UNSET: Final = _Unset.UNSET
"""A field the caller left out, as opposed to one it set to null."""


@attrs.frozen
class ImageFields:
    """What a client says about a new image, as it arrived (unvalidated)."""

    filename: object = None
    title: object = None
    description: object = None
    tags: object = None
    metadata: object = None
    visibility: object = None


@attrs.frozen
class NewUpload(ImageFields):
    """A new image about to be sent: what the client says about it before its bytes.

    ``content_sha256`` is the SHA-256 the client says the bytes have: if the caller already has
    an image with those bytes, it is the answer and the bytes are not read; otherwise the bytes
    must have that hash.
    """

    content_sha256: object = None


@attrs.frozen
class UploadCommand(NewUpload):
    """A new image with its bytes as chunks, all at once.

    ``late_fields`` gives the fields that arrive only after the bytes (a form that sends the
    file first); it is called once the bytes are read, and what it returns overrides the fields
    given before.
    """

    chunks: Iterable[bytes] = attrs.field(kw_only=True)
    late_fields: Callable[[], Mapping[str, object]] | None = None


@attrs.frozen
class DirectUploadCommand(ImageFields):
    """A request for a direct upload slot: what the client says of the file to come.

    ``sha256`` is the SHA-256 the client says the file has: if the caller already has an image
    with those bytes, it is the answer and no slot is made; otherwise the bytes that fill the
    slot must have that hash.
    """

    content_type: object = None
    size: object = None
    sha256: object = None

    @classmethod
    def from_mapping(cls, data: object) -> DirectUploadCommand:
        known = [field.name for field in attrs.fields(cls)]
        given = _known_fields(
            data, known, lambda unknown: f"unknown fields {unknown}: send {', '.join(known)}"
        )
        return cls(**given)


@attrs.frozen
class NewResumableUpload(ImageFields):
    """A resumable upload about to begin: what the client says of the file to come.

    ``size`` is the file's size in bytes, required. ``sha256`` is as a direct upload's: the
    bytes must have that hash, and an image of the caller's with it makes the upload end with
    that image. ``content_type`` is a hint only: what the bytes are is read from them."""

    size: object = None
    sha256: object = None
    content_type: object = None


@attrs.frozen
class NewMultipartUpload(NewResumableUpload):
    """A resumable upload whose bytes go straight to the blob store in parts (S3's multipart
    upload): the same fields as any resumable upload."""

    @classmethod
    def from_mapping(cls, data: object) -> NewMultipartUpload:
        known = [field.name for field in attrs.fields(cls)]
        given = _known_fields(
            data, known, lambda unknown: f"unknown fields {unknown}: send {', '.join(known)}"
        )
        return cls(**given)


@attrs.frozen
class PartUrlsRequest:
    """The parts of a multipart upload a client asks URLs for, as it arrived: ``parts`` should
    be a list of objects, each a part's ``number`` and the base64 ``sha256`` of its bytes."""

    parts: object = None

    @classmethod
    def from_mapping(cls, data: object) -> PartUrlsRequest:
        given = _known_fields(
            data, ["parts"], lambda unknown: f"unknown fields {unknown}: send parts"
        )
        return cls(**given)


UPDATABLE_FIELDS = ("title", "description", "tags", "metadata", "visibility", "share_location")


@attrs.frozen
class UpdateCommand:
    """The fields a client wants changed; UNSET ones stay as they are."""

    title: object = UNSET
    description: object = UNSET
    tags: object = UNSET
    metadata: object = UNSET
    visibility: object = UNSET
    share_location: object = UNSET

    @classmethod
    def from_mapping(cls, data: object) -> UpdateCommand:
        given = _known_fields(
            data,
            UPDATABLE_FIELDS,
            lambda unknown: (
                f"cannot update {unknown}: only {', '.join(UPDATABLE_FIELDS)} may change"
            ),
        )
        return cls(**given)
