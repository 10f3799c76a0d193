"""The endpoints: each authenticates the caller, parses the request into a command, calls one
use case and renders the result. No rule lives here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from entrypoints.http.auth import Authenticate
from entrypoints.http.body import (
    FORM_ENVELOPE_BYTES,
    BodyPace,
    IncomingBody,
    json_body,
    refuse_declared_excess,
)
from entrypoints.http.capacity import ServiceUnavailable, UploadCapacity
from entrypoints.http.conditional import etag_matches
from entrypoints.http.negotiation import acceptable_image_types
from entrypoints.http.parameters import (
    CONTENT_TYPE_FIELD,
    LIST_PARAMETERS,
    RAW_UPLOAD_PARAMETERS,
    UPLOAD_TEXT_FIELDS,
    content_sha256,
    link_fields,
    media_type,
    single_parameters,
    upload_fields,
)
from entrypoints.http.rate_limit import TokenBucketLimiter, TooManyRequests
from entrypoints.http.rendering import (
    bytes_response,
    page_response,
    resource_response,
    slot_resource,
)
from entrypoints.http.streaming_form import FilePart, StreamingForm
from entrypoints.http.upload_pipeline import write_pipelined
from imagecore.commands import DirectUploadCommand, NewUpload, UpdateCommand
from imagecore.errors import InvalidInput, PreconditionFailed, UnsupportedMediaType
from imagecore.health import HEALTHY
from imagecore.model import version_from_etag
from imagecore.ports import UploadLinkVerifier
from imagecore.query import build_list_query
from imagecore.results import Stored
from imagecore.service import ImageService
from imagecore.uploads import IncomingUpload

_T = TypeVar("_T")

Endpoint = Callable[[Request], Awaitable[Response]]

LINK_FORM_ENVELOPE_BYTES = 16 * 1024
"""What a post to an upload link may carry beside the file: its few short fields. Read before
the link is checked, so kept small: whoever sends it has shown no credential yet."""


def _write_piece(incoming: IncomingUpload, piece: list[bytes]) -> None:
    for part in piece:
        incoming.write(part)


def _write_form_piece(form: StreamingForm, incoming: IncomingUpload, piece: list[bytes]) -> None:
    for part in piece:
        if data := form.feed(part):
            incoming.write(data)


def _stored_response(stored: Stored) -> Response:
    """201 with a new image; 200 with the image of the caller's that already had the bytes."""
    image = stored.image
    if not stored.created:
        return resource_response(image, 200, **{"Content-Location": f"/images/{image.image_id}"})
    return resource_response(image, 201, Location=f"/images/{image.image_id}")


def _route(path: str, **by_method: Endpoint) -> Route:
    """One route per path, so a wrong method gets a 405 whose Allow header lists them all."""

    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await by_method[method](request)

    return Route(path, endpoint, methods=list(by_method))


class HttpApi:
    """The endpoints. Each authenticates, parses, calls one use case and renders the result."""

    def __init__(
        self,
        images: ImageService,
        authenticate: Authenticate,
        upload_links: UploadLinkVerifier,
        max_upload_bytes: int,
        max_direct_upload_bytes: int,
        body_pace: BodyPace,
        uploads: UploadCapacity,
        limiter: TokenBucketLimiter | None,
        reads_on_event_loop: bool = False,
    ):
        self.images = images
        self.authenticate = authenticate
        self.upload_links = upload_links
        self.link_fields = link_fields(upload_links)
        self.max_upload_bytes = max_upload_bytes
        self.max_direct_upload_bytes = max_direct_upload_bytes
        self.body_pace = body_pace
        self.uploads = uploads
        self.limiter = limiter
        self.reads_on_event_loop = reads_on_event_loop

    def routes(self) -> list[Route]:
        """Every endpoint's route. Starlette tries routes in order: the ones nearly every
        request takes come first."""
        return [
            _route("/images/{image_id}", GET=self.get_image, PATCH=self.update, DELETE=self.delete),
            _route("/images", GET=self.list_images, POST=self.upload),
            Route("/images/{image_id}/download", self.download, methods=["GET"]),
            Route("/images/{image_id}/thumbnail", self.thumbnail, methods=["GET"]),
            Route("/images/{image_id}/renditions/{name}", self.rendition, methods=["GET"]),
            Route("/uploads", self.create_upload, methods=["POST"]),
            Route("/uploads/{upload_id}", self.receive_upload, methods=["POST"]),
            Route("/health", self.health, methods=["GET"]),
        ]

    async def _read(self, read: Callable[..., _T], *arguments: Any) -> _T:
        """A use case that only reads, run where the stores make it cheapest (see
        ``Container.reads_on_event_loop``)."""
        if self.reads_on_event_loop:
            return read(*arguments)
        return await run_in_threadpool(read, *arguments)

    def caller(self, request: Request) -> str:
        """Who the request speaks for; counts against their request rate."""
        caller = self.authenticate(request)
        request.scope.setdefault("state", {})["caller"] = caller
        self._limit(caller)
        return caller

    def _limit(self, key: str) -> None:
        if self.limiter is not None:
            self.limiter.take(key)

    async def health(self, request: Request) -> Response:
        checks = await run_in_threadpool(self.images.health)
        healthy = all(state == HEALTHY for state in checks.values())
        return JSONResponse(
            {"status": "ok" if healthy else "failing", "checks": dict(checks)},
            200 if healthy else 503,
            headers={"Cache-Control": "no-store"},
        )

    async def upload(self, request: Request) -> Response:
        caller = self.caller(request)
        kind = media_type(request)
        if kind != "multipart/form-data" and not kind.startswith("image/"):
            raise UnsupportedMediaType(
                "send the image as multipart/form-data with the bytes in a 'file' part, "
                "or as the body with an image/* Content-Type and the fields as parameters"
            )
        refuse_declared_excess(request, self.max_upload_bytes)
        declared_sha256 = content_sha256(request)
        if kind != "multipart/form-data":
            raw_fields = single_parameters(request, RAW_UPLOAD_PARAMETERS)
        elif request.query_params:
            raise InvalidInput("with multipart/form-data, send the fields as parts of the form")
        body = IncomingBody(request.receive, self.body_pace)
        with self.uploads.place(caller):
            if kind != "multipart/form-data":
                upload = NewUpload(content_sha256=declared_sha256, **upload_fields(raw_fields))
                begun = await self.uploads.run(self.images.begin_upload, caller, upload)
                if isinstance(begun, IncomingUpload):
                    begun = await self._receive_file(body, begun)
            else:
                form = StreamingForm(
                    request.headers.get("content-type", ""),
                    text_fields=UPLOAD_TEXT_FIELDS,
                    max_envelope_bytes=FORM_ENVELOPE_BYTES,
                )
                file, first_data = await self._up_to_file(body, form)
                early = dict(form.fields)
                upload = NewUpload(
                    filename=file.filename,
                    content_sha256=declared_sha256,
                    **upload_fields(early),
                )
                begun = await self.uploads.run(self.images.begin_upload, caller, upload)
                if isinstance(begun, IncomingUpload):
                    begun = await self._receive_file(body, begun, form, first_data, set(early))
        return _stored_response(begun)

    async def create_upload(self, request: Request) -> Response:
        caller = self.caller(request)
        command = DirectUploadCommand.from_mapping(await json_body(request, self.body_pace))
        slot = await run_in_threadpool(self.images.create_upload, caller, command)
        if isinstance(slot, Stored):  # the caller has these bytes: no slot was made
            return _stored_response(slot)
        return JSONResponse(
            slot_resource(slot, str(request.base_url)),
            201,
            headers={"Cache-Control": "no-store"},
        )

    async def receive_upload(self, request: Request) -> Response:
        """The embedded server's own upload target: the link's fields are the credential, checked
        before a byte of the file is read."""
        upload_id = request.path_params["upload_id"]
        self._limit(f"address:{request.client.host if request.client else ''}")
        kind = media_type(request)
        if kind != "multipart/form-data" and not kind.startswith("image/"):
            raise UnsupportedMediaType(
                "post the fields and then the file as multipart/form-data, as to S3"
            )
        refuse_declared_excess(request, self.max_direct_upload_bytes)
        body = IncomingBody(request.receive, self.body_pace)
        form: StreamingForm | None = None
        first_data = b""
        if kind != "multipart/form-data":
            self.upload_links.verify(
                upload_id,
                single_parameters(request, self.link_fields),
                self.max_direct_upload_bytes,
            )
        else:
            form = StreamingForm(
                request.headers.get("content-type", ""),
                text_fields=self.link_fields,
                max_envelope_bytes=LINK_FORM_ENVELOPE_BYTES,
            )
            file, first_data = await self._up_to_file(body, form)
            self.upload_links.verify(upload_id, form.fields, self.max_direct_upload_bytes)
            declared = form.fields.get(CONTENT_TYPE_FIELD) or file.content_type or ""
            if not declared.lower().startswith("image/"):
                raise UnsupportedMediaType("the file's Content-Type must be an image/ type")
        incoming = await self.uploads.run(self.images.begin_receive, upload_id)
        early = set() if form is None else set(form.fields)
        try:
            with self.uploads.place(incoming.owner):
                stored = await self._receive_file(body, incoming, form, first_data, early)
        except (TooManyRequests, ServiceUnavailable):
            incoming.abort()  # refused a place before a byte was taken: nothing to undo
            raise
        return _stored_response(stored)

    async def _up_to_file(self, body: IncomingBody, form: StreamingForm) -> tuple[FilePart, bytes]:
        """Feed the form on the event loop until its file part begins (the fields sent before it
        are then in ``form.fields``); the part and the first of its data."""
        data = b""
        while form.file is None:
            piece = await body.next()
            if piece is None:
                form.end()  # raises: the body ended before any file part
            else:
                data = form.feed(piece)
        return form.file, data

    async def _receive_file(
        self,
        body: IncomingBody,
        incoming: IncomingUpload,
        form: StreamingForm | None = None,
        first_data: bytes = b"",
        early_fields: set[str] | frozenset[str] = frozenset(),
    ) -> Stored:
        """Hand the file to ``incoming`` as it arrives, in pieces received on the event loop and
        written in upload worker threads (the next received while the last is written), then
        finish it. Whatever fails aborts it first."""
        try:
            if first_data:  # file data the form already parsed on the event loop
                await self.uploads.run(incoming.write, first_data)
            write = (
                partial(_write_piece, incoming)
                if form is None
                else partial(_write_form_piece, form, incoming)
            )
            await write_pipelined(body.piece, write, self.uploads.run)
            late = None
            if form is not None:
                form.end()
                late = upload_fields(
                    {name: value for name, value in form.fields.items() if name not in early_fields}
                )
            return await self.uploads.run(incoming.finish, late)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.uploads.run(incoming.abort)
            raise

    async def list_images(self, request: Request) -> Response:
        caller = self.caller(request)
        given = single_parameters(request, LIST_PARAMETERS)
        # An empty parameter (?cursor=) is an absent one, as clients that build URLs send it.
        present = {name: value for name, value in given.items() if value != ""}
        cursor = present.pop("cursor", None)
        query = build_list_query(**present)
        page = await self._read(self.images.list_images, caller, query, cursor)
        return page_response(page)

    async def get_image(self, request: Request) -> Response:
        caller = self.caller(request)
        image = await self._read(self.images.get, caller, request.path_params["image_id"])
        if etag_matches(request.headers.get("if-none-match"), image.etag):
            return Response(status_code=304, headers={"ETag": image.etag})
        return resource_response(image)

    async def download(self, request: Request) -> Response:
        caller = self.caller(request)
        found = await self._read(self.images.download, caller, request.path_params["image_id"])
        return bytes_response(request, found)

    async def thumbnail(self, request: Request) -> Response:
        caller = self.caller(request)
        found = await self._read(self.images.thumbnail, caller, request.path_params["image_id"])
        return bytes_response(request, found, immutable=True)

    async def rendition(self, request: Request) -> Response:
        caller = self.caller(request)
        acceptable = acceptable_image_types(request.headers.get("accept"))
        found = await self._read(
            self.images.rendition,
            caller,
            request.path_params["image_id"],
            request.path_params["name"],
            acceptable,
        )
        return bytes_response(request, found, immutable=True, vary="Accept")

    async def update(self, request: Request) -> Response:
        caller = self.caller(request)
        command = UpdateCommand.from_mapping(await json_body(request, self.body_pace))
        expected_version = None
        if (if_match := request.headers.get("if-match")) is not None:
            try:
                expected_version = version_from_etag(if_match)
            except ValueError:
                raise PreconditionFailed("If-Match names no version of this image") from None
        image = await run_in_threadpool(
            self.images.update, caller, request.path_params["image_id"], command, expected_version
        )
        return resource_response(image)

    async def delete(self, request: Request) -> Response:
        caller = self.caller(request)
        await run_in_threadpool(self.images.delete, caller, request.path_params["image_id"])
        return Response(status_code=204)
