"""Bearer tokens of the embedded server: HS256 JWTs whose ``sub`` is the user id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import jwt

from imagecore import validation
from imagecore.errors import InvalidInput, Unauthenticated

ISSUER = "imagecore"
DEFAULT_TOKEN_TTL = timedelta(days=30)


@attrs.frozen
class TokenAuthority:
    secret: bytes = attrs.field(repr=False)

    def issue(self, user_id: str, ttl: timedelta = DEFAULT_TOKEN_TTL) -> str:
        validation.user_id(user_id)
        now = datetime.now(UTC)
        claims = {"sub": user_id, "iss": ISSUER, "iat": now, "exp": now + ttl}
        return jwt.encode(claims, self.secret, algorithm="HS256")

    def verify(self, token: str) -> str:
        """The user id a valid token speaks for; Unauthenticated for anything else."""
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
            return validation.user_id(claims["sub"])
        except InvalidInput:
            raise Unauthenticated("the token's subject is not a valid user id") from None

    def caller_from_header(self, authorization: str | None) -> str:
        if not authorization:
            raise Unauthenticated("send 'Authorization: Bearer <token>'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("send 'Authorization: Bearer <token>'")
        return self.verify(token.strip())
