"""The ASGI app: the routes of the endpoints and pages, the error handlers and the middleware,
put together from the use cases and the parts given. `asgi` and the API Lambda give them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from entrypoints.http.auth import Authenticate
from entrypoints.http.endpoints import HealthCheck, HttpApi
from entrypoints.http.errors import domain_error, http_error
from entrypoints.http.middleware import RequestContext
from entrypoints.http.openapi import openapi_document
from entrypoints.http.pages import page_routes
from entrypoints.http.rate_limit import TokenBucketLimiter
from imagecore.errors import ImageCoreError
from imagecore.ports import UploadLinkVerifier
from imagecore.service import ImageService

Endpoint = Callable[[Request], Awaitable[Response]]


def _route(path: str, **by_method: Endpoint) -> Route:
    """One route per path, so a wrong method gets a 405 whose Allow header lists them all."""

    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await by_method[method](request)

    return Route(path, endpoint, methods=list(by_method))


def create_app(
    *,
    images: ImageService,
    authenticate: Authenticate,
    upload_links: UploadLinkVerifier,
    limiter: TokenBucketLimiter | None,
    health_check: HealthCheck,
    max_upload_bytes: int,
    max_direct_upload_bytes: int,
    client_timeout: float,
    reads_on_event_loop: bool = False,
) -> Starlette:
    """The ASGI app. ``authenticate`` says who a request speaks for; each caller's request rate
    is limited by ``limiter`` unless it is None; ``health_check`` is what GET /health reports."""
    api = HttpApi(
        images=images,
        authenticate=authenticate,
        upload_links=upload_links,
        health_check=health_check,
        max_upload_bytes=max_upload_bytes,
        max_direct_upload_bytes=max_direct_upload_bytes,
        client_timeout=client_timeout,
        limiter=limiter,
        reads_on_event_loop=reads_on_event_loop,
    )
    # Starlette tries routes in order: the ones nearly every request takes come first.
    routes: list[BaseRoute] = [
        _route("/images/{image_id}", GET=api.get_image, PATCH=api.update, DELETE=api.delete),
        _route("/images", GET=api.list_images, POST=api.upload),
        Route("/images/{image_id}/download", api.download, methods=["GET"]),
        Route("/images/{image_id}/thumbnail", api.thumbnail, methods=["GET"]),
        Route("/uploads", api.create_upload, methods=["POST"]),
        Route("/uploads/{upload_id}", api.receive_upload, methods=["POST"]),
        Route("/health", api.health, methods=["GET"]),
        *page_routes(openapi_document()),
    ]
    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        ImageCoreError: domain_error,
        HTTPException: http_error,
    }
    app = Starlette(routes=routes, exception_handlers=handlers)
    app.add_middleware(RequestContext)
    return app
