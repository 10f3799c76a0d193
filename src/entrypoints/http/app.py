"""The ASGI app: the endpoints' and pages' routes, the error handlers and the middleware, put
together from the use cases and the parts given. `asgi` and the API Lambda give them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from entrypoints import logs
from entrypoints.http.auth import Authenticate
from entrypoints.http.body import BodyPace
from entrypoints.http.capacity import UploadCapacity
from entrypoints.http.endpoints import HttpApi
from entrypoints.http.errors import domain_error, http_error
from entrypoints.http.middleware import RequestContext, RequestIdOf
from entrypoints.http.openapi import openapi_document
from entrypoints.http.origin import OriginVerification
from entrypoints.http.pages import page_routes
from entrypoints.http.rate_limit import TokenBucketLimiter
from entrypoints.http.tus import TusApi
from entrypoints.http.upload_sessions import UploadSessionsApi
from imagecore.errors import ImageCoreError
from imagecore.ports import UploadLinkVerifier
from imagecore.service import ImageService

Lifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]
"""What runs around the serving: background work of the process's own."""


def create_app(
    *,
    images: ImageService,
    authenticate: Authenticate,
    upload_links: UploadLinkVerifier,
    limiter: TokenBucketLimiter | None,
    max_upload_bytes: int,
    max_direct_upload_bytes: int,
    max_resumable_upload_bytes: int,
    client_timeout: float,
    client_min_rate: float,
    uploads: UploadCapacity,
    reads_on_event_loop: bool = False,
    lifespan: Lifespan | None = None,
    origin_secret: str | None = None,
    request_id_of: RequestIdOf | None = None,
    access_lines_behind: bool = False,
) -> Starlette:
    """The ASGI app. ``authenticate`` says who a request speaks for; each caller's request rate
    is limited by ``limiter`` unless it is None. A client may pause its body for
    ``client_timeout`` seconds, and must send it at ``client_min_rate`` bytes a second at
    least; ``uploads`` bounds the uploads under way. ``lifespan`` runs around the serving
    (background work of the process's own). With ``origin_secret``, only requests whose
    X-Origin-Verify header holds it are served (the API Lambda behind CloudFront).
    ``request_id_of`` gives the id a request came with (API Gateway's), to be its id in the app
    too. With ``access_lines_behind`` (a long-running server), the access lines are written
    behind, off the event loop, while the app serves (logs.AccessLog.written_behind)."""
    access_log = logs.AccessLog()
    if access_lines_behind:
        lifespan = _with_access_lines_behind(access_log, lifespan)
    api = HttpApi(
        images=images,
        authenticate=authenticate,
        upload_links=upload_links,
        max_upload_bytes=max_upload_bytes,
        max_direct_upload_bytes=max_direct_upload_bytes,
        body_pace=BodyPace(idle_timeout=client_timeout, min_rate=client_min_rate),
        uploads=uploads,
        limiter=limiter,
        reads_on_event_loop=reads_on_event_loop,
    )
    sessions = UploadSessionsApi(images=images, caller=api.caller, body_pace=api.body_pace)
    routes: list[BaseRoute] = [
        *api.routes(),
        *sessions.routes(),
        *page_routes(openapi_document()),
    ]
    if images.partials is not None:  # the server keeps partial bytes: it speaks tus
        tus = TusApi(
            images=images,
            caller=api.caller,
            body_pace=api.body_pace,
            uploads=uploads,
            max_bytes=max_resumable_upload_bytes,
        )
        routes[1:1] = tus.routes()
    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        ImageCoreError: domain_error,
        HTTPException: http_error,
    }
    app = Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)
    if origin_secret is not None:
        # Added first, so it runs inside RequestContext (each middleware added wraps the others).
        app.add_middleware(OriginVerification, secret=origin_secret)
    app.add_middleware(RequestContext, request_id_of=request_id_of, access_log=access_log)
    return app


def _with_access_lines_behind(access_log: logs.AccessLog, lifespan: Lifespan | None) -> Lifespan:
    @contextlib.asynccontextmanager
    async def serving(app: Starlette) -> AsyncIterator[None]:
        with access_log.written_behind():
            if lifespan is None:
                yield
            else:
                async with lifespan(app):
                    yield

    return serving
