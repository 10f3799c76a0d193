"""Upload sessions sent in parts straight to the blob store (S3 multipart uploads) at
``/upload-sessions``: the API hands out part URLs, lists the parts that arrived, and completes
or cancels; no byte of the file passes through it. The server without such a store (the
embedded one) answers 400 here, pointing to tus at /files/.

This module only translates: JSON in, one use case of ImageService, JSON out. The rules are the
domain's (imagecore.resumable).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from entrypoints.http.body import BodyPace, json_body
from entrypoints.http.rendering import resource_response
from imagecore.commands import NewMultipartUpload, PartUrlsRequest
from imagecore.convert import format_instant
from imagecore.multipart import PartUrls
from imagecore.results import Stored
from imagecore.service import ImageService
from imagecore.upload_sessions import UploadSession

_NO_STORE = {"Cache-Control": "no-store"}


def session_resource(session: UploadSession) -> dict[str, Any]:
    """A session as ``POST /upload-sessions`` answers it."""
    return {
        "upload_id": session.upload_id,
        "size": session.size,
        "part_size": session.part_size,
        "part_count": session.part_count,
        "expires_at": format_instant(session.expires_at),
        "image_url": f"/images/{session.upload_id}",
    }


def session_state(session: UploadSession) -> dict[str, Any]:
    """A session as ``GET /upload-sessions/{id}`` answers it: where it stands."""
    return {
        **session_resource(session),
        "parts": [
            {"number": part.number, "size": part.size, "etag": part.etag} for part in session.parts
        ],
        "received_bytes": session.received,
        "complete": session.completed,
    }


def part_urls_resource(urls: PartUrls) -> dict[str, Any]:
    return {
        "urls": [
            {"number": number, "url": target.url, "headers": dict(target.headers)}
            for number, target in urls.targets
        ],
        "expires_at": format_instant(urls.expires_at),
    }


class UploadSessionsApi:
    """The endpoints of upload sessions. Each authenticates, parses, calls one use case and
    renders the result."""

    def __init__(
        self, images: ImageService, caller: Callable[[Request], str], body_pace: BodyPace
    ) -> None:
        self.images = images
        self.caller = caller
        self.body_pace = body_pace

    def routes(self) -> list[Route]:
        return [
            Route("/upload-sessions", self.open, methods=["POST"]),
            Route("/upload-sessions/{upload_id}", self.by_method, methods=["GET", "DELETE"]),
            Route("/upload-sessions/{upload_id}/part-urls", self.part_urls, methods=["POST"]),
            Route("/upload-sessions/{upload_id}/complete", self.complete, methods=["POST"]),
        ]

    async def by_method(self, request: Request) -> Response:
        if request.method == "DELETE":
            return await self.cancel(request)
        return await self.state(request)

    async def open(self, request: Request) -> Response:
        caller = self.caller(request)
        self.images.check_multipart()
        command = NewMultipartUpload.from_mapping(await json_body(request, self.body_pace))
        opened = await run_in_threadpool(self.images.open_multipart, caller, command)
        if isinstance(opened, Stored):  # the caller has these bytes: no session was made
            image = opened.image
            return resource_response(
                image, 200, **{"Content-Location": f"/images/{image.image_id}"}
            )
        return JSONResponse(
            session_resource(opened),
            201,
            headers={"Location": f"/upload-sessions/{opened.upload_id}", **_NO_STORE},
        )

    async def state(self, request: Request) -> Response:
        caller = self.caller(request)
        self.images.check_multipart()
        session = await run_in_threadpool(
            self.images.multipart_session, caller, request.path_params["upload_id"]
        )
        return JSONResponse(session_state(session), headers=_NO_STORE)

    async def part_urls(self, request: Request) -> Response:
        caller = self.caller(request)
        self.images.check_multipart()
        upload_id = request.path_params["upload_id"]
        wanted = PartUrlsRequest.from_mapping(await json_body(request, self.body_pace))
        urls = await run_in_threadpool(self.images.part_targets, caller, upload_id, wanted)
        return JSONResponse(part_urls_resource(urls), headers=_NO_STORE)

    async def complete(self, request: Request) -> Response:
        caller = self.caller(request)
        self.images.check_multipart()
        session = await run_in_threadpool(
            self.images.complete_multipart, caller, request.path_params["upload_id"]
        )
        return JSONResponse(
            {"upload_id": session.upload_id, "image_url": f"/images/{session.upload_id}"},
            202,
            headers=_NO_STORE,
        )

    async def cancel(self, request: Request) -> Response:
        caller = self.caller(request)
        self.images.check_multipart()
        await run_in_threadpool(
            self.images.cancel_multipart, caller, request.path_params["upload_id"]
        )
        return Response(status_code=204)
