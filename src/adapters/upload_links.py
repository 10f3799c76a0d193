"""The embedded server's own upload links: the ``UploadTargets`` port without an object store.

A link is the server's URL for the slot plus form fields that carry its expiry and an HMAC of
the slot and the expiry under a key of the server's, so only a link the server gave out is
taken, and only until it expires. The server checks them when the bytes arrive (`verify`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from imagecore.errors import Unauthenticated
from imagecore.model import UploadTarget

UPLOAD_PATH = "/uploads"
EXPIRES_FIELD = "expires"
SIGNATURE_FIELD = "signature"
CONTENT_TYPE_FIELD = "Content-Type"


class SignedUploadLinks:
    """The ``UploadTargets`` and ``UploadLinkVerifier`` ports, with links signed by the server."""

    field_names = (EXPIRES_FIELD, SIGNATURE_FIELD)

    def __init__(self, key: bytes, clock: Callable[[], datetime]) -> None:
        self._key = key
        self._clock = clock

    def target(self, key: str, max_bytes: int, expires_at: datetime) -> UploadTarget:
        upload_id = key.rsplit("/", 1)[-1]
        expires = str(int(expires_at.timestamp()))
        return UploadTarget(
            url=f"{UPLOAD_PATH}/{upload_id}",
            fields={
                EXPIRES_FIELD: expires,
                SIGNATURE_FIELD: self._signature(upload_id, expires, max_bytes),
            },
        )

    def verify(self, upload_id: str, fields: Mapping[str, str], max_bytes: int) -> None:
        """Raises Unauthenticated unless the fields are those of a link this server gave out
        for ``upload_id`` that has not expired."""
        expires = fields.get(EXPIRES_FIELD, "")
        signature = fields.get(SIGNATURE_FIELD, "")
        expected = self._signature(upload_id, expires, max_bytes)
        # As bytes: compare_digest raises TypeError for a str with non-ASCII characters.
        if not expires.isdigit() or not hmac.compare_digest(signature.encode(), expected.encode()):
            raise Unauthenticated(
                "not a valid upload link: send the fields POST /uploads gave, unchanged"
            )
        expired_at = datetime.fromtimestamp(int(expires), UTC)
        if self._clock() > expired_at:
            raise Unauthenticated(
                f"the upload link expired at {expired_at.isoformat()}: ask for a new one"
            )

    def _signature(self, upload_id: str, expires: str, max_bytes: int) -> str:
        message = f"{upload_id}\n{expires}\n{max_bytes}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()
