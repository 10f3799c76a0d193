"""The HTTP API: a plain ASGI (Starlette) app that parses requests into use-case calls and
renders their results or errors. No rule lives here."""

from __future__ import annotations

import importlib.util
import json
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import anyio.from_thread
import anyio.lowlevel
import orjson
from starlette.applications import Starlette
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.exceptions import HTTPException
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

from adapters.upload_links import (
    CONTENT_TYPE_FIELD,
    EXPIRES_FIELD,
    SIGNATURE_FIELD,
    SignedUploadLinks,
)
from entrypoints import logs
from entrypoints.auth import TokenAuthority
from entrypoints.conditional import etag_matches, requested_range
from entrypoints.container import Container, build_container
from entrypoints.openapi import openapi_document
from entrypoints.rate_limit import TokenBucketLimiter, TooManyRequests
from entrypoints.settings import Settings
from entrypoints.streaming_form import StreamingForm
from imagecore.convert import format_instant, image_to_resource
from imagecore.disposition import attachment_disposition
from imagecore.errors import (
    ImageCoreError,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    UnsupportedMediaType,
)
from imagecore.health import HEALTHY, check_stores
from imagecore.model import Image, version_from_etag
from imagecore.query import build_list_query
from imagecore.service import (
    DirectUploadCommand,
    Download,
    ImageService,
    Stored,
    UpdateCommand,
    UploadCommand,
    UploadSlot,
)

log = logging.getLogger("imagecore.http")
access_log = logs.AccessLog()

MAX_HEADER_BYTES = 32 * 1024
"""The most a request's header names and values may add up to; more gets 431."""

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
    "RequestTimeout": 408,
    "TooManyRequests": 429,
}
_CODE_BY_HTTP_STATUS = {404: "NotFound", 405: "MethodNotAllowed", 400: "InvalidInput"}

UPLOAD_TEXT_FIELDS = ("title", "description", "tags", "metadata", "visibility")
RAW_UPLOAD_PARAMETERS = ("filename", *UPLOAD_TEXT_FIELDS)
LINK_FIELDS = (EXPIRES_FIELD, SIGNATURE_FIELD, CONTENT_TYPE_FIELD)
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
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]
API_CONTENT_SECURITY_POLICY = (
    b"content-security-policy",
    b"default-src 'none'; frame-ancestors 'none'",
)
"""For every response that sets no policy of its own: an API answer is never a page to run."""
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)
GALLERY_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
"""The gallery at / runs only its own script and styles; thumbnails are shown as blob: URLs
because fetching them needs the bearer token."""


def error_body(code: str, message: str, request_id: str) -> dict[str, str]:
    return {"error": code, "message": message, "request_id": request_id}


class RequestContext:
    """Gives every request an id (echoed in ``X-Request-ID``, every error body and every log
    line made while serving it), adds the security headers, turns an unexpected fault into a
    500 that reveals no internals, and logs one line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # 80 random bits: unique enough to grep for, at a tenth of a ULID's cost (the log
        # lines that carry it have their own time).
        request_id = secrets.token_hex(10)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        context = logs.request_id.set(request_id)
        began = time.perf_counter()
        started = False
        status = 500
        body_unread = _announces_body(scope)

        async def receive_tracking_body() -> Message:
            nonlocal body_unread
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                body_unread = False
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal started, status
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                given = message.get("headers", [])
                own_policy = any(
                    name.lower() == API_CONTENT_SECURITY_POLICY[0] for name, _ in given
                )
                headers = list(given)
                if body_unread:
                    # Answered before the body was read (a refusal): the server will not read
                    # the rest, so the connection cannot carry another request. Say so, or a
                    # client would reuse it and see its next request fail.
                    headers.append((b"connection", b"close"))
                headers.append((b"x-request-id", request_id.encode()))
                headers.extend(SECURITY_HEADERS)
                if not own_policy:
                    headers.append(API_CONTENT_SECURITY_POLICY)
                message = {**message, "headers": headers}
            await send(message)

        try:
            if _header_bytes(scope) > MAX_HEADER_BYTES:
                too_large = JSONResponse(
                    error_body(
                        "HeadersTooLarge",
                        f"the request's headers add up to more than {MAX_HEADER_BYTES} bytes",
                        request_id,
                    ),
                    status_code=431,
                )
                await too_large(scope, receive_tracking_body, send_with_headers)
            else:
                await self.app(scope, receive_tracking_body, send_with_headers)
        except Exception:
            log.exception("unhandled error")
            if started:
                raise
            response = JSONResponse(
                error_body("InternalError", "the server failed; the request id helps", request_id),
                status_code=500,
            )
            await response(scope, receive_tracking_body, send_with_headers)
        finally:
            method, path = scope["method"], scope["path"]
            access_log.write(
                f"{method} {path} {status}",
                method=method,
                path=path,
                status=status,
                duration_ms=round((time.perf_counter() - began) * 1000, 2),
                caller=state.get("caller"),
            )
            logs.request_id.reset(context)


def _header_bytes(scope: Scope) -> int:
    return sum(len(name) + len(value) for name, value in scope["headers"])


def _announces_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


def _request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def _error_response(request: Request, code: str, message: str, status: int) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(error_body(code, message, _request_id(request)), status, headers=headers)


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ImageCoreError)
    response = _error_response(request, exc.code, exc.message, STATUS_BY_CODE.get(exc.code, 400))
    if isinstance(exc, TooManyRequests):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


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


def _bounded(request: Request, limit: int, message: str, idle_timeout: float) -> Request:
    """The request with a body that ends in PayloadTooLarge(message) past ``limit`` bytes: at once
    when its Content-Length says so, else as soon as the bytes arriving cross the limit; and in
    RequestTimeout if the client stops sending for ``idle_timeout`` seconds."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(message)
    received = 0

    async def receive() -> Message:
        nonlocal received
        event = await _receive_within(request.receive, idle_timeout)
        if event["type"] == "http.request":
            received += len(event.get("body", b""))
            if received > limit:
                raise PayloadTooLarge(message)
        return event

    return Request(request.scope, receive)


class RequestTimeout(ImageCoreError):
    """The client stopped sending the body it announced."""

    code = "RequestTimeout"


async def _receive_within(receive: Receive, idle_timeout: float) -> Message:
    """The next piece of the body, or RequestTimeout when the client sends nothing for
    ``idle_timeout`` seconds: a client that trickles a body must not hold a worker forever."""
    try:
        with anyio.fail_after(idle_timeout):
            return await receive()
    except TimeoutError:
        raise RequestTimeout(f"the client sent nothing for {idle_timeout:g} s") from None


class _BodyReader:
    """The request body as a blocking read of the next chunk, for a worker thread: each read
    waits on the event loop for what the client sends next, so nothing is buffered here.
    Raises ClientDisconnect if the client goes away before the end, RequestTimeout if it stops
    sending for ``idle_timeout`` seconds."""

    def __init__(self, receive: Receive, idle_timeout: float) -> None:
        self._receive = receive
        self._idle_timeout = idle_timeout
        self._ended = False
        # Made on the event loop: the blob store may read from a thread of its own (S3's
        # transfer threads), which anyio knows nothing of without the loop's token.
        self._loop = anyio.lowlevel.current_token()

    async def _next(self) -> Message:
        return await _receive_within(self._receive, self._idle_timeout)

    def __call__(self) -> bytes | None:
        while not self._ended:
            message = anyio.from_thread.run(self._next, token=self._loop)
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            self._ended = not message.get("more_body", False)
            if body := message.get("body", b""):
                return bytes(body)
        return None

    def chunks(self) -> Iterator[bytes]:
        while (chunk := self()) is not None:
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


def _upload_fields(text: Mapping[str, str]) -> dict[str, Any]:
    """The command's fields from the text a form or a query string carries."""
    fields: dict[str, Any] = {
        name: value for name, value in text.items() if name in ("title", "description")
    }
    if "visibility" in text:
        fields["visibility"] = text["visibility"]
    if "tags" in text:
        fields["tags"] = _tags_field(text["tags"])
    if "metadata" in text:
        fields["metadata"] = _json_field(text["metadata"], "metadata")
    if "filename" in text:
        fields["filename"] = text["filename"]
    return fields


def _single_parameters(request: Request, allowed: tuple[str, ...]) -> dict[str, str]:
    given: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name not in allowed:
            raise InvalidInput(f"unknown parameter {name!r}: use {', '.join(allowed)}")
        if name in given:
            raise InvalidInput(f"give the parameter {name!r} once")
        given[name] = value
    return given


def _content_sha256(request: Request) -> str | None:
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


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


class _RenderedImages:
    """The JSON of the images rendered last, by object. Stores hand back the same immutable
    object while an image is unchanged (SQLite's decoded records, the memory store's own), so
    a page read again renders nothing: rendering was a third of a page's time. Entries hold
    their image, so an id is never reused while it is a key. Each step is one dict operation,
    whole under the GIL, so no lock is needed."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[int, tuple[Image, bytes]] = OrderedDict()

    def json(self, image: Image) -> bytes:
        entry = self._entries.get(id(image))
        if entry is not None and entry[0] is image:
            return entry[1]
        # Only validated, stored data comes here: text without lone surrogates, integers
        # within 64 bits, finite numbers; all of which orjson renders as json would.
        rendered = orjson.dumps(image_to_resource(image))
        self._entries[id(image)] = (image, rendered)
        if len(self._entries) > self._capacity:
            self._entries.popitem(last=False)
        return rendered


_rendered = _RenderedImages(capacity=4096)


def _resource_response(image: Image, status: int = 200, **headers: str) -> Response:
    return Response(
        _rendered.json(image),
        status,
        headers={"ETag": image.etag, "Cache-Control": "private, no-cache", **headers},
        media_type="application/json",
    )


class _WithoutRange:
    """Serves a FileResponse as a whole: range handling is ours, so it is done one way."""

    def __init__(self, response: FileResponse) -> None:
        self.response = response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(k, v) for k, v in scope["headers"] if k not in (b"range", b"if-range")]
        await self.response({**scope, "headers": headers}, receive, send)


def _slot_resource(slot: UploadSlot, base_url: str) -> dict[str, Any]:
    url = slot.url
    if url.startswith("/"):  # a link to this server: absolute, as the client posts it as is
        url = base_url.rstrip("/") + url
    return {
        "upload_id": slot.upload_id,
        "url": url,
        "fields": dict(slot.fields),
        "expires_at": format_instant(slot.expires_at),
        "max_bytes": slot.max_bytes,
        "image_url": f"/images/{slot.upload_id}",
    }


def _bytes_response(request: Request, found: Download) -> Response:
    """An image's bytes, or its thumbnail's, in the fastest way the blob store allows."""
    etag = found.etag
    cache = {"ETag": etag, "Cache-Control": "private, max-age=0, must-revalidate"}
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=cache)
    if_range = request.headers.get("if-range")
    range_applies = found.size is not None and (if_range is None or if_range.strip() == etag)
    wanted = (
        requested_range(request.headers.get("range"), found.size)
        if range_applies and found.size is not None
        else None
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
        "Content-Disposition": attachment_disposition(found.filename),
        "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; sandbox",
    }
    if found.size is not None:
        headers["Accept-Ranges"] = "bytes"
    if wanted is None and found.local_path is not None:
        # A local file's stat takes microseconds; left to FileResponse, it is a hop to a
        # worker thread and back, a tenth of the time a 1 MiB download takes. The server
        # sends the file itself (ASGI pathsend).
        try:
            stat_result = Path(found.local_path).stat()
        except FileNotFoundError:  # deleted since it was found
            raise NotFound("no such image") from None
        file = FileResponse(
            found.local_path,
            headers=headers,
            media_type=found.content_type,
            stat_result=stat_result,
        )
        return _WithoutRange(file)  # type: ignore[return-value]
    body = iterate_in_threadpool(found.open(wanted))
    if wanted is None:
        if found.size is not None:
            headers["Content-Length"] = str(found.size)
        return StreamingResponse(body, 200, headers=headers, media_type=found.content_type)
    headers["Content-Length"] = str(wanted.length)
    headers["Content-Range"] = f"bytes {wanted.start}-{wanted.end}/{found.size}"
    return StreamingResponse(body, 206, headers=headers, media_type=found.content_type)


_T = TypeVar("_T")

Authenticate = Callable[[Request], str]
"""The user id a request speaks for, or Unauthenticated: a bearer token the embedded server
verifies itself, or the claims an API Gateway authorizer verified before the Lambda runs."""


def bearer_token_caller(tokens: TokenAuthority) -> Authenticate:
    return lambda request: tokens.caller_from_header(request.headers.get("authorization"))


class HttpApi:
    """The endpoints. Each authenticates, parses, calls one use case and renders the result."""

    def __init__(
        self,
        images: ImageService,
        authenticate: Authenticate,
        upload_links: SignedUploadLinks,
        max_upload_bytes: int,
        max_direct_upload_bytes: int,
        client_timeout: float,
        limiter: TokenBucketLimiter | None,
        reads_on_event_loop: bool = False,
    ):
        self.images = images
        self.authenticate = authenticate
        self.upload_links = upload_links
        self.max_upload_bytes = max_upload_bytes
        self.max_direct_upload_bytes = max_direct_upload_bytes
        self.client_timeout = client_timeout
        self.limiter = limiter
        self.reads_on_event_loop = reads_on_event_loop

    async def _read(self, read: Callable[..., _T], *arguments: Any) -> _T:
        """A use case that only reads, run where the stores make it cheapest (see
        ``Container.reads_on_event_loop``)."""
        if self.reads_on_event_loop:
            return read(*arguments)
        return await run_in_threadpool(read, *arguments)

    def _caller(self, request: Request) -> str:
        caller = self.authenticate(request)
        request.scope.setdefault("state", {})["caller"] = caller
        self._limit(caller)
        return caller

    def _limit(self, key: str) -> None:
        if self.limiter is not None:
            self.limiter.take(key)

    async def health(self, request: Request) -> Response:
        checks = await run_in_threadpool(check_stores, self.images.repository, self.images.blobs)
        healthy = all(state == HEALTHY for state in checks.values())
        return JSONResponse(
            {"status": "ok" if healthy else "failing", "checks": checks},
            200 if healthy else 503,
            headers={"Cache-Control": "no-store"},
        )

    async def upload(self, request: Request) -> Response:
        caller = self._caller(request)
        media_type = _media_type(request)
        if media_type != "multipart/form-data" and not media_type.startswith("image/"):
            raise UnsupportedMediaType(
                "send the image as multipart/form-data with the bytes in a 'file' part, "
                "or as the body with an image/* Content-Type and the fields as parameters"
            )
        self._refuse_declared_excess(request, self.max_upload_bytes)
        content_sha256 = _content_sha256(request)
        if media_type != "multipart/form-data":
            raw_fields: dict[str, str] | None = _single_parameters(request, RAW_UPLOAD_PARAMETERS)
        elif request.query_params:
            raise InvalidInput("with multipart/form-data, send the fields as parts of the form")
        else:
            raw_fields = None
        body = _BodyReader(request.receive, self.client_timeout)

        def store() -> Stored:
            if raw_fields is not None:
                command = UploadCommand(
                    chunks=body.chunks(),
                    content_sha256=content_sha256,
                    **_upload_fields(raw_fields),
                )
                return self.images.store_upload(caller, command)
            form = StreamingForm(
                request.headers.get("content-type", ""),
                body,
                text_fields=UPLOAD_TEXT_FIELDS,
                max_envelope_bytes=FORM_ENVELOPE_BYTES,
            )
            file = form.file()
            early = dict(form.fields)
            command = UploadCommand(
                chunks=file.chunks,
                filename=file.filename,
                content_sha256=content_sha256,
                late_fields=lambda: _upload_fields(
                    {name: value for name, value in form.fields.items() if name not in early}
                ),
                **_upload_fields(early),
            )
            return self.images.store_upload(caller, command)

        try:
            stored = await run_in_threadpool(store)
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is left to read it
        image = stored.image
        if not stored.created:
            return _resource_response(
                image, 200, **{"Content-Location": f"/images/{image.image_id}"}
            )
        return _resource_response(image, 201, Location=f"/images/{image.image_id}")

    def _refuse_declared_excess(self, request: Request, max_bytes: int) -> None:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes + FORM_ENVELOPE_BYTES:
            raise PayloadTooLarge(f"the upload is larger than the limit of {max_bytes} bytes")

    async def create_upload(self, request: Request) -> Response:
        caller = self._caller(request)
        command = DirectUploadCommand.from_mapping(await self._json_body(request))
        slot = await run_in_threadpool(self.images.create_upload, caller, command)
        return JSONResponse(
            _slot_resource(slot, str(request.base_url)),
            201,
            headers={"Cache-Control": "no-store"},
        )

    async def receive_upload(self, request: Request) -> Response:
        """The embedded server's own upload target: the link's fields are the credential."""
        upload_id = request.path_params["upload_id"]
        self._limit(f"address:{request.client.host if request.client else ''}")
        media_type = _media_type(request)
        if media_type != "multipart/form-data" and not media_type.startswith("image/"):
            raise UnsupportedMediaType(
                "post the fields and then the file as multipart/form-data, as to S3"
            )
        self._refuse_declared_excess(request, self.max_direct_upload_bytes)
        query = (
            _single_parameters(request, LINK_FIELDS)
            if media_type != "multipart/form-data"
            else None
        )
        body = _BodyReader(request.receive, self.client_timeout)

        def receive() -> Image:
            if query is not None:
                self.upload_links.verify(upload_id, query, self.max_direct_upload_bytes)
                return self.images.receive_upload(upload_id, body.chunks())
            form = StreamingForm(
                request.headers.get("content-type", ""),
                body,
                text_fields=LINK_FIELDS,
                max_envelope_bytes=FORM_ENVELOPE_BYTES,
            )
            file = form.file()
            self.upload_links.verify(upload_id, form.fields, self.max_direct_upload_bytes)
            declared = form.fields.get(CONTENT_TYPE_FIELD) or file.content_type or ""
            if not declared.lower().startswith("image/"):
                raise UnsupportedMediaType("the file's Content-Type must be an image/ type")
            return self.images.receive_upload(upload_id, file.chunks)

        try:
            image = await run_in_threadpool(receive)
        except ClientDisconnect:
            return Response(status_code=400)
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
        page = await self._read(self.images.list_images, caller, query, cursor)
        body = orjson.dumps(
            {
                "images": [orjson.Fragment(_rendered.json(image)) for image in page.images],
                "count": len(page.images),
                "next_cursor": page.next_cursor,
            }
        )
        return Response(
            body, headers={"Cache-Control": "private, no-cache"}, media_type="application/json"
        )

    async def get_image(self, request: Request) -> Response:
        caller = self._caller(request)
        image = await self._read(self.images.get, caller, request.path_params["image_id"])
        if etag_matches(request.headers.get("if-none-match"), image.etag):
            return Response(status_code=304, headers={"ETag": image.etag})
        return _resource_response(image)

    async def download(self, request: Request) -> Response:
        caller = self._caller(request)
        found = await self._read(self.images.download, caller, request.path_params["image_id"])
        return _bytes_response(request, found)

    async def thumbnail(self, request: Request) -> Response:
        caller = self._caller(request)
        found = await self._read(self.images.thumbnail, caller, request.path_params["image_id"])
        return _bytes_response(request, found)

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
        limited = _bounded(request, MAX_JSON_BODY_BYTES, too_large, self.client_timeout)
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


def _package_directory(package: str) -> Path:
    """Where a package's files are, without importing it (or importlib.resources): swagger-ui-py's
    __init__ loads jinja2 and PyYAML, 75 ms of the API Lambda's cold start, for assets that are
    only files."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"the package {package} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


SWAGGER_UI_ASSETS = str(_package_directory("swagger_ui") / "static")
DOCS_JS = """window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});\n"""
GALLERY_ASSETS = _package_directory("entrypoints") / "static" / "gallery"


Endpoint = Callable[[Request], Awaitable[Response]]


def _route(path: str, **by_method: Endpoint) -> Route:
    """One route per path, so a wrong method gets a 405 whose Allow header lists them all."""

    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await by_method[method](request)

    return Route(path, endpoint, methods=list(by_method))


def create_app(
    container: Container, authenticate: Authenticate | None = None, rate_limited: bool = True
) -> Starlette:
    """The ASGI app, with everything it uses taken from ``container``. Callers prove who they
    are with the embedded server's bearer tokens unless ``authenticate`` says otherwise; each
    caller's request rate is limited unless ``rate_limited`` is false."""
    api = HttpApi(
        images=container.images(),
        authenticate=authenticate or bearer_token_caller(container.tokens()),
        upload_links=container.upload_links(),
        max_upload_bytes=container.config.max_upload_bytes(),
        max_direct_upload_bytes=container.config.max_direct_upload_bytes(),
        client_timeout=container.config.client_timeout_seconds(),
        limiter=container.rate_limiter() if rate_limited else None,
        reads_on_event_loop=container.reads_on_event_loop(),
    )
    document = openapi_document()

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    async def docs(request: Request) -> Response:
        return HTMLResponse(
            DOCS_HTML, headers={"Content-Security-Policy": DOCS_CONTENT_SECURITY_POLICY}
        )

    async def docs_js(request: Request) -> Response:
        return Response(DOCS_JS, media_type="text/javascript")

    gallery_html = (GALLERY_ASSETS / "index.html").read_text(encoding="utf-8")

    async def gallery(request: Request) -> Response:
        return HTMLResponse(
            gallery_html, headers={"Content-Security-Policy": GALLERY_CONTENT_SECURITY_POLICY}
        )

    # Starlette tries routes in order: the ones nearly every request takes come first.
    routes = [
        _route("/images/{image_id}", GET=api.get_image, PATCH=api.update, DELETE=api.delete),
        _route("/images", GET=api.list_images, POST=api.upload),
        Route("/images/{image_id}/download", api.download, methods=["GET"]),
        Route("/images/{image_id}/thumbnail", api.thumbnail, methods=["GET"]),
        Route("/uploads", api.create_upload, methods=["POST"]),
        Route("/uploads/{upload_id}", api.receive_upload, methods=["POST"]),
        Route("/health", api.health, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
        Route("/docs/static/docs.js", docs_js, methods=["GET"]),
        Mount("/docs/static", StaticFiles(directory=SWAGGER_UI_ASSETS)),
        Route("/", gallery, methods=["GET"]),
        Mount("/gallery", StaticFiles(directory=str(GALLERY_ASSETS))),
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
