"""Resumable uploads by the tus protocol, 1.0.0 (https://tus.io/protocols/resumable-upload), at
``/files/`` (tusd's default path, which clients assume): core, creation, creation-with-upload,
termination, expiration and checksum, with the API's bearer token.

This module only speaks the protocol: headers in, a use case of ImageService, headers out. The
rules (who may append, when the bytes become an image) are the domain's (imagecore.resumable).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable, Mapping
from email.utils import format_datetime

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from entrypoints.http.body import BodyPace, IncomingBody, RequestTimeout
from entrypoints.http.capacity import UploadCapacity
from entrypoints.http.errors import domain_error
from entrypoints.http.header_numbers import exceeds
from entrypoints.http.parameters import upload_fields
from entrypoints.http.upload_pipeline import write_pipelined
from imagecore.commands import NewResumableUpload
from imagecore.errors import (
    ImageCoreError,
    InvalidInput,
    PayloadTooLarge,
    PreconditionFailed,
    UnsupportedMediaType,
)
from imagecore.resumable import CHECKSUM_ALGORITHMS, Appending, Checksum
from imagecore.service import ImageService
from imagecore.upload_sessions import UploadSession

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,creation-with-upload,termination,expiration,checksum"
OFFSET_MEDIA_TYPE = "application/offset+octet-stream"
IMAGE_LOCATION = "Image-Location"
"""Names the image an upload became (``/images/{id}``), on the answer that took its last byte
and on every HEAD after: a client that lost the last answer finds its image by a HEAD."""

METADATA_FIELDS = (
    "filename",
    "title",
    "description",
    "tags",
    "metadata",
    "visibility",
    "sha256",
    "filetype",
    "content_type",
)
"""What ``Upload-Metadata`` may carry: the fields of ``POST /images`` (``tags`` a JSON array or
a comma-separated list, ``metadata`` a JSON object), the file's ``sha256`` (hex), and its type
as ``filetype`` (what tus-js-client sends) or ``content_type``. Other keys are refused."""

MAX_METADATA_BYTES = 64 * 1024


def parse_metadata(header: str) -> dict[str, str]:
    """``Upload-Metadata``: comma-separated pairs of a key and its value in base64."""
    if len(header) > MAX_METADATA_BYTES:
        raise InvalidInput(f"Upload-Metadata is longer than {MAX_METADATA_BYTES} bytes")
    found: dict[str, str] = {}
    for pair in header.split(","):
        if not pair.strip():
            continue
        key, _, encoded = pair.strip().partition(" ")
        if key not in METADATA_FIELDS:
            raise InvalidInput(
                f"unknown Upload-Metadata key {key!r}: use {', '.join(METADATA_FIELDS)}"
            )
        if key in found:
            raise InvalidInput(f"Upload-Metadata gives {key!r} twice")
        try:
            found[key] = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidInput(
                f"the Upload-Metadata value of {key!r} is not UTF-8 text in base64"
            ) from None
    return found


def _command(metadata: Mapping[str, str], size: int) -> NewResumableUpload:
    fields = upload_fields(metadata)
    return NewResumableUpload(
        **fields,
        size=size,
        sha256=metadata.get("sha256"),
        content_type=metadata.get("content_type") or metadata.get("filetype") or None,
    )


def _whole_number(request: Request, header: str) -> int:
    value = request.headers.get(header)
    if value is None:
        raise InvalidInput(f"send the {header} header")
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise InvalidInput(f"{header} must be a whole number of bytes")
    return int(value)


def _checksum(request: Request) -> Checksum | None:
    header = request.headers.get("upload-checksum")
    if header is None:
        return None
    algorithm, _, encoded = header.strip().partition(" ")
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        raise InvalidInput("Upload-Checksum must be an algorithm, a space, and base64") from None
    return Checksum(algorithm.lower(), digest)


def _expires(session: UploadSession) -> dict[str, str]:
    if session.image is not None:
        return {}
    return {"Upload-Expires": format_datetime(session.expires_at, usegmt=True)}


def _session_headers(session: UploadSession) -> dict[str, str]:
    headers = {
        "Tus-Resumable": TUS_VERSION,
        "Upload-Offset": str(session.received),
        "Cache-Control": "no-store",
        **_expires(session),
    }
    if session.image is not None:
        headers[IMAGE_LOCATION] = f"/images/{session.image.image_id}"
    return headers


class TusApi:
    """The tus endpoints. Each authenticates, checks the protocol's headers, calls one use
    case and answers in headers; errors have the API's JSON body."""

    def __init__(
        self,
        images: ImageService,
        caller: Callable[[Request], str],
        body_pace: BodyPace,
        uploads: UploadCapacity,
        max_bytes: int,
    ) -> None:
        self.images = images
        self.caller = caller
        self.body_pace = body_pace
        self.uploads = uploads
        self.max_bytes = max_bytes

    def routes(self) -> list[Route]:
        return [
            Route("/files/", self._speaking(self.options_or_create), methods=["OPTIONS", "POST"]),
            Route(
                "/files/{upload_id}",
                self._speaking(self.by_method),
                methods=["HEAD", "PATCH", "DELETE", "OPTIONS"],
                name="tus_upload",
            ),
        ]

    def _speaking(
        self, endpoint: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """Every answer carries Tus-Resumable, errors included; a client speaking another
        version of the protocol is told which one this is (412)."""

        async def wrapped(request: Request) -> Response:
            try:
                if request.method != "OPTIONS":
                    version = request.headers.get("tus-resumable")
                    if version != TUS_VERSION:
                        raise PreconditionFailed(
                            f"this server speaks tus {TUS_VERSION}: send Tus-Resumable: "
                            f"{TUS_VERSION}"
                        )
                response: Response = await endpoint(request)
            except ImageCoreError as error:
                response = await domain_error(request, error)
            if request.method != "OPTIONS":
                response.headers["Tus-Resumable"] = TUS_VERSION
            if response.status_code == 412:
                response.headers["Tus-Version"] = TUS_VERSION
            return response

        return wrapped

    async def options_or_create(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return self.options()
        return await self.create(request)

    async def by_method(self, request: Request) -> Response:
        handlers = {
            "HEAD": self.head,
            "PATCH": self.patch,
            "DELETE": self.terminate,
        }
        if request.method == "OPTIONS":
            return self.options()
        return await handlers[request.method](request)

    def options(self) -> Response:
        return Response(
            status_code=204,
            headers={
                "Tus-Resumable": TUS_VERSION,
                "Tus-Version": TUS_VERSION,
                "Tus-Extension": EXTENSIONS,
                "Tus-Max-Size": str(self.max_bytes),
                "Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS),
            },
        )

    async def create(self, request: Request) -> Response:
        caller = self.caller(request)
        if "upload-defer-length" in request.headers:
            raise InvalidInput("send Upload-Length: this server needs the size up front")
        size = _whole_number(request, "upload-length")
        if size > self.max_bytes:
            raise PayloadTooLarge(f"the file is larger than the limit of {self.max_bytes} bytes")
        metadata = parse_metadata(request.headers.get("upload-metadata", ""))
        with_upload = request.headers.get("content-type", "").lower() == OFFSET_MEDIA_TYPE
        session = await self.uploads.run(self.images.open_session, caller, _command(metadata, size))
        location = str(request.url_for("tus_upload", upload_id=session.upload_id))
        if with_upload:
            appending = await self.uploads.run(
                self.images.begin_append, caller, session.upload_id, 0, _checksum(request)
            )
            session = await self._take_body(request, caller, appending)
        return Response(
            status_code=201, headers={"Location": location, **_session_headers(session)}
        )

    async def head(self, request: Request) -> Response:
        caller = self.caller(request)
        session = await self.uploads.run(
            self.images.upload_session, caller, request.path_params["upload_id"]
        )
        return Response(
            status_code=200,
            headers={"Upload-Length": str(session.size), **_session_headers(session)},
        )

    async def patch(self, request: Request) -> Response:
        caller = self.caller(request)
        if request.headers.get("content-type", "").lower() != OFFSET_MEDIA_TYPE:
            raise UnsupportedMediaType(f"send the bytes as {OFFSET_MEDIA_TYPE}")
        offset = _whole_number(request, "upload-offset")
        appending = await self.uploads.run(
            self.images.begin_append,
            caller,
            request.path_params["upload_id"],
            offset,
            _checksum(request),
        )
        session = await self._take_body(request, caller, appending)
        return Response(status_code=204, headers=_session_headers(session))

    async def terminate(self, request: Request) -> Response:
        caller = self.caller(request)
        await self.uploads.run(self.images.cancel_session, caller, request.path_params["upload_id"])
        return Response(status_code=204)

    async def _take_body(
        self, request: Request, caller: str, appending: Appending
    ) -> UploadSession:
        """The request's bytes into the session, received on the event loop and written in
        upload threads. A body cut short keeps what arrived (so the client resumes from
        there), unless a checksum was to prove it: then it keeps nothing."""
        body = IncomingBody(request.receive, self.body_pace)
        cut_short: list[BaseException] = []

        async def next_piece() -> list[bytes] | None:
            try:
                return await body.piece()
            except (InvalidInput, RequestTimeout) as error:
                cut_short.append(error)
                raise

        def write(piece: list[bytes]) -> None:
            for part in piece:
                appending.write(part)

        try:
            if exceeds(request.headers.get("content-length", ""), self.max_bytes):
                raise PayloadTooLarge(f"the upload is larger than {self.max_bytes} bytes")
            with self.uploads.place(caller):
                await write_pipelined(next_piece, write, self.uploads.run)
                return await self.uploads.run(appending.commit)
        except BaseException as error:
            with anyio.CancelScope(shield=True):
                if cut_short and error is cut_short[0] and not appending.verifies_checksum:
                    await self.uploads.run(appending.commit)
                else:
                    await self.uploads.run(appending.abort)
            raise
