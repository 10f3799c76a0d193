"""Who a request speaks for: the embedded server's bearer tokens (HS256 JWTs whose ``sub`` is the
user id), or whatever else an ``Authenticate`` callable checks (API Gateway's authorizer)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import attrs
import jwt
from starlette.requests import Request

from imagecore import validation
from imagecore.errors import InvalidInput, Unauthenticated

ISSUER = "imagecore"
DEFAULT_TOKEN_TTL = timedelta(days=30)
VERIFIED_TOKENS_KEPT = 4096

Authenticate = Callable[[Request], str]
"""The user id a request speaks for, or Unauthenticated: a bearer token the embedded server
verifies itself, or the claims an API Gateway authorizer verified before the Lambda runs."""


class _VerifiedTokens:
    """Tokens whose signature and claims were checked, with their subject and expiry: a client
    sends the same token with every request, and checking its HMAC each time was the largest
    cost of a metadata read. Of the checks that passed, only the expiry's can fail later (a
    token not yet valid never gets here), so it is checked on every use. When full, the
    oldest entries go first. Single dict operations are atomic, so threads need no lock."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: dict[str, tuple[str, float]] = {}

    def get(self, token: str) -> tuple[str, float] | None:
        return self._entries.get(token)

    def put(self, token: str, user_id: str, expires: float) -> None:
        self._entries[token] = (user_id, expires)
        while len(self._entries) > self._capacity:
            # Another thread may have changed the entries meanwhile; the loop looks again.
            with contextlib.suppress(StopIteration, KeyError, RuntimeError):
                del self._entries[next(iter(self._entries))]


@attrs.frozen
class TokenAuthority:
    secret: bytes = attrs.field(repr=False)
    _verified: _VerifiedTokens = attrs.field(
        factory=lambda: _VerifiedTokens(VERIFIED_TOKENS_KEPT), init=False, repr=False, eq=False
    )

    def issue(self, user_id: str, ttl: timedelta = DEFAULT_TOKEN_TTL) -> str:
        validation.user_id(user_id)
        now = datetime.now(UTC)
        claims = {"sub": user_id, "iss": ISSUER, "iat": now, "exp": now + ttl}
        return jwt.encode(claims, self.secret, algorithm="HS256")

    def verify(self, token: str) -> str:
        """The user id a valid token speaks for; Unauthenticated for anything else."""
        known = self._verified.get(token)
        if known is not None:
            user_id, expires = known
            if time.time() < expires:
                return user_id
            raise Unauthenticated("the token has expired")
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=["HS256"],
                issuer=ISSUER,
                options={"require": ["sub", "exp", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the token has expired") from None
        except jwt.InvalidTokenError:
            raise Unauthenticated("the token is not valid for this server") from None
        try:
            user_id = validation.user_id(claims["sub"])
        except InvalidInput:
            raise Unauthenticated("the token's subject is not a valid user id") from None
        self._verified.put(token, user_id, float(claims["exp"]))
        return user_id

    def caller_from_header(self, authorization: str | None) -> str:
        if not authorization:
            raise Unauthenticated("send 'Authorization: Bearer <token>'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("send 'Authorization: Bearer <token>'")
        return self.verify(token.strip())


def bearer_token_caller(tokens: TokenAuthority) -> Authenticate:
    return lambda request: tokens.caller_from_header(request.headers.get("authorization"))
