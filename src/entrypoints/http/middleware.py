"""What wraps every request: its id, the security headers, the limit on header size, the 500
that reveals no internals, and the access line."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from entrypoints import logs
from entrypoints.http.errors import HeadersTooLarge, InternalError, error_body, status_of

log = logging.getLogger("imagecore.http")
access_log = logs.AccessLog()

MAX_HEADER_BYTES = 32 * 1024
"""The most a request's header names and values may add up to; more gets 431."""

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


RequestIdOf = Callable[[Scope], str | None]
"""The id a request already has from whatever passed it on (API Gateway's), or None."""


class RequestContext:
    """Gives every request an id (echoed in ``X-Request-ID``, every error body and every log
    line made while serving it), adds the security headers, turns an unexpected fault into a
    500 that reveals no internals, and logs one line per request to ``access_log``.
    ``request_id_of`` gives the id a request came with, to be its id here too; else one is
    made."""

    def __init__(
        self,
        app: ASGIApp,
        request_id_of: RequestIdOf | None = None,
        access_log: logs.AccessLog = access_log,
    ) -> None:
        self.app = app
        self.request_id_of = request_id_of
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # 80 random bits: unique enough to grep for, at a tenth of a ULID's cost (the log
        # lines that carry it have their own time). Not a secret, so not the system's random
        # source: a system call each took a tenth of a metadata read's own time. The random
        # module is seeded afresh in each worker process.
        given = self.request_id_of(scope) if self.request_id_of is not None else None
        request_id = given or f"{random.getrandbits(80):020x}"
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
                too_large = _error(
                    HeadersTooLarge(
                        f"the request's headers add up to more than {MAX_HEADER_BYTES} bytes"
                    ),
                    request_id,
                )
                await too_large(scope, receive_tracking_body, send_with_headers)
            else:
                await self.app(scope, receive_tracking_body, send_with_headers)
        except Exception:
            log.exception("unhandled error")
            if started:
                raise
            response = _error(InternalError("the server failed; the request id helps"), request_id)
            await response(scope, receive_tracking_body, send_with_headers)
        finally:
            method, path = scope["method"], scope["path"]
            self.access_log.write(
                f"{method} {path} {status}",
                method=method,
                path=path,
                status=status,
                duration_ms=round((time.perf_counter() - began) * 1000, 2),
                caller=state.get("caller"),
            )
            logs.request_id.reset(context)


def _error(error: HeadersTooLarge | InternalError, request_id: str) -> JSONResponse:
    """The answer the middleware gives itself, before or instead of the app's."""
    status = status_of(type(error))
    assert status is not None
    return JSONResponse(error_body(error.code, error.message, request_id), status_code=status)


def _header_bytes(scope: Scope) -> int:
    return sum(len(name) + len(value) for name, value in scope["headers"])


def _announces_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False
