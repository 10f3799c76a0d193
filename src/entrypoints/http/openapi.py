"""The OpenAPI 3.1 document of the HTTP API, written once and served at /openapi.json.

The entrypoint tests check it against the running app: every route is documented, every
documented route exists, and responses validate against these schemas.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from entrypoints.http.errors import error_codes
from entrypoints.http.parameters import CONTENT_TYPE_FIELD, RAW_UPLOAD_PARAMETERS
from imagecore.convert import RESOURCE_FIELDS
from imagecore.health import HEALTHY
from imagecore.model import (
    ACCEPTED_CONTENT_TYPES,
    RENDITION_CONTENT_TYPES,
    SortOrder,
    ThumbnailStatus,
    Visibility,
)
from imagecore.multipart import MAX_PART_URLS, MAX_PARTS, MIN_PART_BYTES
from imagecore.query import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from imagecore.thumbnails import RENDITION_NAMES, THUMBNAIL_CONTENT_TYPES
from imagecore.validation import CONTENT_SHA256, DEFAULT_LIMITS, IMAGE_ID, USER_ID

IMAGES, THUMBNAILS, UPLOADS, HEALTH, PAGES = "images", "thumbnails", "uploads", "health", "pages"
RESUMABLE = "resumable"
SESSIONS = "sessions"
TAGS = [
    {
        "name": IMAGES,
        "description": "Upload, list, read, download, change and delete images and their metadata",
    },
    {"name": THUMBNAILS, "description": "The renditions made in the background"},
    {
        "name": UPLOADS,
        "description": "Direct uploads of large files: a slot, then the bytes sent to its URL",
    },
    {
        "name": RESUMABLE,
        "description": (
            "Uploads of any size that survive a dropped connection, by the tus 1.0 protocol "
            "(https://tus.io/protocols/resumable-upload) at /files/: any tus client works "
            "unchanged. Embedded server only (on AWS the bytes go to S3, never through the API)"
        ),
    },
    {
        "name": SESSIONS,
        "description": (
            "Uploads of any size, resumable, whose bytes go straight to S3 in parts (an S3 "
            "multipart upload) and never through the API: open a session, ask for presigned "
            "part URLs, PUT the parts, list what arrived to resume, complete. AWS only (the "
            "embedded server answers 400 here: it takes resumable uploads by tus at /files/)"
        ),
    },
    {"name": HEALTH, "description": "Whether the service and its stores answer"},
    {
        "name": PAGES,
        "description": "This document, the docs page, the gallery and their icon: no token needed",
    },
]
"""The groups of operations the docs page shows, in this order: every operation has one."""


def _whole(pattern: re.Pattern[str]) -> str:
    """A validation regex (matched whole, with fullmatch) as a JSON Schema pattern."""
    return f"^(?:{pattern.pattern})$"


def _enum(values: type[StrEnum]) -> list[str]:
    return [value.value for value in values]


def _error(description: str, **extra: Any) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        **extra,
    }


def _json(schema_name: str, description: str, **extra: Any) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}
        },
        **extra,
    }


def _header(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """A header the server always sends with the response it is documented on."""
    return {"required": True, "schema": schema or {"type": "string"}, "description": description}


_ETAG_HEADER = {
    "ETag": _header("The version as an ETag", {"type": "string", "pattern": '^"v[0-9]+"$'})
}
_LOCATION_HEADER = {
    "Location": _header("The image's URL", {"type": "string", "pattern": "^/images/"})
}
_IMAGE_ID = {
    "name": "image_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "The image's id (a ULID)",
}
_WWW_AUTHENTICATE = {"WWW-Authenticate": _header("The scheme to authenticate with: Bearer")}
_RATE_LIMITED = {
    "429": _error(
        "Too many requests from this caller: retry after Retry-After seconds",
        headers={
            "Retry-After": _header(
                "Seconds until the next request is taken", {"type": "integer", "minimum": 1}
            )
        },
    )
}
_AUTH_ERRORS = {
    "401": _error("No token, or a token this server does not accept", headers=_WWW_AUTHENTICATE),
    **_RATE_LIMITED,
}
_NOT_FOUND = {"404": _error("No such image, or not visible to the caller")}
_BODY_TIMEOUT = {
    "408": _error(
        "The client stopped sending the request body for IMAGECORE_CLIENT_TIMEOUT_SECONDS, or "
        "sent it slower than IMAGECORE_CLIENT_MIN_BYTES_PER_SECOND"
    )
}
_UPLOADS_BUSY = {
    "503": _error(
        "The server has IMAGECORE_MAX_UPLOADS uploads under way: retry after Retry-After "
        "seconds (a caller's own IMAGECORE_MAX_UPLOADS_PER_USER uploads under way get 429)",
        headers={
            "Retry-After": _header(
                "Seconds until an upload may be tried again", {"type": "integer", "minimum": 1}
            )
        },
    )
}
_STORAGE_FULL = {
    "507": _error(
        "The server's storage is full: nothing was kept. Deleting images makes room; "
        "GET /health reports it"
    )
}

_LIMITS = DEFAULT_LIMITS
_REFUSED_TEXT = (
    "Refused with 400, naming the field: control characters, bidirectional embeddings, "
    "overrides and isolates (U+202A to U+202E, U+2066 to U+2069) and invisible characters "
    "(zero-width space, word joiner, byte order mark, soft hyphen, Mongolian vowel separator, "
    "Hangul fillers, tag characters outside a subdivision flag and the like). Kept, as real "
    "text needs them: ZWNJ, ZWJ, LRM, RLM, ALM, variation selectors and subdivision flags."
)
_TITLE = {
    "type": "string",
    "maxLength": _LIMITS.max_title_length,
    "description": f"Kept in NFC and trimmed; the limit counts characters as kept. {_REFUSED_TEXT}",
}
_DESCRIPTION = {
    "type": "string",
    "maxLength": _LIMITS.max_description_length,
    "description": (
        "Kept in NFC and trimmed, with its tabs and line breaks; other characters are refused "
        "as in title"
    ),
}
_TAG_RULE = (
    "Each tag is kept in its compatibility caseless form (Unicode's: NFKC and case folding), "
    "its white space collapsed: BEACH, beach and a fullwidth beach are one tag, once. No commas "
    "(nor fullwidth ones); characters are refused as in title."
)
_TAG = {"type": "string", "maxLength": _LIMITS.max_tag_length, "description": _TAG_RULE}
_TAGS_GIVEN = {"type": "array", "items": {"type": "string"}, "description": _TAG_RULE}
"""Tags as a client sends them: any length, as the limits count them once kept."""
_FILENAME_RULE = (
    "Only shown back, never a path: the last path component, in NFC, with the characters a "
    "title refuses removed rather than refused"
)
_BINARY = {"type": "string", "format": "binary", "contentMediaType": "application/octet-stream"}
"""A file part: any bytes (``format: binary`` tells generators it is a file, not text)."""


_SHARE_LOCATION_RULE = (
    "Whether everyone who may see the image also sees where it was taken. Off (the default): "
    "to anyone but the owner, metadata keys starting with gps_ and camera_serial are left out, "
    "and the original they download has the file's own GPS record and camera serial numbers "
    "(EXIF, XMP) blanked, its pixels and size unchanged. The owner turns it on with PATCH"
)


def _image_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(RESOURCE_FIELDS),
        "properties": {
            "image_id": {"type": "string", "pattern": _whole(IMAGE_ID)},
            "user_id": {
                "type": "string",
                "pattern": _whole(USER_ID),
                "maxLength": _LIMITS.max_user_id_length,
            },
            "filename": {
                "type": "string",
                "maxLength": _LIMITS.max_filename_length,
                "description": _FILENAME_RULE,
            },
            "content_type": {"type": "string", "enum": list(ACCEPTED_CONTENT_TYPES)},
            "size": {"type": "integer", "minimum": 1},
            "width": {"type": "integer", "minimum": 1},
            "height": {"type": "integer", "minimum": 1},
            "sha256": {"type": "string", "pattern": _whole(CONTENT_SHA256)},
            "title": _TITLE,
            "description": _DESCRIPTION,
            "tags": {"type": "array", "maxItems": _LIMITS.max_tags, "items": _TAG},
            "metadata": {"$ref": "#/components/schemas/Metadata"},
            "visibility": {"$ref": "#/components/schemas/Visibility"},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "version": {"type": "integer", "minimum": 1},
            "thumbnail_status": {"type": "string", "enum": _enum(ThumbnailStatus)},
            "renditions": {
                "type": "object",
                "description": (
                    "The scaled copies made with the thumbnail, by name (thumbnail: longest side "
                    "256 px by default; preview: 1,440 px), each in the formats listed, best "
                    "first; empty until the thumbnail is ready"
                ),
                "propertyNames": {"enum": list(RENDITION_NAMES)},
                "additionalProperties": {"$ref": "#/components/schemas/Rendition"},
            },
            "placeholder": {
                "oneOf": [{"$ref": "#/components/schemas/Placeholder"}, {"type": "null"}],
                "description": "What to draw before the image loads; null until the thumbnail "
                "is ready (or if it failed)",
            },
            "share_location": {
                "type": "boolean",
                "description": _SHARE_LOCATION_RULE,
            },
        },
    }


def _components() -> dict[str, Any]:
    scalar = {"type": ["string", "number", "integer", "boolean", "null"]}
    return {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error", "message", "request_id"],
                "properties": {
                    "error": {"type": "string", "enum": error_codes()},
                    "message": {"type": "string"},
                    "request_id": {
                        "type": "string",
                        "description": "The request's id, also in the X-Request-ID header and "
                        "in every log line made while serving it; behind API Gateway, the "
                        "gateway's own request id (its access log's requestId).",
                    },
                },
            },
            "Visibility": {"type": "string", "enum": _enum(Visibility)},
            "Rendition": {
                "type": "object",
                "additionalProperties": False,
                "required": ["width", "height", "content_types", "url"],
                "properties": {
                    "width": {"type": "integer", "minimum": 1},
                    "height": {"type": "integer", "minimum": 1},
                    "content_types": {
                        "type": "array",
                        "items": {"type": "string", "enum": list(RENDITION_CONTENT_TYPES)},
                        "description": "The formats it is kept in, best first",
                    },
                    "url": {
                        "type": "string",
                        "description": "Where it is served: GET it with the Accept header",
                    },
                },
            },
            "Placeholder": {
                "type": "object",
                "additionalProperties": False,
                "required": ["blurhash", "dominant_color", "aspect_ratio"],
                "properties": {
                    "blurhash": {
                        "type": "string",
                        "description": "A blurhash (https://blurha.sh) of 4 x 3 components",
                    },
                    "dominant_color": {"type": "string", "pattern": "^#[0-9a-f]{6}$"},
                    "aspect_ratio": {
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "description": "Width over height, as the image is shown (upright)",
                    },
                },
            },
            "Metadata": {
                "type": "object",
                "description": (
                    "A flat JSON object: values are strings, numbers, booleans or null. Keys "
                    "and string values are kept in NFC, not folded further (two spellings of "
                    "one key are refused); characters are refused as in title, but values may "
                    "hold tabs and line breaks"
                ),
                "maxProperties": _LIMITS.max_metadata_keys,
                "additionalProperties": scalar,
            },
            "Image": _image_schema(),
            "ImagePage": {
                "type": "object",
                "required": ["images", "count", "next_cursor"],
                "additionalProperties": False,
                "properties": {
                    "images": {"type": "array", "items": {"$ref": "#/components/schemas/Image"}},
                    "count": {"type": "integer", "minimum": 0, "maximum": MAX_PAGE_SIZE},
                    "next_cursor": {
                        "type": ["string", "null"],
                        "description": (
                            "The cursor of the next page; null only at the end of the list. A"
                            " page may hold fewer images than limit, even none, and still have a"
                            " next_cursor: one request reads at most max(4 x limit, 200) index"
                            " entries on DynamoDB (50 times as many on the embedded SQLite), so"
                            " a rare match is found over several pages. Follow next_cursor until"
                            " it is null."
                        ),
                    },
                },
            },
            "ImageUpdate": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "title": _TITLE,
                    "description": _DESCRIPTION,
                    "tags": _TAGS_GIVEN,
                    "metadata": {"$ref": "#/components/schemas/Metadata"},
                    "visibility": {"$ref": "#/components/schemas/Visibility"},
                    "share_location": {"type": "boolean", "description": _SHARE_LOCATION_RULE},
                },
            },
            "Upload": {
                "type": "object",
                "required": ["file"],
                "additionalProperties": False,
                "properties": {
                    "file": {
                        **_BINARY,
                        "description": (
                            "The image: JPEG, PNG, GIF, WebP, HEIC or AVIF, decided from the bytes"
                        ),
                    },
                    "title": _TITLE,
                    "description": _DESCRIPTION,
                    "tags": {
                        "type": "string",
                        "description": (
                            f"Comma-separated tags, or a JSON array of strings. {_TAG_RULE}"
                        ),
                    },
                    "metadata": {"type": "string", "description": "A flat JSON object, as text"},
                    "visibility": {"$ref": "#/components/schemas/Visibility"},
                },
            },
            "UploadRequest": {
                "type": "object",
                "required": ["content_type"],
                "additionalProperties": False,
                "properties": {
                    "content_type": {"type": "string", "enum": list(ACCEPTED_CONTENT_TYPES)},
                    "size": {"type": "integer", "minimum": 1, "description": "In bytes"},
                    "sha256": {
                        "type": "string",
                        "pattern": "^[0-9a-fA-F]{64}$",
                        "description": (
                            "The SHA-256 of the file. If the caller already has an image with "
                            "these bytes, it is the answer (200) and no slot is made; otherwise "
                            "the file sent to the slot must have this hash"
                        ),
                    },
                    "filename": {"type": "string", "description": _FILENAME_RULE},
                    "title": _TITLE,
                    "description": _DESCRIPTION,
                    "tags": _TAGS_GIVEN,
                    "metadata": {"$ref": "#/components/schemas/Metadata"},
                    "visibility": {"$ref": "#/components/schemas/Visibility"},
                },
            },
            "UploadSlot": {
                "type": "object",
                "required": ["upload_id", "url", "fields", "expires_at", "max_bytes", "image_url"],
                "additionalProperties": False,
                "properties": {
                    "upload_id": {"type": "string", "pattern": _whole(IMAGE_ID)},
                    "url": {
                        "type": "string",
                        "description": "POST here: multipart/form-data, the fields, then 'file'",
                    },
                    "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                    "expires_at": {"type": "string", "format": "date-time"},
                    "max_bytes": {"type": "integer", "minimum": 1},
                    "image_url": {
                        "type": "string",
                        "description": "Where the image appears once its bytes passed validation",
                    },
                },
            },
            **_session_schemas(),
            "LinkUpload": {
                "type": "object",
                "required": ["expires", "signature", "file"],
                "additionalProperties": False,
                "description": (
                    "The fields POST /uploads gave, then the file. The file part's Content-Type, "
                    "or the Content-Type field, must be an image/ type."
                ),
                "properties": {
                    "expires": {"type": "string"},
                    "signature": {"type": "string"},
                    CONTENT_TYPE_FIELD: {"type": "string", "pattern": "^image/"},
                    "file": _BINARY,
                },
            },
            "Health": {
                "type": "object",
                "required": ["status", "checks"],
                "additionalProperties": False,
                "properties": {
                    "status": {"type": "string", "enum": ["ok", "failing"]},
                    "checks": {
                        "type": "object",
                        "description": (
                            'Each store\'s state: "ok", or a short text saying what failed'
                        ),
                        "required": ["metadata", "blobs", "space"],
                        "additionalProperties": False,
                        "properties": {
                            "metadata": {"type": "string", "minLength": 1},
                            "blobs": {"type": "string", "minLength": 1},
                            "space": {
                                "type": "string",
                                "minLength": 1,
                                "description": (
                                    'Room for new images: "ok", or "full: ..." when the '
                                    "embedded server's disk is full (uploads and other writes "
                                    "then get 507; deletes still work)"
                                ),
                            },
                        },
                    },
                },
            },
        },
    }


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _image_links() -> dict[str, Any]:
    """Where a new image's id leads: the operations on it, for clients and stateful testing."""
    image_id = {"image_id": "$response.body#/image_id"}
    return {
        name: {"operationId": operation, "parameters": image_id}
        for name, operation in (
            ("GetImage", "getImage"),
            ("DownloadImage", "downloadImage"),
            ("ImageThumbnail", "imageThumbnail"),
            ("UpdateImage", "updateImage"),
            ("DeleteImage", "deleteImage"),
        )
    }


def _health(status: str, description: str) -> dict[str, Any]:
    properties: dict[str, Any] = {"status": {"const": status}}
    if status == "ok":
        properties["checks"] = {"additionalProperties": {"const": HEALTHY}}
    refined = {"properties": properties}
    return {
        "description": description,
        "content": {
            "application/json": {
                "schema": {"allOf": [{"$ref": "#/components/schemas/Health"}, refined]}
            }
        },
    }


def _upload_id(description: str) -> dict[str, Any]:
    """The ``upload_id`` path parameter of an upload slot, a tus upload or a session."""
    return {
        "name": "upload_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": description,
    }


def _header_parameter(
    name: str, description: str, schema: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "schema": schema or {"type": "string"},
        "description": description,
    }


def _paths() -> dict[str, Any]:
    secured: list[dict[str, list[str]]] = [{"bearer": []}]
    download_headers = {
        "ETag": _header("The content's entity tag (the SHA-256 of the bytes)"),
        "Content-Disposition": _header("attachment, with the image's filename"),
    }
    partial_headers = {
        **download_headers,
        "Content-Range": _header(
            "The range sent, of the whole size", {"type": "string", "pattern": "^bytes [0-9]+-"}
        ),
    }
    redirect_headers = {
        "Location": _header("A short-lived presigned URL of the bytes"),
        "ETag": _header("The content's entity tag"),
    }
    not_modified = {
        "description": "Not modified since the ETag in If-None-Match",
        "headers": {"ETag": _header("The content's entity tag")},
    }
    conditional_download = [
        _header_parameter(
            "Range",
            "One byte range: bytes=FIRST-LAST, FIRST- or -SUFFIX (anything else is ignored)",
            {"type": "string", "pattern": "^bytes=([0-9]{1,12}-[0-9]{0,12}|-[0-9]{1,12})$"},
        ),
        _header_parameter("If-Range", "Honour Range only while the ETag is still this one"),
        _header_parameter("If-None-Match", "304 if the ETag is one of these"),
    ]
    binary = {ct: {"schema": {**_BINARY, "contentMediaType": ct}} for ct in ACCEPTED_CONTENT_TYPES}
    raw_image = {"image/*": {"schema": {**_BINARY, "contentMediaType": "image/*"}}}
    content_hash = {
        "name": "X-Content-SHA256",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
        "description": (
            "The SHA-256 of the file. If the caller already has an image with these bytes, it "
            "is the answer (200) and the file is not read; otherwise the bytes must match"
        ),
    }
    content_etag = {
        "name": "If-None-Match",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "pattern": '^(W/)?"[0-9a-fA-F]{64}"$'},
        "description": 'The same as X-Content-SHA256, written as a download\'s ETag: "<sha256>"',
    }
    raw_parameters = [
        _query(name, f"With a raw image body: the {name}", {"type": "string"})
        for name in RAW_UPLOAD_PARAMETERS
    ]
    return {
        "/health": {
            "get": {
                "operationId": "health",
                "tags": [HEALTH],
                "summary": "Whether the service is up",
                "responses": {
                    "200": _health("ok", "Every store the service needs answers"),
                    "503": _health(
                        "failing",
                        "A store does not answer, or the disk is full: checks says which",
                    ),
                },
            }
        },
        "/images": {
            "post": {
                "operationId": "uploadImage",
                "tags": [IMAGES],
                "summary": "Upload an image with its metadata",
                "description": (
                    "As multipart/form-data, or as the raw bytes with an image/* Content-Type "
                    "and the fields as query parameters. The bytes are streamed to storage "
                    "as they arrive; EXIF camera, capture time and GPS position fill in "
                    "metadata the client did not set."
                ),
                "security": secured,
                "parameters": [content_hash, content_etag, *raw_parameters],
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {"schema": {"$ref": "#/components/schemas/Upload"}},
                        **raw_image,
                    },
                },
                "responses": {
                    "200": _json(
                        "Image",
                        "The caller already has an image with the bytes X-Content-SHA256 names",
                        headers={
                            **_ETAG_HEADER,
                            "Content-Location": _header("The image's URL"),
                        },
                        links=_image_links(),
                    ),
                    "201": _json(
                        "Image",
                        "The image was stored",
                        headers={**_ETAG_HEADER, **_LOCATION_HEADER},
                        links=_image_links(),
                    ),
                    "400": _error("Malformed form or invalid metadata, or an empty file"),
                    **_AUTH_ERRORS,
                    **_BODY_TIMEOUT,
                    "409": _error(
                        "An image with the bytes X-Content-SHA256 names was stored by a "
                        "concurrent upload and deleted before this one finished: try again"
                    ),
                    "413": _error("The file is larger than IMAGECORE_MAX_UPLOAD_BYTES"),
                    "415": _error(
                        "Not multipart/form-data or image/*, not a JPEG, PNG, GIF, WebP, HEIC or "
                        "AVIF, or more pixels than IMAGECORE_MAX_IMAGE_PIXELS"
                    ),
                    **_UPLOADS_BUSY,
                    **_STORAGE_FULL,
                },
            },
            "get": {
                "operationId": "listImages",
                "tags": [IMAGES],
                "summary": "List the caller's images and everyone's public ones, newest first",
                "security": secured,
                "parameters": [
                    _query("user_id", "Only this user's images", {"type": "string"}),
                    _query(
                        "tags",
                        "Comma-separated; an image must carry all. Each is compared in the form "
                        "tags are kept in (compatibility caseless), so BEACH finds beach",
                        {"type": "string"},
                    ),
                    _query(
                        "content_type",
                        "Only this type",
                        {"type": "string", "enum": list(ACCEPTED_CONTENT_TYPES)},
                    ),
                    _query(
                        "title",
                        "Title prefix, compared compatibility caseless as tags are: any case, "
                        "and fullwidth or other compatibility characters as their plain ones",
                        {"type": "string"},
                    ),
                    _query(
                        "start_date",
                        "ISO-8601 date or date-time; created at or after",
                        {"type": "string"},
                    ),
                    _query(
                        "end_date",
                        "ISO-8601 date (the whole day) or date-time; at or before",
                        {"type": "string"},
                    ),
                    _query(
                        "order",
                        "By creation time",
                        {
                            "type": "string",
                            "enum": _enum(SortOrder),
                            "default": SortOrder.DESC.value,
                        },
                    ),
                    _query(
                        "limit",
                        "Page size",
                        {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": MAX_PAGE_SIZE,
                            "default": DEFAULT_PAGE_SIZE,
                        },
                    ),
                    _query("cursor", "next_cursor of the previous page", {"type": "string"}),
                ],
                "responses": {
                    "200": _json("ImagePage", "One page of images"),
                    "400": _error("An invalid filter, or a cursor of other filters or callers"),
                    **_AUTH_ERRORS,
                },
            },
        },
        "/images/{image_id}": {
            "parameters": [_IMAGE_ID],
            "get": {
                "operationId": "getImage",
                "tags": [IMAGES],
                "summary": "An image's metadata",
                "security": secured,
                "parameters": [
                    _header_parameter("If-None-Match", "304 if the ETag is one of these")
                ],
                "responses": {
                    "200": _json("Image", "The image", headers=_ETAG_HEADER),
                    "304": {
                        "description": "Not modified since the ETag in If-None-Match",
                        "headers": _ETAG_HEADER,
                    },
                    **_AUTH_ERRORS,
                    **_NOT_FOUND,
                },
            },
            "patch": {
                "operationId": "updateImage",
                "tags": [IMAGES],
                "summary": "Change an image's metadata (owner only)",
                "security": secured,
                "parameters": [
                    {
                        "name": "If-Match",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string"},
                        "description": 'The version (3) or ETag ("v3") the change applies to',
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/ImageUpdate"}}
                    },
                },
                "responses": {
                    "200": _json("Image", "The changed image", headers=_ETAG_HEADER),
                    "400": _error("Invalid fields or not JSON"),
                    **_AUTH_ERRORS,
                    **_NOT_FOUND,
                    **_BODY_TIMEOUT,
                    "409": _error("The image kept changing; try again"),
                    "412": _error("If-Match names another version"),
                    "413": _error("The body is too large"),
                    "415": _error("The body is not JSON"),
                    **_STORAGE_FULL,
                },
            },
            "delete": {
                "operationId": "deleteImage",
                "tags": [IMAGES],
                "summary": "Delete an image (owner only); repeating it succeeds too",
                "security": secured,
                "responses": {
                    "204": {"description": "Deleted"},
                    **_AUTH_ERRORS,
                    **_NOT_FOUND,
                    # Deletes may spend the room the server keeps for them: they answer this
                    # only when even that is gone.
                    **_STORAGE_FULL,
                },
            },
        },
        "/images/{image_id}/download": {
            "parameters": [_IMAGE_ID],
            "get": {
                "operationId": "downloadImage",
                "tags": [IMAGES],
                "summary": "The original bytes; Range and If-None-Match are honoured",
                "security": secured,
                "parameters": conditional_download,
                "responses": {
                    "200": {
                        "description": "The bytes",
                        "headers": download_headers,
                        "content": binary,
                    },
                    "206": {
                        "description": "The requested range",
                        "headers": partial_headers,
                        "content": binary,
                    },
                    "304": not_modified,
                    "307": {
                        "description": "Fetch the bytes from the URL in Location",
                        "headers": redirect_headers,
                    },
                    **_AUTH_ERRORS,
                    **_NOT_FOUND,
                    "416": _error("The range lies outside the image"),
                },
            },
        },
        "/images/{image_id}/thumbnail": {
            "parameters": [_IMAGE_ID],
            "get": {
                "operationId": "imageThumbnail",
                "tags": [THUMBNAILS],
                "summary": "The thumbnail (JPEG for JPEG photos, else WebP) once it is ready",
                "security": secured,
                "parameters": conditional_download,
                "responses": {
                    "200": {
                        "description": "The thumbnail",
                        "headers": download_headers,
                        "content": {
                            ct: {"schema": {**_BINARY, "contentMediaType": ct}}
                            for ct in THUMBNAIL_CONTENT_TYPES
                        },
                    },
                    "206": {
                        "description": "The requested range",
                        "headers": partial_headers,
                        "content": {
                            ct: {"schema": {**_BINARY, "contentMediaType": ct}}
                            for ct in THUMBNAIL_CONTENT_TYPES
                        },
                    },
                    "304": not_modified,
                    "307": {
                        "description": "Fetch the bytes from the URL in Location",
                        "headers": redirect_headers,
                    },
                    **_AUTH_ERRORS,
                    "404": _error("No such image, not visible, or its thumbnail is not ready"),
                },
            },
        },
        "/images/{image_id}/renditions/{name}": {
            "parameters": [
                _IMAGE_ID,
                {
                    "name": "name",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "enum": list(RENDITION_NAMES)},
                },
            ],
            "get": {
                "operationId": "imageRendition",
                "tags": [THUMBNAILS],
                "summary": "A rendition, in the best format the Accept header allows",
                "description": (
                    "Served as AVIF or WebP only to a client whose Accept header names it "
                    "(browsers that decode them do); */* and image/* stand for JPEG, which "
                    "every client decodes. A type with q=0 is never served; 406 if the "
                    "rendition is kept in none of the types accepted. The answer varies by "
                    "Accept (Vary: Accept) and never changes otherwise: it may be cached for a "
                    "year (Cache-Control: private, max-age=31536000, immutable)."
                ),
                "security": secured,
                "parameters": [
                    _header_parameter("Accept", "The formats the client decodes, with q values"),
                    _header_parameter("If-None-Match", "304 if the ETag is one of these"),
                ],
                "responses": {
                    "200": {
                        "description": "The rendition",
                        "headers": {**download_headers, "Vary": _header("Accept")},
                        "content": {
                            ct: {"schema": {**_BINARY, "contentMediaType": ct}}
                            for ct in RENDITION_CONTENT_TYPES
                        },
                    },
                    "304": not_modified,
                    "307": {
                        "description": "Fetch the bytes from the URL in Location",
                        "headers": {**redirect_headers, "Vary": _header("Accept")},
                    },
                    **_AUTH_ERRORS,
                    "404": _error("No such image, not visible, no such rendition, or not made yet"),
                    "406": _error("The rendition is kept in none of the formats accepted"),
                },
            },
        },
        "/uploads": {
            "post": {
                "operationId": "createUpload",
                "tags": [UPLOADS],
                "summary": "A slot for a direct upload of a large file",
                "description": (
                    "Returns a URL and form fields: POST them with the file (multipart/form-"
                    "data, the fields first, the file last in a part named 'file'). On AWS that "
                    "is a presigned S3 POST; on the embedded server, a signed link of its own. "
                    "The image appears at image_url once its bytes have passed validation. "
                    "With sha256, an image of the caller's with those bytes is the answer "
                    "instead (200), and no slot is made."
                ),
                "security": secured,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/UploadRequest"}
                        }
                    },
                },
                "responses": {
                    "200": _json(
                        "Image",
                        "The caller already has an image with the bytes sha256 names: no slot",
                        headers={
                            **_ETAG_HEADER,
                            "Content-Location": _header("The image's URL"),
                        },
                        links=_image_links(),
                    ),
                    "201": _json(
                        "UploadSlot",
                        "Where to send the file, and until when",
                        links={
                            "SendUpload": {
                                "operationId": "sendUpload",
                                "parameters": {"upload_id": "$response.body#/upload_id"},
                                "requestBody": {
                                    "expires": "$response.body#/fields/expires",
                                    "signature": "$response.body#/fields/signature",
                                },
                            }
                        },
                    ),
                    "400": _error("Invalid fields (sha256 not 64 hexadecimal digits) or not JSON"),
                    **_AUTH_ERRORS,
                    **_BODY_TIMEOUT,
                    "413": _error("size is above IMAGECORE_MAX_DIRECT_UPLOAD_BYTES"),
                    "415": _error(
                        "content_type is not that of a JPEG, PNG, GIF, WebP, HEIC or AVIF"
                    ),
                    **_STORAGE_FULL,
                },
            }
        },
        "/uploads/{upload_id}": {
            "parameters": [_upload_id("The upload slot's id")],
            "post": {
                "operationId": "sendUpload",
                "tags": [UPLOADS],
                "summary": "The embedded server's upload URL: the file of a direct upload",
                "description": (
                    "Only the embedded server has it (on AWS the file goes to S3). The fields "
                    "POST /uploads gave are the credential, not a bearer token."
                ),
                "x-imagecore-embedded-only": True,
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {"$ref": "#/components/schemas/LinkUpload"},
                            "encoding": {
                                "file": {"contentType": ", ".join(ACCEPTED_CONTENT_TYPES)}
                            },
                        },
                        **raw_image,
                    },
                },
                "responses": {
                    "200": _json(
                        "Image",
                        "The slot was asked for with sha256, and an upload of the same bytes "
                        "made the slot owner's image of them first: that image is the answer, and "
                        "the slot is closed",
                        headers={
                            **_ETAG_HEADER,
                            "Content-Location": _header("The image's URL"),
                        },
                        links=_image_links(),
                    ),
                    "201": _json(
                        "Image",
                        "The image was stored",
                        headers={**_ETAG_HEADER, **_LOCATION_HEADER},
                        links=_image_links(),
                    ),
                    "400": _error(
                        "A malformed form, an empty file, or a file without the sha256 the "
                        "slot was asked for with (nothing is kept, and the slot is closed)"
                    ),
                    "401": _error(
                        "The link's fields are wrong or it has expired", headers=_WWW_AUTHENTICATE
                    ),
                    "404": _error("No such upload slot"),
                    **_BODY_TIMEOUT,
                    **_RATE_LIMITED,
                    "409": _error(
                        "The slot has been used, or the image an upload of the same bytes made "
                        "first was deleted before this one finished"
                    ),
                    "413": _error("The file is above IMAGECORE_MAX_DIRECT_UPLOAD_BYTES"),
                    "415": _error(
                        "Not an image/ Content-Type, or not a JPEG, PNG, GIF, WebP, HEIC or AVIF"
                    ),
                    **_UPLOADS_BUSY,
                    **_STORAGE_FULL,
                },
            },
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "tags": [PAGES],
                "summary": "This document",
                "responses": {
                    "200": {
                        "description": "The OpenAPI document",
                        "content": {"application/json": {}},
                    }
                },
            }
        },
        "/docs": {
            "get": {
                "operationId": "docs",
                "tags": [PAGES],
                "summary": "An interactive page for this document",
                "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}},
            }
        },
        "/": {
            "get": {
                "operationId": "gallery",
                "tags": [PAGES],
                "summary": (
                    "A gallery page: sign in with a token, upload, browse, filter, view, "
                    "download, edit and delete"
                ),
                # On AWS thumbnails and downloads redirect to S3, which the page's policy (and the
                # bucket's CORS) do not let it fetch: the page is the embedded server's.
                "x-imagecore-embedded-only": True,
                "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}},
            }
        },
        "/favicon.ico": {
            "get": {
                "operationId": "favicon",
                "tags": [PAGES],
                "summary": "The icon of the gallery and the docs page",
                "parameters": [
                    _header_parameter("If-None-Match", "304 if the ETag is one of these")
                ],
                "responses": {
                    "200": {
                        "description": "The icon, cacheable for a week",
                        "headers": {
                            "ETag": _header("The icon's entity tag"),
                            "Cache-Control": _header("public, max-age=604800"),
                        },
                        "content": {"image/x-icon": {"schema": _BINARY}},
                    },
                    "304": {
                        "description": "Not modified since the ETag in If-None-Match",
                        "headers": {"ETag": _header("The icon's entity tag")},
                    },
                },
            }
        },
    }


_DIGITS = {"type": "string", "pattern": "^[0-9]{1,18}$"}
_TUS_RESUMABLE = {
    "name": "Tus-Resumable",
    "in": "header",
    "required": True,
    "schema": {"type": "string", "enum": ["1.0.0"]},
    "description": "The tus protocol version: 1.0.0 (412 for any other)",
}
_TUS_ANSWER = {"Tus-Resumable": _header("1.0.0")}
_TUS_NONE = {
    "404": _error(
        "No such upload of the caller's (or, on AWS, no /files/ at all: the bytes go to S3)"
    )
}
_TUS_VERSION = {
    "412": _error(
        "Tus-Resumable is missing or names another version",
        headers={"Tus-Version": _header("The versions this server speaks: 1.0.0")},
    )
}
_TUS_GONE = {
    "410": _error("The upload expired, was terminated, or its file was refused: start anew")
}
_TUS_CHECKSUM = {
    "460": _error(
        "The bytes do not have the Upload-Checksum given: none of them were kept (tus's "
        "checksum extension names this status)"
    )
}
_TUS_REFUSED_FILE = {
    "415": _error(
        "The file's first MiB shows no JPEG, PNG, GIF, WebP, HEIC or AVIF within the pixel limit "
        "(the upload is ended), or a PATCH not sent as application/offset+octet-stream"
    )
}
_OFFSET_BYTES = {"application/offset+octet-stream": {"schema": _BINARY}}
_TUS_PROGRESS = {
    **_TUS_ANSWER,
    "Upload-Offset": _header("How many bytes of the file the server holds", _DIGITS),
    "Cache-Control": _header("no-store"),
    "Upload-Expires": {
        "required": False,
        "schema": {"type": "string"},
        "description": "When the upload stops taking bytes (an HTTP date); absent once complete",
    },
    "Image-Location": {
        "required": False,
        "schema": {"type": "string", "pattern": "^/images/"},
        "description": (
            "Once the last byte is in: the image the file became (/images/{id}; the caller's "
            "image with the same bytes, if the upload declared its sha256 and one existed)"
        ),
    },
}


def _tus_options(operation_id: str) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "tags": [RESUMABLE],
        "summary": "What the server speaks of tus (no token needed)",
        "x-imagecore-embedded-only": True,
        "responses": {
            "204": {
                "description": "The protocol's capabilities",
                "headers": {
                    "Tus-Version": _header("1.0.0"),
                    "Tus-Extension": _header(
                        "creation,creation-with-upload,termination,expiration,checksum"
                    ),
                    "Tus-Max-Size": _header(
                        "IMAGECORE_MAX_RESUMABLE_UPLOAD_BYTES (5 GiB by default)", _DIGITS
                    ),
                    "Tus-Checksum-Algorithm": _header("sha256,sha1,md5"),
                },
            },
            **_TUS_NONE,
        },
    }


def _tus_paths() -> dict[str, Any]:
    secured: list[dict[str, list[str]]] = [{"bearer": []}]
    upload_id = _upload_id("The upload's id: the id of the image it becomes")
    return {
        "/files/": {
            "options": _tus_options("tusOptions"),
            "post": {
                "operationId": "createResumableUpload",
                "tags": [RESUMABLE],
                "summary": "Begin a resumable upload (tus creation, creation-with-upload)",
                "description": (
                    "Upload-Metadata carries the fields of POST /images, each value in base64: "
                    "filename, title, description, tags (a JSON array or a comma-separated "
                    "list), metadata (a JSON object), visibility; and sha256 (the file's hex "
                    "SHA-256: its bytes must have it, and with an image of the caller's that "
                    "has it the upload ends as that image), filetype or content_type (a hint). "
                    "The fields are checked now. A body sent as application/offset+octet-stream "
                    "is the file's first bytes. The upload stays open "
                    "IMAGECORE_UPLOAD_SESSION_TTL_SECONDS (24 h by default); when its last byte "
                    "is in, the file passes the checks of any upload and becomes the image "
                    "under the upload's id."
                ),
                "x-imagecore-embedded-only": True,
                "security": secured,
                "parameters": [
                    _TUS_RESUMABLE,
                    {
                        "name": "Upload-Length",
                        "in": "header",
                        "required": True,
                        "schema": _DIGITS,
                        "description": "The file's size in bytes",
                    },
                    _header_parameter(
                        "Upload-Metadata", "Comma-separated pairs: a key, a space, base64"
                    ),
                    _header_parameter(
                        "Upload-Checksum",
                        "The first bytes' checksum: an algorithm (sha256, sha1, md5), a space, "
                        "the digest in base64",
                    ),
                ],
                "requestBody": {"required": False, "content": _OFFSET_BYTES},
                "responses": {
                    "201": {
                        "description": "The upload exists: send its bytes to Location",
                        "headers": {
                            **_TUS_PROGRESS,
                            "Location": _header("The upload's URL (/files/{upload_id})"),
                        },
                    },
                    "400": _error(
                        "No Upload-Length, a malformed header, an unknown metadata key, or a "
                        "field the API refuses (named)"
                    ),
                    **_AUTH_ERRORS,
                    **_TUS_NONE,
                    **_BODY_TIMEOUT,
                    **_TUS_VERSION,
                    "413": _error("The file is larger than IMAGECORE_MAX_RESUMABLE_UPLOAD_BYTES"),
                    **_TUS_REFUSED_FILE,
                    **_TUS_CHECKSUM,
                    **_UPLOADS_BUSY,
                    **_STORAGE_FULL,
                },
            },
        },
        "/files/{upload_id}": {
            "parameters": [upload_id],
            "options": _tus_options("tusUploadOptions"),
            "head": {
                "operationId": "resumableUploadOffset",
                "tags": [RESUMABLE],
                "summary": "How much of the file the server holds (resume from there)",
                "description": (
                    "An upload whose bytes are all in but that did not become an image (the "
                    "server stopped at that moment) becomes it now."
                ),
                "x-imagecore-embedded-only": True,
                "security": secured,
                "parameters": [_TUS_RESUMABLE],
                "responses": {
                    "200": {
                        "description": "The upload's progress",
                        "headers": {
                            **_TUS_PROGRESS,
                            "Upload-Length": _header("The file's size in bytes", _DIGITS),
                        },
                    },
                    "400": _error("A malformed header"),
                    **_AUTH_ERRORS,
                    **_TUS_NONE,
                    **_TUS_GONE,
                    **_TUS_VERSION,
                    **_TUS_REFUSED_FILE,
                    **_STORAGE_FULL,
                },
            },
            "patch": {
                "operationId": "appendToResumableUpload",
                "tags": [RESUMABLE],
                "summary": "Send the next bytes of the file, from Upload-Offset",
                "description": (
                    "A body cut short keeps the bytes that arrived (a HEAD tells how many), "
                    "unless Upload-Checksum was sent: then it keeps none. The answer to the "
                    "bytes that complete the file names the image in Image-Location."
                ),
                "x-imagecore-embedded-only": True,
                "security": secured,
                "parameters": [
                    _TUS_RESUMABLE,
                    {
                        "name": "Upload-Offset",
                        "in": "header",
                        "required": True,
                        "schema": _DIGITS,
                        "description": "Where these bytes go: the offset the server holds",
                    },
                    _header_parameter(
                        "Upload-Checksum",
                        "These bytes' checksum: an algorithm (sha256, sha1, md5), a space, the "
                        "digest in base64",
                    ),
                ],
                "requestBody": {"required": True, "content": _OFFSET_BYTES},
                "responses": {
                    "204": {"description": "The bytes are kept", "headers": _TUS_PROGRESS},
                    "400": _error(
                        "A malformed header, an unknown checksum algorithm, or a body that "
                        "ended before its Content-Length"
                    ),
                    **_AUTH_ERRORS,
                    **_TUS_NONE,
                    **_BODY_TIMEOUT,
                    "409": _error(
                        "Upload-Offset is not the offset the server holds (a HEAD tells it), "
                        "or the upload is complete"
                    ),
                    **_TUS_GONE,
                    **_TUS_VERSION,
                    "413": _error("The bytes would go past the file's Upload-Length"),
                    **_TUS_REFUSED_FILE,
                    "423": _error("Another request is sending bytes to this upload"),
                    **_TUS_CHECKSUM,
                    **_UPLOADS_BUSY,
                    **_STORAGE_FULL,
                },
            },
            "delete": {
                "operationId": "terminateResumableUpload",
                "tags": [RESUMABLE],
                "summary": "End the upload and drop its bytes (tus termination)",
                "x-imagecore-embedded-only": True,
                "security": secured,
                "parameters": [_TUS_RESUMABLE],
                "responses": {
                    "204": {"description": "Ended", "headers": _TUS_ANSWER},
                    **_AUTH_ERRORS,
                    **_TUS_NONE,
                    "409": _error("The upload is complete: delete the image instead"),
                    **_TUS_GONE,
                    **_TUS_VERSION,
                },
            },
        },
    }


def _after(path: str, paths: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    """``paths`` with ``more`` right after ``path``: the docs list them in this order."""
    keys = list(paths)
    cut = keys.index(path) + 1
    return {
        **{key: paths[key] for key in keys[:cut]},
        **more,
        **{key: paths[key] for key in keys[cut:]},
    }


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "imagecore",
            "version": "0.1.0",
            "description": (
                "Upload images with metadata, list them with filters and pagination, read, "
                "download, update and delete them. Authenticate with the header "
                "`Authorization: Bearer TOKEN` (`imagecore token USER` prints a token). Errors "
                "always have the body `{error, message, request_id}`."
            ),
        },
        "tags": TAGS,
        "paths": _after("/uploads/{upload_id}", _paths(), {**_tus_paths(), **_session_paths()}),
        "components": _components(),
    }


_SESSION_FIELDS = {
    "upload_id": {"type": "string", "pattern": _whole(IMAGE_ID)},
    "size": {"type": "integer", "minimum": 1, "description": "The file's size in bytes"},
    "part_size": {
        "type": "integer",
        "minimum": MIN_PART_BYTES,
        "description": (
            "The size of every part but the last, which is the rest: a whole number of MiB, "
            "at least 8 MiB, so that the file takes at most 10,000 parts"
        ),
    },
    "part_count": {"type": "integer", "minimum": 1, "maximum": MAX_PARTS},
    "expires_at": {
        "type": "string",
        "format": "date-time",
        "description": (
            "When the session ends (IMAGECORE_UPLOAD_SESSION_TTL_SECONDS after it began, 24 h "
            "by default): complete it before"
        ),
    },
    "image_url": {
        "type": "string",
        "description": "Where the image appears once its file has passed the checks",
    },
}


def _session_schemas() -> dict[str, Any]:
    number = {"type": "integer", "minimum": 1, "maximum": MAX_PARTS}
    return {
        "UploadSessionRequest": {
            "type": "object",
            "required": ["size"],
            "additionalProperties": False,
            "properties": {
                "size": {"type": "integer", "minimum": 1, "description": "In bytes"},
                "sha256": {
                    "type": "string",
                    "pattern": "^[0-9a-fA-F]{64}$",
                    "description": (
                        "The SHA-256 of the whole file (hex). If the caller already has an "
                        "image with these bytes, it is the answer (200) and no session is "
                        "made; otherwise the file must have this hash"
                    ),
                },
                "content_type": {
                    "type": "string",
                    "enum": list(ACCEPTED_CONTENT_TYPES),
                    "description": "A hint only: what the file is is read from its bytes",
                },
                "filename": {"type": "string", "description": _FILENAME_RULE},
                "title": _TITLE,
                "description": _DESCRIPTION,
                "tags": _TAGS_GIVEN,
                "metadata": {"$ref": "#/components/schemas/Metadata"},
                "visibility": {"$ref": "#/components/schemas/Visibility"},
            },
        },
        "UploadSession": {
            "type": "object",
            "required": list(_SESSION_FIELDS),
            "additionalProperties": False,
            "properties": _SESSION_FIELDS,
        },
        "UploadSessionState": {
            "type": "object",
            "required": [*_SESSION_FIELDS, "parts", "received_bytes", "complete"],
            "additionalProperties": False,
            "properties": {
                **_SESSION_FIELDS,
                "parts": {
                    "type": "array",
                    "description": (
                        "The parts S3 holds, by number (empty once complete): send the others"
                    ),
                    "items": {
                        "type": "object",
                        "required": ["number", "size", "etag"],
                        "additionalProperties": False,
                        "properties": {
                            "number": number,
                            "size": {"type": "integer", "minimum": 0},
                            "etag": {"type": "string"},
                        },
                    },
                },
                "received_bytes": {"type": "integer", "minimum": 0},
                "complete": {
                    "type": "boolean",
                    "description": (
                        "Whether the parts were joined into the file: the image appears at "
                        "image_url once the file passed the checks of any upload"
                    ),
                },
            },
        },
        "PartUrlsRequest": {
            "type": "object",
            "required": ["parts"],
            "additionalProperties": False,
            "properties": {
                "parts": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_PART_URLS,
                    "items": {
                        "type": "object",
                        "required": ["number", "sha256"],
                        "additionalProperties": False,
                        "properties": {
                            "number": number,
                            "sha256": {
                                "type": "string",
                                "description": (
                                    "The SHA-256 of the part's bytes in base64, as S3's "
                                    "x-amz-checksum-sha256 header carries it"
                                ),
                            },
                        },
                    },
                }
            },
        },
        "PartUrls": {
            "type": "object",
            "required": ["urls", "expires_at"],
            "additionalProperties": False,
            "properties": {
                "urls": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["number", "url", "headers"],
                        "additionalProperties": False,
                        "properties": {
                            "number": number,
                            "url": {
                                "type": "string",
                                "description": (
                                    "PUT the part's bytes here, exactly part_size of them (the "
                                    "last part: the rest), with the headers: S3 refuses other "
                                    "bytes. Its answer's ETag header names the part"
                                ),
                            },
                            "headers": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                                "description": "Send these with the PUT (the part's checksum)",
                            },
                        },
                    },
                },
                "expires_at": {"type": "string", "format": "date-time"},
            },
        },
        "UploadSessionCompleted": {
            "type": "object",
            "required": ["upload_id", "image_url"],
            "additionalProperties": False,
            "properties": {
                "upload_id": _SESSION_FIELDS["upload_id"],
                "image_url": _SESSION_FIELDS["image_url"],
            },
        },
    }


_SESSION_NONE = {
    "404": _error("No such upload session of the caller's"),
}
_SESSION_GONE = {
    "410": _error("The session expired, was cancelled, or its file was refused: start anew")
}
_EMBEDDED = "; on the embedded server always (it takes resumable uploads by tus at /files/)"
_JSON_BODY = {
    **_BODY_TIMEOUT,
    "413": _error("The JSON body is too large"),
    "415": _error("The body is not JSON"),
}


def _json_request(schema_name: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}
        },
    }


def _session_links() -> dict[str, Any]:
    upload_id = {"upload_id": "$response.body#/upload_id"}
    return {
        name: {"operationId": operation, "parameters": upload_id}
        for name, operation in (
            ("GetUploadSession", "getUploadSession"),
            ("UploadSessionPartUrls", "uploadSessionPartUrls"),
            ("CompleteUploadSession", "completeUploadSession"),
            ("CancelUploadSession", "cancelUploadSession"),
        )
    }


def _session_paths() -> dict[str, Any]:
    secured: list[dict[str, list[str]]] = [{"bearer": []}]
    upload_id = _upload_id("The session's id: the id of the image it becomes")
    return {
        "/upload-sessions": {
            "post": {
                "operationId": "openUploadSession",
                "tags": [SESSIONS],
                "summary": "Begin an upload sent in parts straight to S3",
                "description": (
                    "The fields are checked now, and an S3 multipart upload begins. Then ask "
                    "for part URLs, PUT the parts (in any order, several at once), and complete."
                ),
                "security": secured,
                "requestBody": _json_request("UploadSessionRequest"),
                "responses": {
                    "200": _json(
                        "Image",
                        "The caller already has an image with the bytes sha256 names: no session",
                        headers={**_ETAG_HEADER, "Content-Location": _header("The image's URL")},
                        links=_image_links(),
                    ),
                    "201": _json(
                        "UploadSession",
                        "The session: its parts' size and count, and until when it lasts",
                        headers={
                            "Location": _header(
                                "The session's URL",
                                {"type": "string", "pattern": "^/upload-sessions/"},
                            )
                        },
                        links=_session_links(),
                    ),
                    "400": _error("Invalid fields, or not a JSON object" + _EMBEDDED),
                    **_AUTH_ERRORS,
                    **_JSON_BODY,
                    "413": _error(
                        "size is above IMAGECORE_MAX_RESUMABLE_UPLOAD_BYTES, or the JSON body "
                        "is too large"
                    ),
                    "415": _error(
                        "content_type is not that of a JPEG, PNG, GIF, WebP, HEIC or AVIF, or the "
                        "body is not JSON"
                    ),
                },
            }
        },
        "/upload-sessions/{upload_id}": {
            "parameters": [upload_id],
            "get": {
                "operationId": "getUploadSession",
                "tags": [SESSIONS],
                "summary": "Where the session stands: the parts S3 holds (resume from there)",
                "security": secured,
                "responses": {
                    "200": _json("UploadSessionState", "The session"),
                    "400": _error("Never on AWS" + _EMBEDDED),
                    **_AUTH_ERRORS,
                    **_SESSION_NONE,
                    **_SESSION_GONE,
                },
            },
            "delete": {
                "operationId": "cancelUploadSession",
                "tags": [SESSIONS],
                "summary": "End the session and drop the parts S3 holds",
                "security": secured,
                "responses": {
                    "204": {"description": "Ended"},
                    "400": _error("Never on AWS" + _EMBEDDED),
                    **_AUTH_ERRORS,
                    **_SESSION_NONE,
                    "409": _error(
                        "The session is complete: its file becomes (or became) the image"
                    ),
                    **_SESSION_GONE,
                },
            },
        },
        "/upload-sessions/{upload_id}/part-urls": {
            "parameters": [upload_id],
            "post": {
                "operationId": "uploadSessionPartUrls",
                "tags": [SESSIONS],
                "summary": f"Presigned URLs to PUT parts to, up to {MAX_PART_URLS} at a time",
                "description": (
                    "Each URL takes exactly its part's bytes (part_size, the last part the "
                    "rest) with the SHA-256 given: S3 refuses others. The URLs last "
                    "IMAGECORE_URL_TTL_SECONDS, or until the session ends if sooner; ask again "
                    "for more."
                ),
                "security": secured,
                "requestBody": _json_request("PartUrlsRequest"),
                "responses": {
                    "200": _json("PartUrls", "A URL for each part asked for"),
                    "400": _error(
                        "A part number outside 1 to part_count or asked for twice, a sha256 "
                        "that is no SHA-256 in base64, more than "
                        f"{MAX_PART_URLS} parts, or not JSON" + _EMBEDDED
                    ),
                    **_AUTH_ERRORS,
                    **_SESSION_NONE,
                    **_JSON_BODY,
                    "409": _error("The session is complete: it became the image"),
                    **_SESSION_GONE,
                },
            },
        },
        "/upload-sessions/{upload_id}/complete": {
            "parameters": [upload_id],
            "post": {
                "operationId": "completeUploadSession",
                "tags": [SESSIONS],
                "summary": "Join the parts into the file, which then becomes the image",
                "description": (
                    "The file passes the checks of any upload in the background; the image "
                    "appears at image_url (under the session's id), or the session is gone "
                    "(410) if the file was refused. Completing again answers the same."
                ),
                "security": secured,
                "responses": {
                    "202": _json("UploadSessionCompleted", "The file is whole"),
                    "400": _error("Never on AWS" + _EMBEDDED),
                    **_AUTH_ERRORS,
                    **_SESSION_NONE,
                    "409": _error(
                        "Parts are missing, or not of the size asked for: the message names them"
                    ),
                    **_SESSION_GONE,
                },
            },
        },
    }
