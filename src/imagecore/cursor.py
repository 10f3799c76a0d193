"""Opaque pagination cursors: a position in the list, bound to the query and the caller.

A cursor is ``base64url(payload).base64url(hmac)``. The payload holds the position, a fingerprint
of the filters and the caller, and an expiry. A cursor that was tampered with, belongs to other
filters or another caller, or has expired is rejected with InvalidCursor, never followed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
from datetime import UTC, datetime, timedelta

import attrs

from imagecore.errors import InvalidCursor
from imagecore.model import Position
from imagecore.ports import Clock
from imagecore.query import ListQuery

MAX_CURSOR_LENGTH = 512
_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_EXPIRY_STEP_SECONDS = 60


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@attrs.frozen
class CursorCodec:
    secret: bytes = attrs.field(repr=False)
    clock: Clock
    lifetime: timedelta = timedelta(hours=24)

    def _fingerprint(self, query: ListQuery, caller: str) -> str:
        bound = f"{caller}\x1e{query.fingerprint()}".encode()
        return hashlib.sha256(bound).hexdigest()[:32]

    def _sign(self, payload: str) -> str:
        return _b64encode(hmac.new(self.secret, payload.encode("ascii"), hashlib.sha256).digest())

    def expiry(self) -> int:
        """When a cursor made now expires, in seconds since the epoch: ``lifetime`` from now,
        rounded up to the minute, so that the cursors made in one minute for one place in one
        list are one string (and a page kept for reuse stays exactly what a new read gives)."""
        deadline = (self.clock.now() + self.lifetime).timestamp()
        return math.ceil(deadline / _EXPIRY_STEP_SECONDS) * _EXPIRY_STEP_SECONDS

    def encode(
        self, position: Position, query: ListQuery, caller: str, expires: int | None = None
    ) -> str:
        """The cursor to ``position``, expiring at ``expires`` (by default, ``expiry()``)."""
        body = {
            "v": _VERSION,
            "t": (position.created_at - _EPOCH) // _MICROSECOND,
            "i": position.image_id,
            "f": self._fingerprint(query, caller),
            "e": self.expiry() if expires is None else expires,
        }
        payload = _b64encode(json.dumps(body, separators=(",", ":")).encode())
        return f"{payload}.{self._sign(payload)}"

    def decode(self, token: str, query: ListQuery, caller: str) -> Position:
        if not token or len(token) > MAX_CURSOR_LENGTH or not token.isascii():
            raise InvalidCursor("the cursor is malformed")
        payload, _, signature = token.partition(".")
        if not hmac.compare_digest(self._sign(payload), signature):
            raise InvalidCursor("the cursor is malformed or was altered")
        try:
            body = json.loads(_b64decode(payload))
            fingerprint, micros, image_id, expires = body["f"], body["t"], body["i"], body["e"]
            if body["v"] != _VERSION or not isinstance(image_id, str):
                raise ValueError
            if not isinstance(fingerprint, str) or not fingerprint.isascii():
                raise ValueError
            created_at = _EPOCH + int(micros) * _MICROSECOND
            expires_at = datetime.fromtimestamp(int(expires), UTC)
        except (ValueError, KeyError, TypeError, OverflowError, binascii.Error):
            raise InvalidCursor("the cursor is malformed") from None
        if not hmac.compare_digest(fingerprint, self._fingerprint(query, caller)):
            raise InvalidCursor(
                "the cursor belongs to other filters or another caller: "
                "repeat the first request without a cursor"
            )
        if self.clock.now() >= expires_at:
            raise InvalidCursor("the cursor has expired: repeat the first request without a cursor")
        return Position(created_at, image_id)
