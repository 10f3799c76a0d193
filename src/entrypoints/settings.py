"""The one settings object, read once at start from the environment (CLI flags override it).

Each setting is declared once, below: its field, default, environment variable and parser.
Reading the environment, writing it back for the server's worker processes and filling the
container all go through that one declaration."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from imagecore.thumbnails import (
    DEFAULT_PREVIEW_SIDE,
    DEFAULT_THUMBNAIL_SIDE,
    DEFAULT_THUMBNAIL_TIMEOUT_SECONDS,
)
from imagecore.upload_sessions import DEFAULT_SESSION_TTL
from imagecore.uploads import (
    DEFAULT_MAX_DIRECT_UPLOAD_BYTES,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_RESUMABLE_UPLOAD_BYTES,
    DEFAULT_MAX_UPLOAD_BYTES,
    DEFAULT_URL_TTL,
)

BACKENDS = ("filesystem", "memory", "aws")
DEFAULT_DATA_DIR = Path("imagecore-data")
DEFAULT_PUBLIC_TIMELINE_SHARDS = 4  # the DynamoDB repository's own default too
MAX_PUBLIC_TIMELINE_SHARDS = 64


class SettingsError(ValueError):
    """A setting is missing or wrong; the message names the variable and what it accepts."""


def _lowercase(_name: str, text: str) -> str:
    return text.strip().lower()


def _text(_name: str, text: str) -> str | None:
    return text.strip() or None


def _secret(_name: str, text: str) -> str | None:
    return text or None  # a secret is taken exactly as given: its spaces are part of it


def _path(_name: str, text: str) -> Path:
    return Path(text)


def _positive_int(name: str, text: str) -> int | None:
    if not text.strip():
        return None  # empty: the default
    try:
        value = int(text)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {text!r}") from None
    if value <= 0:
        raise SettingsError(f"{name} must be greater than zero")
    return value


Parse = Callable[[str, str], Any]


def _setting(
    default: Any, *names: str, parse: Parse = _text, exported: bool = True, repr: bool = True
) -> Any:
    """A setting read from the first of the environment variables ``names`` that is set.
    ``exported`` ones are handed on to the server's worker processes; the others (AWS's own
    variables) reach them anyway, and boto3 reads them itself."""
    return attrs.field(
        default=default,
        repr=repr,
        metadata={"names": names, "parse": parse, "exported": exported},
    )


@attrs.frozen
class Settings:
    backend: str = _setting("filesystem", "IMAGECORE_BACKEND", parse=_lowercase)
    data_dir: Path = _setting(DEFAULT_DATA_DIR, "IMAGECORE_DATA_DIR", parse=_path)  # noqa: RUF009
    max_upload_bytes: int = _setting(
        DEFAULT_MAX_UPLOAD_BYTES, "IMAGECORE_MAX_UPLOAD_BYTES", parse=_positive_int
    )
    token_secret: str | None = _setting(None, "IMAGECORE_TOKEN_SECRET", parse=_secret, repr=False)
    origin_verify_secret: str | None = _setting(
        None, "IMAGECORE_ORIGIN_VERIFY_SECRET", parse=_secret, repr=False
    )
    """The API Lambda serves only requests whose X-Origin-Verify header holds this: those that
    came through CloudFront (and its WAF limits), which adds it. None: no such check."""
    token_secret_parameter: str | None = _setting(None, "IMAGECORE_TOKEN_SECRET_PARAMETER")
    """The SSM parameter (a SecureString) that holds the token secret, read once at start: how
    an AWS deployment hands its functions the secret without putting it in their environment."""
    url_ttl_seconds: int = _setting(
        int(DEFAULT_URL_TTL.total_seconds()), "IMAGECORE_URL_TTL_SECONDS", parse=_positive_int
    )
    cdn_domain: str | None = _setting(None, "IMAGECORE_CDN_DOMAIN")
    """The media distribution's host name (d111.cloudfront.net, or a name of yours for it):
    with it, the aws backend's downloads and renditions are served by CloudFront signed URLs
    instead of S3 presigned ones, and can be cached (terraform/modules/media)."""
    cdn_key_id: str | None = _setting(None, "IMAGECORE_CDN_KEY_ID")
    """The id of the CloudFront public key (of the distribution's trusted key group) whose
    private key signs the links."""
    cdn_private_key_parameter: str | None = _setting(None, "IMAGECORE_CDN_PRIVATE_KEY_PARAMETER")
    """The SSM parameter (a SecureString, made by `imagecore cdn-key`) that holds the private
    key's PEM, read once at start: never the key itself in the environment."""
    table: str | None = _setting(None, "IMAGECORE_TABLE")
    bucket: str | None = _setting(None, "IMAGECORE_BUCKET")
    # boto3 reads these itself too; they are kept here to choose path-style S3 addressing for a
    # local endpoint and to name the region in error messages.
    aws_endpoint_url: str | None = _setting(None, "AWS_ENDPOINT_URL", exported=False)
    aws_region: str | None = _setting(None, "AWS_REGION", "AWS_DEFAULT_REGION", exported=False)
    queue_url: str | None = _setting(None, "IMAGECORE_QUEUE_URL")
    public_timeline_shards: int = _setting(
        DEFAULT_PUBLIC_TIMELINE_SHARDS, "IMAGECORE_PUBLIC_TIMELINE_SHARDS", parse=_positive_int
    )
    """The aws backend's public timelines are spread over this many DynamoDB partitions each, so
    public uploads are not limited by one partition's writes. Only ever raise it."""
    max_direct_upload_bytes: int = _setting(
        DEFAULT_MAX_DIRECT_UPLOAD_BYTES, "IMAGECORE_MAX_DIRECT_UPLOAD_BYTES", parse=_positive_int
    )
    max_resumable_upload_bytes: int = _setting(
        DEFAULT_MAX_RESUMABLE_UPLOAD_BYTES,
        "IMAGECORE_MAX_RESUMABLE_UPLOAD_BYTES",
        parse=_positive_int,
    )
    upload_session_ttl_seconds: int = _setting(
        int(DEFAULT_SESSION_TTL.total_seconds()),
        "IMAGECORE_UPLOAD_SESSION_TTL_SECONDS",
        parse=_positive_int,
    )
    max_image_pixels: int = _setting(
        DEFAULT_MAX_PIXELS, "IMAGECORE_MAX_IMAGE_PIXELS", parse=_positive_int
    )
    thumbnail_side: int = _setting(
        DEFAULT_THUMBNAIL_SIDE, "IMAGECORE_THUMBNAIL_SIDE", parse=_positive_int
    )
    preview_side: int = _setting(
        DEFAULT_PREVIEW_SIDE, "IMAGECORE_PREVIEW_SIDE", parse=_positive_int
    )
    thumbnail_attempts: int = _setting(3, "IMAGECORE_THUMBNAIL_ATTEMPTS", parse=_positive_int)
    thumbnail_timeout_seconds: int = _setting(
        DEFAULT_THUMBNAIL_TIMEOUT_SECONDS,
        "IMAGECORE_THUMBNAIL_TIMEOUT_SECONDS",
        parse=_positive_int,
    )
    job_workers: int = _setting(2, "IMAGECORE_JOB_WORKERS", parse=_positive_int)
    """Background jobs (thumbnails) run at once on the whole server, whatever the number of
    server workers: each may take a few hundred MiB."""
    rate_limit_per_second: int = _setting(
        20, "IMAGECORE_RATE_LIMIT_PER_SECOND", parse=_positive_int
    )
    rate_limit_burst: int = _setting(200, "IMAGECORE_RATE_LIMIT_BURST", parse=_positive_int)
    client_timeout_seconds: int = _setting(
        30, "IMAGECORE_CLIENT_TIMEOUT_SECONDS", parse=_positive_int
    )
    client_min_bytes_per_second: int = _setting(
        1024, "IMAGECORE_CLIENT_MIN_BYTES_PER_SECOND", parse=_positive_int
    )
    max_uploads: int = _setting(64, "IMAGECORE_MAX_UPLOADS", parse=_positive_int)
    max_uploads_per_user: int = _setting(8, "IMAGECORE_MAX_UPLOADS_PER_USER", parse=_positive_int)
    workers: int | None = _setting(None, "IMAGECORE_WORKERS", parse=_positive_int)
    """Server worker processes; None: one per core the process may use (one on the memory
    backend, whose store lives in a process)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from their environment variables; ``overrides`` that are not None win."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in attrs.fields(cls):
            for name in field.metadata["names"]:
                text = env.get(name)
                if not text:
                    continue  # unset or empty: the next name, or the default
                value = field.metadata["parse"](name, text)
                if value is not None:  # None: blank, which means the default too
                    values[field.name] = value
                break
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
        if self.token_secret is not None and self.token_secret_parameter is not None:
            raise SettingsError(
                "IMAGECORE_TOKEN_SECRET and IMAGECORE_TOKEN_SECRET_PARAMETER are both set: set "
                "one, the secret itself or the SSM parameter that holds it"
            )
        if self.token_secret_parameter is not None and importlib.util.find_spec("boto3") is None:
            raise SettingsError(
                "IMAGECORE_TOKEN_SECRET_PARAMETER (an SSM parameter) needs boto3: install "
                "imagecore with the aws extra, pip install 'imagecore[aws]'"
            )
        if not 16 <= self.thumbnail_side <= 2048:
            raise SettingsError("IMAGECORE_THUMBNAIL_SIDE must be between 16 and 2048 pixels")
        if not self.thumbnail_side <= self.preview_side <= 4096:
            raise SettingsError(
                "IMAGECORE_PREVIEW_SIDE must be between IMAGECORE_THUMBNAIL_SIDE "
                f"({self.thumbnail_side}) and 4096 pixels"
            )
        if not 1 <= self.public_timeline_shards <= MAX_PUBLIC_TIMELINE_SHARDS:
            raise SettingsError(
                "IMAGECORE_PUBLIC_TIMELINE_SHARDS must be between 1 and "
                f"{MAX_PUBLIC_TIMELINE_SHARDS}: a public list reads every shard"
            )
        if self.backend == "memory" and (self.workers or 1) > 1:
            raise SettingsError(
                "IMAGECORE_WORKERS above 1 needs a backend the workers share: the memory "
                "backend keeps its images in one process"
            )
        if self.queue_url is not None and self.backend != "aws":
            raise SettingsError("IMAGECORE_QUEUE_URL (an SQS queue) needs IMAGECORE_BACKEND=aws")
        self._check_cdn()
        if self.backend == "aws":
            self._check_aws()

    def _check_cdn(self) -> None:
        cdn = {
            "IMAGECORE_CDN_DOMAIN": self.cdn_domain,
            "IMAGECORE_CDN_KEY_ID": self.cdn_key_id,
            "IMAGECORE_CDN_PRIVATE_KEY_PARAMETER": self.cdn_private_key_parameter,
        }
        given = [name for name, value in cdn.items() if value]
        if not given:
            return
        if len(given) < len(cdn):
            missing = [name for name in cdn if name not in given]
            raise SettingsError(
                f"{', '.join(given)} needs {' and '.join(missing)} too: the CDN's links need "
                "its domain, its public key's id and the parameter holding the private key"
            )
        if self.backend != "aws":
            raise SettingsError(
                "IMAGECORE_CDN_DOMAIN (CloudFront in front of the S3 bucket) needs "
                "IMAGECORE_BACKEND=aws"
            )
        domain = self.cdn_domain or ""
        if "/" in domain or ":" in domain:
            raise SettingsError(
                "IMAGECORE_CDN_DOMAIN must be a host name such as d111.cloudfront.net, without "
                f"scheme or path, not {domain!r}"
            )

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

    @property
    def worker_count(self) -> int:
        if self.workers is not None:
            return self.workers
        if self.backend == "memory":
            return 1
        return (
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else os.cpu_count() or 1
        )

    def to_environ(self) -> dict[str, str]:
        """The variables that reproduce these settings in another process (the server workers)."""
        environ: dict[str, str] = {}
        for field in attrs.fields(type(self)):
            value = getattr(self, field.name)
            if field.metadata["exported"] and value is not None:
                environ[field.metadata["names"][0]] = str(value)
        return environ

    def as_config(self) -> dict[str, Any]:
        """Every setting by name, as the container's configuration takes them, and where the
        server's workers keep their limits: in their process when there is one, else in files
        they share."""
        config = attrs.asdict(self, recurse=False)
        config["limits_kept"] = "in_process" if self.worker_count == 1 else "shared"
        return config
