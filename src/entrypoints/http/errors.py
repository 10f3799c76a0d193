"""Errors as HTTP answers: every error class the API can answer has a status, in one table, and
every answer has the body ``{error, message, request_id}``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from entrypoints.http.body import RequestTimeout
from entrypoints.http.capacity import ServiceUnavailable
from entrypoints.http.rate_limit import TooManyRequests
from imagecore.errors import (
    ChecksumMismatch,
    Conflict,
    Gone,
    ImageCoreError,
    InsufficientStorage,
    InvalidInput,
    Locked,
    NotAcceptable,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    RangeNotSatisfiable,
    Unauthenticated,
    UnsupportedMediaType,
)


class MethodNotAllowed(ImageCoreError):
    """The path exists, but not with this method: the Allow header lists the ones it has."""

    code = "MethodNotAllowed"


class OriginNotVerified(ImageCoreError):
    """The request did not come through the door the deployment put in front of the API
    (CloudFront, with its WAF limits): never about an image, whose absence is always 404."""

    code = "Forbidden"


class HeadersTooLarge(ImageCoreError):
    code = "HeadersTooLarge"


class InternalError(ImageCoreError):
    """The server failed: the answer reveals nothing of why, the log and the request id do."""

    code = "InternalError"


STATUS_BY_ERROR: Mapping[type[ImageCoreError], int] = {
    InvalidInput: 400,
    Unauthenticated: 401,
    OriginNotVerified: 403,
    NotFound: 404,
    MethodNotAllowed: 405,
    NotAcceptable: 406,
    RequestTimeout: 408,
    Conflict: 409,
    Gone: 410,
    PreconditionFailed: 412,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    RangeNotSatisfiable: 416,
    Locked: 423,
    TooManyRequests: 429,
    HeadersTooLarge: 431,
    ChecksumMismatch: 460,  # tus's checksum extension names this status
    InternalError: 500,
    ServiceUnavailable: 503,
    InsufficientStorage: 507,
}
"""The status of each error class; a subclass not listed has its nearest listed base's."""

_ERROR_BY_HTTP_STATUS: Mapping[int, type[ImageCoreError]] = {
    404: NotFound,
    405: MethodNotAllowed,
}
"""What Starlette's own refusals (no such route, no such method) are called in the API."""


def status_of(error: type[ImageCoreError]) -> int | None:
    """The status of an error class, found along its MRO; None if no class of it is listed."""
    return next((STATUS_BY_ERROR[base] for base in error.__mro__ if base in STATUS_BY_ERROR), None)


def error_classes() -> Iterator[type[ImageCoreError]]:
    """Every error class the API can answer with: those of the table and their subclasses."""
    seen: set[type[ImageCoreError]] = set()
    pending = list(STATUS_BY_ERROR)
    while pending:
        error = pending.pop(0)
        if error not in seen:
            seen.add(error)
            yield error
            pending[:0] = error.__subclasses__()


def error_codes() -> list[str]:
    return [error.code for error in error_classes()]


def error_body(code: str, message: str, request_id: str) -> dict[str, str]:
    return {"error": code, "message": message, "request_id": request_id}


def _request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


_HEADERS_BY_STATUS: Mapping[int, dict[str, str]] = {
    401: {"WWW-Authenticate": "Bearer"},
    406: {"Vary": "Accept"},  # a rendition refused for the Accept header (negotiation.py)
}


def _error_response(request: Request, code: str, message: str, status: int) -> JSONResponse:
    headers = _HEADERS_BY_STATUS.get(status)
    return JSONResponse(error_body(code, message, _request_id(request)), status, headers=headers)


async def domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ImageCoreError)
    # An error the table misses would be the client's to fix, as most are; the tests of
    # tests/http/test_error_statuses.py prove that none is missed.
    status = status_of(type(exc)) or 400
    response = _error_response(request, exc.code, exc.message, status)
    if isinstance(exc, TooManyRequests | ServiceUnavailable):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _ERROR_BY_HTTP_STATUS.get(exc.status_code, InvalidInput).code
    message = {404: "no such resource", 405: "method not allowed here"}.get(
        exc.status_code, str(exc.detail)
    )
    response = _error_response(request, code, message, exc.status_code)
    if exc.headers:
        response.headers.update(exc.headers)
    return response
