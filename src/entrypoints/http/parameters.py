"""The fields of a request's query string and form text, parsed into what the commands take."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

from entrypoints.http.client_json import decode_json
from imagecore.errors import InvalidInput
from imagecore.ports import UploadLinkVerifier

UPLOAD_TEXT_FIELDS = ("title", "description", "tags", "metadata", "visibility")
RAW_UPLOAD_PARAMETERS = ("filename", *UPLOAD_TEXT_FIELDS)
LIST_PARAMETERS = (
    "user_id",
    "tags",
    "content_type",
    "title",
    "start_date",
    "end_date",
    "order",
    "limit",
    "cursor",
)
CONTENT_TYPE_FIELD = "Content-Type"
"""The field of an upload link's form that may name the file's type, as in S3's POST form."""


def link_fields(verifier: UploadLinkVerifier) -> tuple[str, ...]:
    """What a post to an upload link may carry besides the file: the fields the link carries
    and the file's Content-Type."""
    return (*verifier.field_names, CONTENT_TYPE_FIELD)


def tags_field(text: str | None) -> object:
    """Tags as a JSON array, or as comma-separated text."""
    if text is None:
        return None
    if text.lstrip().startswith("["):
        return decode_json(text, "tags")
    return text.split(",")


def json_field(text: str | None, name: str) -> object:
    if text is None:
        return None
    return decode_json(text, name)


def upload_fields(text: Mapping[str, str]) -> dict[str, Any]:
    """The command's fields from the text a form or a query string carries."""
    fields: dict[str, Any] = {
        name: value for name, value in text.items() if name in ("title", "description")
    }
    if "visibility" in text:
        fields["visibility"] = text["visibility"]
    if "tags" in text:
        fields["tags"] = tags_field(text["tags"])
    if "metadata" in text:
        fields["metadata"] = json_field(text["metadata"], "metadata")
    if "filename" in text:
        fields["filename"] = text["filename"]
    return fields


def single_parameters(request: Request, allowed: tuple[str, ...]) -> dict[str, str]:
    """The query parameters, each of them one of ``allowed`` and given once."""
    given: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name not in allowed:
            raise InvalidInput(f"unknown parameter {name!r}: use {', '.join(allowed)}")
        if name in given:
            raise InvalidInput(f"give the parameter {name!r} once")
        given[name] = value
    return given


def content_sha256(request: Request) -> str | None:
    """The hash of the bytes a client says it is about to send: ``X-Content-SHA256``, or the
    content ETag of a download (``If-None-Match: "<sha256>"``)."""
    declared = request.headers.get("x-content-sha256")
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        tag = if_none_match.strip().removeprefix("W/").strip('"')
        if declared is not None and declared.strip().lower() != tag.lower():
            raise InvalidInput("X-Content-SHA256 and If-None-Match name different contents")
        declared = tag
    return declared


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()
