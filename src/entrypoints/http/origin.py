"""Requests through one door only. Behind CloudFront (terraform/modules/edge) the API serves only
requests that carry the secret header CloudFront adds to each one it forwards: a client calling
API Gateway's own URL would otherwise get around the edge's WAF and its per-user limits."""

from __future__ import annotations

import hmac

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from entrypoints.http.errors import OriginNotVerified, error_body, status_of

ORIGIN_VERIFY_HEADER = "X-Origin-Verify"
"""The header CloudFront adds (custom_header of the distribution's origin in modules/edge)."""

_HEADER = ORIGIN_VERIFY_HEADER.lower().encode("latin-1")


class OriginVerification:
    """Refuses (403, the error body) every request whose X-Origin-Verify header is not
    ``secret``. It runs inside `RequestContext`, so the refusal has a request id, the security
    headers and its access line like every other answer."""

    def __init__(self, app: ASGIApp, secret: str) -> None:
        self.app = app
        self._secret = secret.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._verified(scope):
            await self.app(scope, receive, send)
            return
        error = OriginNotVerified(
            "requests must come through the API's CloudFront URL (Terraform's api_url output), "
            "not API Gateway's own"
        )
        status = status_of(OriginNotVerified)
        assert status is not None
        request_id = str(scope.get("state", {}).get("request_id", ""))
        response = JSONResponse(error_body(error.code, error.message, request_id), status)
        await response(scope, receive, send)

    def _verified(self, scope: Scope) -> bool:
        given = [value for name, value in scope["headers"] if name == _HEADER]
        # Constant time: how much of a guess was right must not show in the time of the answer.
        return len(given) == 1 and hmac.compare_digest(given[0], self._secret)
