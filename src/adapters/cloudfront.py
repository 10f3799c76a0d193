"""Links to image bytes through CloudFront: signed URLs (canned policy) to the media distribution
in front of the images bucket (terraform/modules/media).

The distribution requires a URL signed by a key of its trusted key group on every request, so a
link is as private as an S3 presigned one; unlike one, it can be cached, by CloudFront and by the
browser, because it does not change with every request (see ``CloudFrontLinks``).

A link may ask for the response's Content-Type and Content-Disposition, as an S3 presigned URL
does, with S3's own ``response-content-type`` and ``response-content-disposition`` in its query:
they are part of the signed URL (a viewer who changes them breaks the signature), the
distribution's cache policy keys on them and so forwards them, and S3 honours them because the
distribution's requests to it are signed (origin access control). Originals, stored without a
type or a name, are served so; renditions, stored with their type, as stored.
"""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from botocore.signers import CloudFrontSigner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

__all__ = ["CloudFrontKeyError", "CloudFrontLinks", "new_signing_key"]

RESPONSE_CONTENT_TYPE = "response-content-type"
RESPONSE_CONTENT_DISPOSITION = "response-content-disposition"
"""S3's names for the response headers a GET may ask for; terraform/modules/media's cache policy
keys on (and so forwards) exactly these two."""

KEY_BITS = 2048
"""CloudFront's trusted key groups take RSA keys of 2048 bits."""


class CloudFrontKeyError(ValueError):
    """The signing key is not one CloudFront can verify; the message says why."""


def new_signing_key() -> tuple[str, str]:
    """A new RSA-2048 key pair for CloudFront signed URLs: (private PEM, PKCS#8 unencrypted, to
    keep as a secret; public PEM, SubjectPublicKeyInfo, the form CloudFront takes)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private.decode("ascii"), public.decode("ascii")


def _rsa_private_key(pem: str) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeEncodeError):
        # Nothing of the text in the message: it may be most of a private key.
        raise CloudFrontKeyError(
            "the CloudFront signing key is not an unencrypted PEM private key"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size != KEY_BITS:
        raise CloudFrontKeyError(
            f"the CloudFront signing key must be an RSA key of {KEY_BITS} bits "
            "(`imagecore cdn-key` makes one)"
        )
    return key


class CloudFrontLinks:
    """Signed URLs to objects of the bucket behind the distribution ``domain``, signed with the
    private key whose public key is ``key_id`` in the distribution's trusted key group.

    The expiry is windowed: a link asked for at ``now`` with ``ttl`` expires at the first
    multiple of ``ttl`` (since the epoch) that is at least ``now + ttl``, so it lives between
    ``ttl`` and twice ``ttl``, and every caller within one window of ``ttl`` gets the very same
    URL. The URL being the same, the browser's cache and CloudFront's serve it again; a URL that
    changed with every request would be a new object to both each time.

    Signed with RSA PKCS#1 v1.5 over SHA-1, which is what CloudFront verifies (botocore builds
    the canned policy and the query string).
    """

    def __init__(
        self,
        domain: str,
        key_id: str,
        private_key_pem: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not domain or "/" in domain or ":" in domain:
            raise CloudFrontKeyError(
                f"the CloudFront domain must be a host name such as d111.cloudfront.net, "
                f"not {domain!r}"
            )
        if not key_id:
            raise CloudFrontKeyError("the CloudFront public key id is empty")
        key = _rsa_private_key(private_key_pem)
        self._domain = domain
        self._signer = CloudFrontSigner(key_id, self._signing(key))
        self._clock = clock

    @staticmethod
    def _signing(key: rsa.RSAPrivateKey) -> Callable[[bytes], bytes]:
        def sign(message: bytes) -> bytes:
            return key.sign(message, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303

        return sign

    def expiry(self, ttl: timedelta) -> datetime:
        """When a link asked for now with ``ttl`` expires (see the class)."""
        seconds = int(ttl.total_seconds())
        if seconds <= 0:
            raise ValueError(f"a link's ttl must be at least a second, not {ttl}")
        earliest = self._clock().timestamp() + seconds
        return datetime.fromtimestamp(math.ceil(earliest / seconds) * seconds, UTC)

    def url(
        self,
        object_name: str,
        ttl: timedelta,
        *,
        content_type: str | None = None,
        content_disposition: str | None = None,
    ) -> str:
        """The signed URL of the object ``object_name`` (an S3 object name), valid until
        ``expiry(ttl)``, answered with ``content_type`` and ``content_disposition`` where given
        and with the object's own headers otherwise."""
        path = urllib.parse.quote(object_name, safe="/")
        asked = {
            RESPONSE_CONTENT_DISPOSITION: content_disposition,
            RESPONSE_CONTENT_TYPE: content_type,
        }
        # In one order, so that a link asked for twice in a window is the same URL.
        query = urllib.parse.urlencode(
            sorted((name, value) for name, value in asked.items() if value is not None),
            quote_via=urllib.parse.quote,
        )
        # The canned policy signs the whole URL, this query included; botocore appends Expires,
        # Signature and Key-Pair-Id after it.
        return self._signer.generate_presigned_url(
            f"https://{self._domain}/{path}" + (f"?{query}" if query else ""),
            date_less_than=self.expiry(ttl),
        )
