"""The pages a person opens in a browser: the interactive API docs at /docs (Swagger UI, served
from the installed assets) and the gallery at /, with the OpenAPI document they read and the
icon they show."""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from entrypoints.http.conditional import etag_matches

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

DOCS_HTML = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>imagecore API</title>
  <link rel="icon" href="/favicon.ico">
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
STATIC = Path(__file__).resolve().parent / "static"
GALLERY_ASSETS = STATIC / "gallery"
FAVICON_CACHE_CONTROL = "public, max-age=604800"
"""A week: the icon changes only with a release, and a browser asking again costs a request
per page otherwise. Not ``immutable``: its URL is fixed, so a new icon must replace it."""


def page_routes(document: Mapping[str, Any]) -> list[BaseRoute]:
    """The routes of the OpenAPI ``document``, the docs page that shows it and the gallery."""

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    async def docs(request: Request) -> Response:
        return HTMLResponse(
            DOCS_HTML, headers={"Content-Security-Policy": DOCS_CONTENT_SECURITY_POLICY}
        )

    async def docs_js(request: Request) -> Response:
        return Response(DOCS_JS, media_type="text/javascript")

    gallery_html = (GALLERY_ASSETS / "index.html").read_text(encoding="utf-8")
    # A few kilobytes, read once: every page of every browser asks for it.
    favicon_bytes = (STATIC / "favicon.ico").read_bytes()
    favicon_headers = {
        "ETag": f'"{hashlib.sha256(favicon_bytes).hexdigest()[:32]}"',
        "Cache-Control": FAVICON_CACHE_CONTROL,
    }

    async def favicon(request: Request) -> Response:
        if etag_matches(request.headers.get("if-none-match"), favicon_headers["ETag"]):
            return Response(status_code=304, headers=favicon_headers)
        return Response(favicon_bytes, media_type="image/x-icon", headers=favicon_headers)

    async def gallery(request: Request) -> Response:
        return HTMLResponse(
            gallery_html, headers={"Content-Security-Policy": GALLERY_CONTENT_SECURITY_POLICY}
        )

    return [
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
        Route("/docs/static/docs.js", docs_js, methods=["GET"]),
        Mount("/docs/static", StaticFiles(directory=SWAGGER_UI_ASSETS)),
        Route("/", gallery, methods=["GET"]),
        Route("/favicon.ico", favicon, methods=["GET"]),
        Mount("/gallery", StaticFiles(directory=str(GALLERY_ASSETS))),
    ]
