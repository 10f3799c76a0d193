"""The one settings object, read once at start from the environment (CLI flags override it)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path

import attrs

BACKENDS = ("filesystem", "memory", "aws")
MIB = 1024 * 1024


class SettingsError(ValueError):
    """A setting is missing or wrong; the message names the variable and what it accepts."""


@attrs.frozen
class Settings:
    backend: str = "filesystem"
    data_dir: Path = Path("imagecore-data")
    max_upload_bytes: int = 50 * MIB
    token_secret: str | None = attrs.field(default=None, repr=False)
    url_ttl_seconds: int = 900
    table: str | None = None
    bucket: str | None = None
    aws_endpoint_url: str | None = None
    aws_region: str | None = None
    queue_url: str | None = None
    max_direct_upload_bytes: int = 500 * MIB
    max_image_pixels: int = 100_000_000
    thumbnail_side: int = 256
    thumbnail_attempts: int = 3
    rate_limit_per_second: int = 20
    rate_limit_burst: int = 200
    client_timeout_seconds: int = 30

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from ``IMAGECORE_*`` variables; ``overrides`` that are not None win."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {
            "backend": env.get("IMAGECORE_BACKEND", "filesystem").strip().lower(),
            "data_dir": Path(env.get("IMAGECORE_DATA_DIR", "imagecore-data")),
            "max_upload_bytes": _positive_int(env, "IMAGECORE_MAX_UPLOAD_BYTES", 50 * MIB),
            "token_secret": env.get("IMAGECORE_TOKEN_SECRET") or None,
            "url_ttl_seconds": _positive_int(env, "IMAGECORE_URL_TTL_SECONDS", 900),
            "table": env.get("IMAGECORE_TABLE", "").strip() or None,
            "bucket": env.get("IMAGECORE_BUCKET", "").strip() or None,
            # boto3 reads these itself too; they are kept here to choose path-style S3 addressing
            # for a local endpoint and to name the region in error messages.
            "aws_endpoint_url": env.get("AWS_ENDPOINT_URL", "").strip() or None,
            "aws_region": (env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "").strip()
            or None,
            "queue_url": env.get("IMAGECORE_QUEUE_URL", "").strip() or None,
            "max_direct_upload_bytes": _positive_int(
                env, "IMAGECORE_MAX_DIRECT_UPLOAD_BYTES", 500 * MIB
            ),
            "max_image_pixels": _positive_int(env, "IMAGECORE_MAX_IMAGE_PIXELS", 100_000_000),
            "thumbnail_side": _positive_int(env, "IMAGECORE_THUMBNAIL_SIDE", 256),
            "thumbnail_attempts": _positive_int(env, "IMAGECORE_THUMBNAIL_ATTEMPTS", 3),
            "rate_limit_per_second": _positive_int(env, "IMAGECORE_RATE_LIMIT_PER_SECOND", 20),
            "rate_limit_burst": _positive_int(env, "IMAGECORE_RATE_LIMIT_BURST", 200),
            "client_timeout_seconds": _positive_int(env, "IMAGECORE_CLIENT_TIMEOUT_SECONDS", 30),
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        settings = cls(**values)  # type: ignore[arg-type]
        settings.check()
        return settings

    def check(self) -> None:
        if self.backend not in BACKENDS:
            raise SettingsError(
                f"IMAGECORE_BACKEND must be one of {', '.join(BACKENDS)}, not {self.backend!r}"
            )
        if self.token_secret is not None and len(self.token_secret) < 32:
            raise SettingsError("IMAGECORE_TOKEN_SECRET must be at least 32 characters long")
        if not 16 <= self.thumbnail_side <= 2048:
            raise SettingsError("IMAGECORE_THUMBNAIL_SIDE must be between 16 and 2048 pixels")
        if self.queue_url is not None and self.backend != "aws":
            raise SettingsError("IMAGECORE_QUEUE_URL (an SQS queue) needs IMAGECORE_BACKEND=aws")
        if self.backend == "aws":
            self._check_aws()

    def _check_aws(self) -> None:
        missing = [
            name
            for name, value in (("IMAGECORE_TABLE", self.table), ("IMAGECORE_BUCKET", self.bucket))
            if not value
        ]
        if missing:
            raise SettingsError(
                f"IMAGECORE_BACKEND=aws needs {' and '.join(missing)}: the DynamoDB table and "
                "S3 bucket (Terraform outputs, or made by `imagecore aws-setup`)"
            )
        if importlib.util.find_spec("boto3") is None:
            raise SettingsError(
                "IMAGECORE_BACKEND=aws needs boto3: install imagecore with the aws extra, "
                "pip install 'imagecore[aws]'"
            )

    def to_environ(self) -> dict[str, str]:
        """The variables that reproduce these settings in another process (the server workers)."""
        environ = {
            "IMAGECORE_BACKEND": self.backend,
            "IMAGECORE_DATA_DIR": str(self.data_dir),
            "IMAGECORE_MAX_UPLOAD_BYTES": str(self.max_upload_bytes),
            "IMAGECORE_URL_TTL_SECONDS": str(self.url_ttl_seconds),
            "IMAGECORE_MAX_DIRECT_UPLOAD_BYTES": str(self.max_direct_upload_bytes),
            "IMAGECORE_MAX_IMAGE_PIXELS": str(self.max_image_pixels),
            "IMAGECORE_THUMBNAIL_SIDE": str(self.thumbnail_side),
            "IMAGECORE_THUMBNAIL_ATTEMPTS": str(self.thumbnail_attempts),
            "IMAGECORE_RATE_LIMIT_PER_SECOND": str(self.rate_limit_per_second),
            "IMAGECORE_RATE_LIMIT_BURST": str(self.rate_limit_burst),
            "IMAGECORE_CLIENT_TIMEOUT_SECONDS": str(self.client_timeout_seconds),
        }
        if self.queue_url is not None:
            environ["IMAGECORE_QUEUE_URL"] = self.queue_url
        if self.token_secret is not None:
            environ["IMAGECORE_TOKEN_SECRET"] = self.token_secret
        if self.table is not None:
            environ["IMAGECORE_TABLE"] = self.table
        if self.bucket is not None:
            environ["IMAGECORE_BUCKET"] = self.bucket
        return environ


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name)
    if text is None or not text.strip():
        return default
    try:
        value = int(text)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {text!r}") from None
    if value <= 0:
        raise SettingsError(f"{name} must be greater than zero")
    return value
