"""The HTTP API behind API Gateway, for the Lambda entrypoint (`aws_lambda.api`).

It is the very app `imagecore serve` runs, driven by Mangum, which turns API Gateway events
(HTTP API payload 2.0, REST and HTTP API payload 1.0, base64 bodies both ways) into ASGI requests
and the responses back. Only who the caller is differs: the gateway's JWT authorizer has verified
the token already, and the caller is the ``sub`` claim it passes in the request context. A token
in the Authorization header is never read here, so a route left without an authorizer can reach
no one's images. And the request's id is the gateway's own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from mangum import Mangum
from starlette.requests import Request

from entrypoints.container import Container
from imagecore import validation
from imagecore.errors import InvalidInput, Unauthenticated

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def authorizer_claims(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """The verified claims of an API Gateway event: where an HTTP API's JWT authorizer puts them
    (payload 2.0 and 1.0), or a REST API's Cognito authorizer."""
    authorizer = _mapping(_mapping(event.get("requestContext")).get("authorizer"))
    jwt = _mapping(authorizer.get("jwt"))
    return _mapping(jwt.get("claims")) if "claims" in jwt else _mapping(authorizer.get("claims"))


def caller_from_authorizer(request: Request) -> str:
    subject = authorizer_claims(_mapping(request.scope.get("aws.event"))).get("sub")
    if subject is None:
        raise Unauthenticated("send 'Authorization: Bearer <token>'")
    try:
        return validation.user_id(subject)
    except InvalidInput:
        raise Unauthenticated("the token's subject is not a valid user id") from None


_GATEWAY_REQUEST_ID = re.compile(r"[A-Za-z0-9+/=_.:-]{1,128}")
"""What API Gateway's request ids look like (``JKJaXmPLvHcESHA=`` for an HTTP API, a UUID for a
REST API): nothing else is taken, as the id goes into a response header and every log line."""


def gateway_request_id(scope: Mapping[str, Any]) -> str | None:
    """API Gateway's id of the request (``$context.requestId`` in its access log), so that the
    app's own lines, ``X-Request-ID`` and error bodies carry the very id of the gateway's access
    log line: one grep goes from either to the other."""
    request_id = _mapping(_mapping(scope.get("aws.event")).get("requestContext")).get("requestId")
    if isinstance(request_id, str) and _GATEWAY_REQUEST_ID.fullmatch(request_id):
        return request_id
    return None


def create_handler(container: Container) -> LambdaHandler:
    # API Gateway's stage throttling, and with the edge (CloudFront and WAF) each token's and
    # each anonymous address's limits, bound the request rate before a Lambda runs. The edge
    # holds only if no request gets around it: with IMAGECORE_ORIGIN_VERIFY_SECRET set, a
    # request without CloudFront's header is refused.
    app = container.http_app(
        authenticate=caller_from_authorizer,
        limiter=None,
        origin_secret=container.config.origin_verify_secret(),
        request_id_of=gateway_request_id,
    )
    # The app has no startup or shutdown work; Lambda would not run shutdown anyway.
    return Mangum(app, lifespan="off")
