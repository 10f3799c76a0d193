"""The HTTP API: a plain ASGI (Starlette) app that parses requests into use-case calls and
renders their results or errors. No rule lives here."""

from __future__ import annotations

import importlib.resources
import json
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import IO, Any

import ulid
from starlette.applications import Starlette
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from entrypoints.auth import TokenAuthority
from entrypoints.conditional import etag_matches, requested_range
from entrypoints.container import Container, build_container
from entrypoints.openapi import openapi_document
from entrypoints.settings import Settings
from imagecore.convert import image_to_resource
from imagecore.disposition import attachment_disposition
from imagecore.errors import (
    ImageCoreError,
    InvalidInput,
    PayloadTooLarge,
    PreconditionFailed,
    UnsupportedMediaType,
)
from imagecore.model import Image, version_from_etag
from imagecore.query import build_list_query
from imagecore.service import ImageService, UpdateCommand, UploadCommand

log = logging.getLogger("imagecore.http")

STATUS_BY_CODE: Mapping[str, int] = {
    "InvalidInput": 400,
    "InvalidCursor": 400,
    "Unauthenticated": 401,
    "NotFound": 404,
    "MethodNotAllowed": 405,
    "Conflict": 409,
    "PreconditionFailed": 412,
    "PayloadTooLarge": 413,
    "UnsupportedMediaType": 415,
    "RangeNotSatisfiable": 416,
}
_CODE_BY_HTTP_STATUS = {404: "NotFound", 405: "MethodNotAllowed", 400: "InvalidInput"}

UPLOAD_FIELDS = ("file", "title", "description", "tags", "metadata", "visibility")
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
FORM_ENVELOPE_BYTES = 256 * 1024
"""What a multipart body may carry beyond the file itself: boundaries, headers, text fields."""
MAX_JSON_BODY_BYTES = 64 * 1024
READ_CHUNK = 1024 * 1024
SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff")]


def error_body(code: str, message: str, request_id: str) -> dict[str, str]:
    return {"error": code, "message": message, "request_id": request_id}


class RequestContext:
    """Gives every request an id (echoed in ``X-Request-ID`` and every error body), adds the
    security headers, and turns an unexpected fault into a 500 that reveals no internals."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = str(ulid.ULID())
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                headers.extend(SECURITY_HEADERS)
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            log.exception("unhandled error in request %s", request_id)
            if started:
                raise
            response = JSONResponse(
                error_body("InternalError", "the server failed; the request id helps", request_id),
                status_code=500,
            )
            await response(scope, receive, send_with_headers)


def _request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def _error_response(request: Request, code: str, message: str, status: int) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(error_body(code, message, _request_id(request)), status, headers=headers)


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ImageCoreError)
    return _error_response(request, exc.code, exc.message, STATUS_BY_CODE.get(exc.code, 400))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _CODE_BY_HTTP_STATUS.get(exc.status_code, "InvalidInput")
    message = {404: "no such resource", 405: "method not allowed here"}.get(
        exc.status_code, str(exc.detail)
    )
    response = _error_response(request, code, message, exc.status_code)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def _bounded(request: Request, limit: int, message: str) -> Request:
    """The request with a body that ends in PayloadTooLarge(message) past ``limit`` bytes: at once
    when its Content-Length says so, else as soon as the bytes arriving cross the limit."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(message)
    received = 0

    async def receive() -> Message:
        nonlocal received
        event = await request.receive()
        if event["type"] == "http.request":
            received += len(event.get("body", b""))
            if received > limit:
                raise PayloadTooLarge(message)
        return event

    return Request(request.scope, receive)


def _file_chunks(file: IO[bytes]) -> Iterator[bytes]:
    while chunk := file.read(READ_CHUNK):
        yield chunk


def _tags_field(text: str | None) -> object:
    """Tags as a JSON array, or as comma-separated text."""
    if text is None:
        return None
    if text.lstrip().startswith("["):
        try:
            return json.loads(text)
        except ValueError:
            raise InvalidInput("tags is neither a JSON array nor comma-separated text") from None
    return text.split(",")


def _json_field(text: str | None, name: str) -> object:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise InvalidInput(f"{name} must be a JSON object") from None


def _text_fields(form: FormData) -> dict[str, str]:
    fields: dict[str, str] = {}
    for name in form:
        if name not in UPLOAD_FIELDS:
            raise InvalidInput(f"unknown form field {name!r}: send {', '.join(UPLOAD_FIELDS)}")
        values = form.getlist(name)
        if len(values) > 1:
            raise InvalidInput(f"send the form field {name!r} once")
        if name != "file":
            if not isinstance(values[0], str):
                raise InvalidInput(f"{name} must be a text field, not a file")
            fields[name] = values[0]
    return fields


def _resource_response(image: Image, status: int = 200, **headers: str) -> JSONResponse:
    return JSONResponse(
        image_to_resource(image),
        status,
        headers={"ETag": image.etag, "Cache-Control": "private, no-cache", **headers},
    )


class _WithoutRange:
    """Serves a FileResponse as a whole: range handling is ours, so it is done one way."""

    def __init__(self, response: FileResponse) -> None:
        self.response = response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(k, v) for k, v in scope["headers"] if k not in (b"range", b"if-range")]
        await self.response({**scope, "headers": headers}, receive, send)


Authenticate = Callable[[Request], str]
"""The user id a request speaks for, or Unauthenticated: a bearer token the embedded server
verifies itself, or the claims an API Gateway authorizer verified before the Lambda runs."""


def bearer_token_caller(tokens: TokenAuthority) -> Authenticate:
    return lambda request: tokens.caller_from_header(request.headers.get("authorization"))


class HttpApi:
    """The endpoints. Each authenticates, parses, calls one use case and renders the result."""

    def __init__(self, images: ImageService, authenticate: Authenticate, max_upload_bytes: int):
        self.images = images
        self.authenticate = authenticate
        self.max_upload_bytes = max_upload_bytes

    def _caller(self, request: Request) -> str:
        return self.authenticate(request)

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def upload(self, request: Request) -> Response:
        caller = self._caller(request)
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise UnsupportedMediaType(
                "send the image as multipart/form-data with the bytes in a 'file' part"
            )
        too_large = f"the upload is larger than the limit of {self.max_upload_bytes} bytes"
        limited = _bounded(request, self.max_upload_bytes + FORM_ENVELOPE_BYTES, too_large)
        try:
            form = await limited.form(
                max_files=1, max_fields=len(UPLOAD_FIELDS), max_part_size=65536
            )
        except MultiPartException as exc:
            raise InvalidInput(f"malformed multipart body: {exc.message}") from None
        except ClientDisconnect:
            return Response(status_code=400)
        try:
            fields = _text_fields(form)
            file = form.get("file")
            if not isinstance(file, UploadFile):
                raise InvalidInput("the image is missing: send it as a file in the 'file' part")
            command = UploadCommand(
                chunks=_file_chunks(file.file),
                filename=file.filename,
                title=fields.get("title"),
                description=fields.get("description"),
                tags=_tags_field(fields.get("tags")),
                metadata=_json_field(fields.get("metadata"), "metadata"),
                visibility=fields.get("visibility"),
            )
            image = await run_in_threadpool(self.images.upload, caller, command)
        finally:
            await form.close()
        return _resource_response(image, 201, Location=f"/images/{image.image_id}")

    async def list_images(self, request: Request) -> Response:
        caller = self._caller(request)
        given: dict[str, str] = {}
        for name, value in request.query_params.multi_items():
            if name not in LIST_PARAMETERS:
                raise InvalidInput(f"unknown parameter {name!r}: use {', '.join(LIST_PARAMETERS)}")
            if name in given:
                raise InvalidInput(f"give the parameter {name!r} once")
            given[name] = value
        # An empty parameter (?cursor=) is an absent one, as clients that build URLs send it.
        present = {name: value for name, value in given.items() if value != ""}
        cursor = present.pop("cursor", None)
        query = build_list_query(**present)
        page = await run_in_threadpool(self.images.list_images, caller, query, cursor)
        return JSONResponse(
            {
                "images": [image_to_resource(image) for image in page.images],
                "count": len(page.images),
                "next_cursor": page.next_cursor,
            },
            headers={"Cache-Control": "private, no-cache"},
        )

    async def get_image(self, request: Request) -> Response:
        caller = self._caller(request)
        image = await run_in_threadpool(self.images.get, caller, request.path_params["image_id"])
        if etag_matches(request.headers.get("if-none-match"), image.etag):
            return Response(status_code=304, headers={"ETag": image.etag})
        return _resource_response(image)

    async def download(self, request: Request) -> Response:
        caller = self._caller(request)
        found = await run_in_threadpool(
            self.images.download, caller, request.path_params["image_id"]
        )
        image = found.image
        etag = image.content_etag
        cache = {"ETag": etag, "Cache-Control": "private, max-age=0, must-revalidate"}
        if etag_matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=cache)
        if_range = request.headers.get("if-range")
        range_applies = if_range is None or if_range.strip() == etag
        wanted = (
            requested_range(request.headers.get("range"), image.size) if range_applies else None
        )
        # The blob store serves the bytes itself where it can, and honours Range there; what
        # needs no bytes (304, 416) is answered here first, the same whatever the backend. A
        # stale If-Range asks for the whole image, which the redirected Range would not give.
        if found.presigned_url and (range_applies or "range" not in request.headers):
            return RedirectResponse(
                found.presigned_url, 307, headers={"ETag": etag, "Cache-Control": "no-store"}
            )
        headers = {
            **cache,
            "Content-Disposition": attachment_disposition(image.filename),
            "Accept-Ranges": "bytes",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        }
        if wanted is None and found.local_path is not None:
            file = FileResponse(found.local_path, headers=headers, media_type=image.content_type)
            return _WithoutRange(file)  # type: ignore[return-value]
        body = iterate_in_threadpool(found.open(wanted))
        if wanted is None:
            headers["Content-Length"] = str(image.size)
            return StreamingResponse(body, 200, headers=headers, media_type=image.content_type)
        headers["Content-Length"] = str(wanted.length)
        headers["Content-Range"] = f"bytes {wanted.start}-{wanted.end}/{image.size}"
        return StreamingResponse(body, 206, headers=headers, media_type=image.content_type)

    async def update(self, request: Request) -> Response:
        caller = self._caller(request)
        command = UpdateCommand.from_mapping(await self._json_body(request))
        expected_version = None
        if (if_match := request.headers.get("if-match")) is not None:
            try:
                expected_version = version_from_etag(if_match)
            except ValueError:
                raise PreconditionFailed("If-Match names no version of this image") from None
        image = await run_in_threadpool(
            self.images.update, caller, request.path_params["image_id"], command, expected_version
        )
        return _resource_response(image)

    async def delete(self, request: Request) -> Response:
        caller = self._caller(request)
        await run_in_threadpool(self.images.delete, caller, request.path_params["image_id"])
        return Response(status_code=204)

    async def _json_body(self, request: Request) -> object:
        content_type = request.headers.get("content-type", "application/json")
        if not content_type.split(";")[0].strip().endswith(("/json", "+json")):
            raise UnsupportedMediaType("send the changes as a JSON object (application/json)")
        too_large = f"the JSON body is larger than {MAX_JSON_BODY_BYTES} bytes"
        limited = _bounded(request, MAX_JSON_BODY_BYTES, too_large)
        try:
            body = await limited.body()
            return json.loads(body)
        except ClientDisconnect:
            raise InvalidInput("the client went away") from None
        except ValueError:
            raise InvalidInput("the body is not valid JSON") from None


DOCS_HTML = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>imagecore API</title>
  <link rel="stylesheet" href="/docs/static/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/static/swagger-ui-bundle.js"></script>
  <script src="/docs/static/docs.js"></script>
</body>
</html>
"""

SWAGGER_UI_ASSETS = str(importlib.resources.files("swagger_ui") / "static")
DOCS_JS = """window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});\n"""


Endpoint = Callable[[Request], Awaitable[Response]]


def _route(path: str, **by_method: Endpoint) -> Route:
    """One route per path, so a wrong method gets a 405 whose Allow header lists them all."""

    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await by_method[method](request)

    return Route(path, endpoint, methods=list(by_method))


def create_app(container: Container, authenticate: Authenticate | None = None) -> Starlette:
    """The ASGI app, with everything it uses taken from ``container``. Callers prove who they
    are with the embedded server's bearer tokens unless ``authenticate`` says otherwise."""
    api = HttpApi(
        images=container.images(),
        authenticate=authenticate or bearer_token_caller(container.tokens()),
        max_upload_bytes=container.config.max_upload_bytes(),
    )
    document = openapi_document()

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    async def docs(request: Request) -> Response:
        return HTMLResponse(DOCS_HTML)

    async def docs_js(request: Request) -> Response:
        return Response(DOCS_JS, media_type="text/javascript")

    routes = [
        Route("/health", api.health, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
        Route("/docs/static/docs.js", docs_js, methods=["GET"]),
        Mount("/docs/static", StaticFiles(directory=SWAGGER_UI_ASSETS)),
        _route("/images", GET=api.list_images, POST=api.upload),
        _route("/images/{image_id}", GET=api.get_image, PATCH=api.update, DELETE=api.delete),
        Route("/images/{image_id}/download", api.download, methods=["GET"]),
    ]
    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        ImageCoreError: _domain_error,
        HTTPException: _http_error,
    }
    app = Starlette(routes=routes, exception_handlers=handlers)
    app.add_middleware(RequestContext)
    return app


def app_from_environment() -> Starlette:
    """The factory `imagecore serve` hands the ASGI server: settings come from the environment."""
    settings = Settings.from_env()
    return create_app(build_container(settings))
