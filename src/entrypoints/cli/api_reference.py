"""The HTTP API reference in Markdown (docs/api.md), written from the served OpenAPI document so
the two cannot disagree: `imagecore api-reference` writes it, a test checks it is current."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

METHODS = ("get", "head", "post", "put", "patch", "delete", "options")


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _schema_summary(schema: Mapping[str, Any]) -> str:
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "allOf" in schema:
        return " and ".join(_schema_summary(part) for part in schema["allOf"] if "$ref" in part)
    kind = str(schema.get("type", "any"))
    if kind == "array" and "items" in schema:
        return f"array of {_schema_summary(schema['items'])}"
    details = [
        f"{word} {schema[key]}"
        for key, word in (("enum", "one of"), ("pattern", "matching"), ("format", "format"))
        if key in schema
    ]
    bounds = [
        f"{word} {schema[key]}"
        for key, word in (
            ("minimum", "≥"),
            ("maximum", "≤"),
            ("minLength", "length ≥"),
            ("maxLength", "length ≤"),
            ("maxItems", "at most items:"),
        )
        if key in schema
    ]
    return ", ".join([f"`{kind}`", *details, *bounds])


def _parameters(operation: Mapping[str, Any], shared: list[Mapping[str, Any]]) -> Iterator[str]:
    parameters = [*shared, *operation.get("parameters", [])]
    if not parameters:
        return
    yield "| parameter | in | required | schema | description |"
    yield "|---|---|---|---|---|"
    for parameter in parameters:
        yield (
            f"| `{parameter['name']}` | {parameter['in']} | "
            f"{'yes' if parameter.get('required') else 'no'} | "
            f"{_cell(_schema_summary(parameter.get('schema', {})))} | "
            f"{_cell(parameter.get('description', ''))} |"
        )
    yield ""


def _request_body(operation: Mapping[str, Any]) -> Iterator[str]:
    body = operation.get("requestBody")
    if not body:
        return
    yield f"**Request body**{' (required)' if body.get('required') else ''}:"
    yield ""
    for media_type, content in body.get("content", {}).items():
        yield f"- `{media_type}`: {_schema_summary(content.get('schema', {}))}"
    yield ""


def _responses(operation: Mapping[str, Any]) -> Iterator[str]:
    yield "| status | meaning | body | headers |"
    yield "|---|---|---|---|"
    for status, response in sorted(operation["responses"].items()):
        bodies = [
            f"`{media_type}` {_schema_summary(content.get('schema', {}))}"
            for media_type, content in response.get("content", {}).items()
        ]
        headers = ", ".join(f"`{name}`" for name in response.get("headers", {}))
        yield (
            f"| {status} | {_cell(response.get('description', ''))} | "
            f"{_cell('; '.join(bodies))} | {headers} |"
        )
    yield ""


def _operations(document: Mapping[str, Any]) -> Iterator[str]:
    for path, item in document["paths"].items():
        shared = item.get("parameters", [])
        for method in METHODS:
            if method not in item:
                continue
            operation = item[method]
            yield f"### `{method.upper()} {path}`"
            yield ""
            yield _cell(operation.get("summary", ""))
            yield ""
            if operation.get("description"):
                yield operation["description"]
                yield ""
            if not operation.get("security", document.get("security")):
                yield "No token needed."
                yield ""
            yield from _parameters(operation, shared)
            yield from _request_body(operation)
            yield from _responses(operation)


def _schemas(document: Mapping[str, Any]) -> Iterator[str]:
    for name, schema in document["components"]["schemas"].items():
        yield f"### {name}"
        yield ""
        yield "```json"
        yield json.dumps(schema, indent=2, ensure_ascii=False)
        yield "```"
        yield ""


def markdown(document: Mapping[str, Any]) -> str:
    info = document["info"]
    lines = [
        f"# {info['title']} HTTP API {info['version']}",
        "",
        "<!-- Written by `imagecore api-reference` from the OpenAPI document the server serves "
        "at /openapi.json; do not edit by hand. -->",
        "",
        info.get("description", ""),
        "",
        "## Operations",
        "",
        *_operations(document),
        "## Schemas",
        "",
        *_schemas(document),
    ]
    return "\n".join(lines).rstrip("\n") + "\n"
