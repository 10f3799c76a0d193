"""The one place where adapters are chosen and wired to the use cases."""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dependency_injector import containers, providers

from adapters.filesystem import FilesystemBlobStore
from adapters.memory import MemoryBlobStore, MemoryImageRepository
from adapters.pillow import PillowInspector
from adapters.secret_file import load_or_create_secret
from adapters.sqlite import SqliteImageRepository
from adapters.system import SystemClock, UlidGenerator
from adapters.thread_jobs import ThreadPoolJobQueue
from adapters.thumbnails import PillowThumbnailer
from adapters.upload_links import SignedUploadLinks
from entrypoints.http.app import create_app
from entrypoints.http.auth import TokenAuthority, bearer_token_caller
from entrypoints.http.rate_limit import TokenBucketLimiter
from entrypoints.settings import Settings
from imagecore.cursor import CursorCodec
from imagecore.health import check_stores
from imagecore.ports import BlobStore, ImageRepository, JobQueue, UploadTargets
from imagecore.service import ImageService

if TYPE_CHECKING:
    from adapters.aws import AwsClients

SQLITE_FILE = "imagecore.sqlite3"
BLOB_DIR = "blobs"


def server_secret(data_dir: str, configured: str | None) -> bytes:
    return configured.encode() if configured else load_or_create_secret(Path(data_dir))


def _aws_clients(endpoint_url: str | None, region: str | None) -> AwsClients:
    from adapters.aws import make_clients  # boto3 is only needed, and installed, for this backend

    return make_clients(endpoint_url=endpoint_url, region=region)


def _dynamodb_repository(clients: AwsClients, table: str) -> ImageRepository:
    from adapters.dynamodb import DynamoDbImageRepository

    return DynamoDbImageRepository(clients.dynamodb, table)


def _s3_blob_store(clients: AwsClients, bucket: str) -> BlobStore:
    from adapters.s3 import S3BlobStore

    return S3BlobStore(clients.s3, bucket)


def _sqs_job_queue(endpoint_url: str | None, region: str | None, queue_url: str) -> JobQueue:
    from adapters.aws import make_sqs_client
    from adapters.sqs import SqsJobQueue

    return SqsJobQueue(make_sqs_client(endpoint_url, region), queue_url)


def _presigned_posts(
    clients: AwsClients, bucket: str, clock: Callable[[], datetime]
) -> UploadTargets:
    from adapters.s3 import S3PresignedPosts

    return S3PresignedPosts(clients.s3, bucket, clock)


def _image_service(jobs: JobQueue, **parts: Any) -> ImageService:
    """The use cases; a job queue of this process's own is served by them."""
    service = ImageService(jobs=jobs, **parts)
    if isinstance(jobs, ThreadPoolJobQueue):
        jobs.serve(service.run_job)
    return service


def derived_key(secret: bytes, purpose: str) -> bytes:
    """A key of its own for each use of the secret, so no signature is valid for two purposes."""
    return hmac.new(secret, purpose.encode(), hashlib.sha256).digest()


class Container(containers.DeclarativeContainer):
    config = providers.Configuration(strict=True)

    secret = providers.Singleton(
        server_secret, data_dir=config.data_dir, configured=config.token_secret
    )
    clock = providers.Singleton(SystemClock)
    ids = providers.Singleton(UlidGenerator)
    inspector = providers.Singleton(PillowInspector)
    # One set of clients per process, made only when the aws backend is chosen.
    aws = providers.Singleton(
        _aws_clients, endpoint_url=config.aws_endpoint_url, region=config.aws_region
    )

    repository = providers.Selector(
        config.backend,
        memory=providers.Singleton(MemoryImageRepository),
        filesystem=providers.Singleton(
            SqliteImageRepository,
            path=providers.Callable(lambda root: Path(root) / SQLITE_FILE, config.data_dir),
        ),
        aws=providers.Singleton(_dynamodb_repository, clients=aws, table=config.table),
    )
    blobs = providers.Selector(
        config.backend,
        memory=providers.Singleton(MemoryBlobStore),
        filesystem=providers.Singleton(
            FilesystemBlobStore,
            root=providers.Callable(lambda root: Path(root) / BLOB_DIR, config.data_dir),
        ),
        aws=providers.Singleton(_s3_blob_store, clients=aws, bucket=config.bucket),
    )
    cursors = providers.Singleton(
        CursorCodec, secret=providers.Callable(derived_key, secret, "cursor"), clock=clock
    )
    tokens = providers.Singleton(TokenAuthority, secret=secret)
    rate_limiter = providers.Singleton(
        TokenBucketLimiter, rate=config.rate_limit_per_second, burst=config.rate_limit_burst
    )
    upload_links = providers.Singleton(
        SignedUploadLinks,
        key=providers.Callable(derived_key, secret, "upload-link"),
        clock=clock.provided.now,
    )
    upload_targets = providers.Selector(
        config.backend,
        memory=upload_links,
        filesystem=upload_links,
        aws=providers.Singleton(
            _presigned_posts, clients=aws, bucket=config.bucket, clock=clock.provided.now
        ),
    )
    local_jobs = providers.Singleton(ThreadPoolJobQueue, attempts=config.thumbnail_attempts)
    # Jobs go to SQS where a queue is configured (on AWS, for the worker Lambda), else they
    # run in this process.
    jobs = providers.Selector(
        providers.Callable(lambda url: "sqs" if url else "local", config.queue_url),
        sqs=providers.Singleton(
            _sqs_job_queue,
            endpoint_url=config.aws_endpoint_url,
            region=config.aws_region,
            queue_url=config.queue_url,
        ),
        local=local_jobs,
    )
    # Where the HTTP API runs a use case that only reads. The local stores answer from memory
    # or the page cache in microseconds, less than a hop to a worker thread and back costs
    # (measured: ~20 us for a SQLite get, ~115 us for the hop), so those run on the event loop;
    # network stores would stall every other request there, so theirs run in worker threads.
    reads_on_event_loop = providers.Selector(
        config.backend,
        memory=providers.Object(True),
        filesystem=providers.Object(True),
        aws=providers.Object(False),
    )
    thumbnailer = providers.Singleton(PillowThumbnailer, max_pixels=config.max_image_pixels)
    images = providers.Singleton(
        _image_service,
        jobs=jobs,
        thumbnailer=thumbnailer,
        upload_targets=upload_targets,
        max_direct_upload_bytes=config.max_direct_upload_bytes,
        max_pixels=config.max_image_pixels,
        thumbnail_side=config.thumbnail_side,
        repository=repository,
        blobs=blobs,
        inspector=inspector,
        clock=clock,
        ids=ids,
        cursors=cursors,
        max_upload_bytes=config.max_upload_bytes,
        url_ttl=providers.Callable(
            lambda seconds: timedelta(seconds=seconds), config.url_ttl_seconds
        ),
    )
    # The HTTP API; the API Lambda calls it with authenticate= and limiter= of its own.
    http_app = providers.Factory(
        create_app,
        images=images,
        authenticate=providers.Factory(bearer_token_caller, tokens),
        upload_links=upload_links,
        limiter=rate_limiter,
        health_check=providers.Factory(functools.partial, check_stores, repository, blobs),
        max_upload_bytes=config.max_upload_bytes,
        max_direct_upload_bytes=config.max_direct_upload_bytes,
        client_timeout=config.client_timeout_seconds,
        reads_on_event_loop=reads_on_event_loop,
    )


def build_container(settings: Settings) -> Container:
    container = Container()
    container.config.from_dict(
        {
            "backend": settings.backend,
            "data_dir": str(settings.data_dir),
            "max_upload_bytes": settings.max_upload_bytes,
            "token_secret": settings.token_secret,
            "url_ttl_seconds": settings.url_ttl_seconds,
            "table": settings.table,
            "bucket": settings.bucket,
            "aws_endpoint_url": settings.aws_endpoint_url,
            "aws_region": settings.aws_region,
            "queue_url": settings.queue_url,
            "max_direct_upload_bytes": settings.max_direct_upload_bytes,
            "max_image_pixels": settings.max_image_pixels,
            "thumbnail_side": settings.thumbnail_side,
            "thumbnail_attempts": settings.thumbnail_attempts,
            "rate_limit_per_second": settings.rate_limit_per_second,
            "rate_limit_burst": settings.rate_limit_burst,
            "client_timeout_seconds": settings.client_timeout_seconds,
        }
    )
    return container
