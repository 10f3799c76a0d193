"""The HTTP stack's ceiling: granian + Starlette answering a constant 200-byte JSON body."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

BODY = (b'{"status":"ok","padding":"' + b"x" * 200)[:198] + b'"}'
assert len(BODY) == 200


async def constant(request: Request) -> Response:
    return Response(BODY, media_type="application/json")


app = Starlette(routes=[Route("/{path:path}", constant)])
