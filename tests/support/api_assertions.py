"""Answers held to the OpenAPI document the server serves: a body matches its component schema,
an error is the documented one (status, body, request id)."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema

from entrypoints.http.openapi import openapi_document

_DOCUMENT = openapi_document()


def schema(name: str) -> dict[str, Any]:
    """A component schema of the served document, resolvable on its own."""
    return {"$ref": f"#/components/schemas/{name}", "components": _DOCUMENT["components"]}


def assert_matches_schema(body: object, name: str) -> None:
    jsonschema.validate(body, schema(name), format_checker=jsonschema.FormatChecker())


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The documented error: the status, the body {error, message, request_id}, the header."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert_matches_schema(body, "Error")
    assert body["error"] == code, body
    assert body["message"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body
