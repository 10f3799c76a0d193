"""The one place where adapters are chosen and wired to the use cases.

Every provider is declared with the port it provides, so mypy checks each adapter against its
port where it is wired: an adapter that no longer fits (a method renamed, a signature changed)
fails `mypy --strict` here (tests/test_wiring_is_typed.py proves it). Providers of the adapters
a backend chooses between are declared one by one for that reason: a Selector's branches are
not checked."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextvars import ContextVar
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dependency_injector import containers, providers

from adapters.disk_reserve import RESERVE_FILE, DiskReserve
from adapters.expiring_records import InProcessRecords, SharedRecords, prepare_shared_records
from adapters.filesystem import FilesystemBlobStore
from adapters.local_jobs import LocalJobQueue, ProcessLeases, ResumableJobQueue
from adapters.memory import MemoryBlobStore, MemoryImageRepository, MemoryPartialBlobs
from adapters.partial_files import PartialFiles
from adapters.pillow import PillowInspector
from adapters.private_paths import private_directory
from adapters.secret_file import load_or_create_secret, load_secret
from adapters.shared_file import Leases, remove_dead_leases
from adapters.sqlite import SqliteImageRepository
from adapters.sqlite_jobs import SqliteJobQueue, lease_for
from adapters.system import SystemClock, UlidGenerator
from adapters.thread_jobs import ThreadPoolJobQueue
from adapters.upload_links import SignedUploadLinks
from adapters.upload_places import InProcessPlaces, SharedPlaces, prepare_shared_places
from entrypoints.http.auth import Authenticate, TokenAuthority, bearer_token_caller
from entrypoints.http.capacity import UploadCapacity, UploadPlaces
from entrypoints.http.rate_limit import MAX_TRACKED_CALLERS, BucketStore, TokenBucketLimiter
from entrypoints.logs import request_id
from entrypoints.settings import Settings, SettingsError
from imagecore.cursor import CursorCodec
from imagecore.model import Rendered, RenditionSize
from imagecore.ports import (
    BlobCopier,
    BlobStore,
    Clock,
    IdGenerator,
    ImageInspector,
    ImageRepository,
    JobQueue,
    MultipartUploads,
    PartialBlobs,
    Renderer,
    StorageSpace,
    UploadLinkVerifier,
    UploadTargets,
)
from imagecore.service import ImageService

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from starlette.applications import Starlette

    from adapters.aws import AwsClients
    from adapters.s3 import ObjectLinks, S3BlobStore
    from adapters.thumbnails import VipsRenderer

SQLITE_FILE = "imagecore.sqlite3"
BLOB_DIR = "blobs"
PARTIAL_DIR = "partial"
WORKERS_DIR = "workers"
"""What the server's worker processes share: the rate limit's buckets, the upload places and
each worker's lease (see adapters.shared_file)."""
BUCKETS_FILE = "rate-limit"
PLACES_FILE = "uploads"
LEASES_DIR = "leases"


def read_configured_secret(
    token_secret: str | None,
    parameter: str | None,
    endpoint_url: str | None,
    region: str | None,
) -> str | None:
    """The secret the settings give: IMAGECORE_TOKEN_SECRET, or the value of the SSM parameter
    IMAGECORE_TOKEN_SECRET_PARAMETER names (read here, once per container); None if neither."""
    if parameter is None:
        return token_secret
    from adapters.ssm_secret import make_ssm_client, read_secret_parameter  # needs boto3

    secret = read_secret_parameter(make_ssm_client(endpoint_url, region), parameter)
    if len(secret) < 32:
        raise SettingsError(
            f"the SSM parameter {parameter!r} (IMAGECORE_TOKEN_SECRET_PARAMETER) must hold a "
            "secret of at least 32 characters"
        )
    return secret


def server_secret(data_dir: Path, configured: str | None) -> bytes:
    return configured.encode() if configured else load_or_create_secret(Path(data_dir))


def existing_server_secret(data_dir: Path, configured: str | None) -> bytes:
    return configured.encode() if configured else load_secret(Path(data_dir))


def _prepare_shared_limits(workers_dir: Path, max_uploads: int) -> None:
    """Make the files the workers share afresh, before any worker starts: a server starts with
    every budget full and no upload under way."""
    prepare_shared_records(workers_dir / BUCKETS_FILE, MAX_TRACKED_CALLERS)
    prepare_shared_places(workers_dir / PLACES_FILE, max_uploads)
    remove_dead_leases(workers_dir / LEASES_DIR)


def _private_data_dir(data_dir: Path) -> Path:
    return private_directory(Path(data_dir))


def _aws_clients(endpoint_url: str | None, region: str | None) -> AwsClients:
    from adapters.aws import make_clients  # boto3 is only needed, and installed, for this backend

    return make_clients(endpoint_url=endpoint_url, region=region)


def _dynamodb_repository(clients: AwsClients, table: str, public_shards: int) -> ImageRepository:
    from adapters.dynamodb import DynamoDbImageRepository

    return DynamoDbImageRepository(clients.dynamodb, table, public_shards)


CDN_KEY_REMEDY = (
    "make it with `imagecore cdn-key --parameter NAME` and give Terraform the public key it "
    "prints (cdn_public_key)"
)


def _cdn_links(
    domain: str | None,
    key_id: str | None,
    parameter: str | None,
    endpoint_url: str | None,
    region: str | None,
    clock: Clock,
) -> ObjectLinks | None:
    """CloudFront signed links when the CDN settings are given (Settings checks they come
    together), with the private key read from its SSM parameter here, once per process; None
    leaves downloads to S3's presigned URLs."""
    if domain is None or key_id is None or parameter is None:
        return None
    from adapters.cloudfront import CloudFrontKeyError, CloudFrontLinks  # needs cryptography
    from adapters.ssm_secret import make_ssm_client, read_secret_parameter  # needs boto3

    setting = "IMAGECORE_CDN_PRIVATE_KEY_PARAMETER"
    pem = read_secret_parameter(
        make_ssm_client(endpoint_url, region), parameter, setting=setting, remedy=CDN_KEY_REMEDY
    )
    try:
        return CloudFrontLinks(domain, key_id, pem, clock=clock.now)
    except CloudFrontKeyError as exc:
        raise SettingsError(f"the SSM parameter {parameter!r} ({setting}): {exc}") from None


def _s3_store(clients: AwsClients, bucket: str, links: ObjectLinks | None) -> S3BlobStore:
    from adapters.s3 import S3BlobStore

    return S3BlobStore(clients.s3, bucket, links=links)


# One S3 store, two ports: each function is where mypy checks that it fits one of them.
def _as_blob_store(store: S3BlobStore) -> BlobStore:
    return store


def _as_copier(store: S3BlobStore) -> BlobCopier:
    return store


def _sqs_job_queue(endpoint_url: str | None, region: str | None, queue_url: str) -> JobQueue:
    from adapters.aws import make_sqs_client
    from adapters.sqs import SqsJobQueue

    return SqsJobQueue(make_sqs_client(endpoint_url, region), queue_url)


def _presigned_posts(
    clients: AwsClients, bucket: str, clock: Callable[[], datetime]
) -> UploadTargets:
    from adapters.s3 import S3PresignedPosts

    return S3PresignedPosts(clients.s3, bucket, clock)


def _s3_multipart_uploads(
    clients: AwsClients, bucket: str, clock: Callable[[], datetime]
) -> MultipartUploads:
    from adapters.s3_multipart import S3MultipartUploads

    return S3MultipartUploads(clients.s3, bucket, clock)


class RendererOnFirstUse:
    """The libvips renderer, loaded when the first renditions are made rather than at start:
    a process that only queues jobs (the API Lambda, whose cold start it would slow by a
    third) never loads libvips."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._made: VipsRenderer | None = None
        self._lock = threading.Lock()

    def render(self, chunks: Iterable[bytes], sizes: Sequence[RenditionSize]) -> Rendered:
        with self._lock:
            if self._made is None:
                from adapters.thumbnails import VipsRenderer

                self._made = VipsRenderer(**self._options)
        return self._made.render(chunks, sizes)


def _image_service(jobs: JobQueue, **parts: Any) -> ImageService:
    """The use cases; a job queue of this process's own is served by them."""
    service = ImageService(jobs=jobs, **parts)
    if isinstance(jobs, LocalJobQueue):
        jobs.serve(service.run_job)
    return service


def _http_app(jobs: JobQueue, processes: Callable[[], ProcessLeases], **parts: Any) -> Starlette:
    # Imported when the app is made: the worker Lambdas never load Starlette.
    from entrypoints.http.app import create_app

    return create_app(lifespan=_taking_jobs(jobs, processes), **parts)


def _taking_jobs(
    jobs: JobQueue, processes: Callable[[], ProcessLeases]
) -> Callable[[Starlette], AbstractAsyncContextManager[None]] | None:
    """The lifespan of a server process that takes the jobs of a queue kept across restarts:
    it starts them once it serves (only the server's workers, never a command that merely
    queues jobs), with the workers' leases that tell a dead worker's jobs, and lets the running
    ones finish when it stops."""
    if not isinstance(jobs, ResumableJobQueue):
        return None
    from starlette.concurrency import run_in_threadpool

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        jobs.start(processes())
        try:
            yield
        finally:
            await run_in_threadpool(jobs.close)

    return lifespan


def _as_storage_space(reserve: DiskReserve) -> StorageSpace:
    return reserve


# One adapter, two ports: each function is where mypy checks that it fits one of them.
def _as_link_verifier(links: SignedUploadLinks) -> UploadLinkVerifier:
    return links


def _as_upload_targets(links: SignedUploadLinks) -> UploadTargets:
    return links


def derived_key(secret: bytes, purpose: str) -> bytes:
    """A key of its own for each use of the secret, so no signature is valid for two purposes."""
    return hmac.new(secret, purpose.encode(), hashlib.sha256).digest()


class Container(containers.DeclarativeContainer):
    config = providers.Configuration(strict=True)

    configured_secret: providers.Provider[str | None] = providers.Singleton(
        read_configured_secret,
        token_secret=config.token_secret,
        parameter=config.token_secret_parameter,
        endpoint_url=config.aws_endpoint_url,
        region=config.aws_region,
    )
    secret: providers.Provider[bytes] = providers.Singleton(
        server_secret, data_dir=config.data_dir, configured=configured_secret
    )
    clock: providers.Provider[Clock] = providers.Singleton(SystemClock)
    ids: providers.Provider[IdGenerator] = providers.Singleton(UlidGenerator)
    inspector: providers.Provider[ImageInspector] = providers.Singleton(PillowInspector)
    renderer: providers.Provider[Renderer] = providers.Singleton(
        RendererOnFirstUse,
        max_pixels=config.max_image_pixels,
        time_limit=config.thumbnail_timeout_seconds,
    )
    # One set of clients per process, made only when the aws backend is chosen.
    aws: providers.Provider[AwsClients] = providers.Singleton(
        _aws_clients, endpoint_url=config.aws_endpoint_url, region=config.aws_region
    )

    # The stores of each backend (settings.BACKENDS), chosen by IMAGECORE_BACKEND.
    memory_repository: providers.Provider[ImageRepository] = providers.Singleton(
        MemoryImageRepository
    )
    memory_blobs: providers.Provider[BlobStore] = providers.Singleton(MemoryBlobStore)
    # The filesystem backend's stores share the data dir, private to the server's user, and
    # the room set aside on its disk for deletes.
    data_dir: providers.Provider[Path] = providers.Singleton(_private_data_dir, config.data_dir)
    disk_reserve: providers.Provider[DiskReserve] = providers.Singleton(
        DiskReserve, path=providers.Callable(lambda root: root / RESERVE_FILE, data_dir)
    )
    # The request id the server's log lines carry: kept with each job, set again while it runs.
    request_ids: providers.Provider[ContextVar[str | None]] = providers.Callable(lambda: request_id)
    sqlite_path: providers.Provider[Path] = providers.Callable(
        lambda root: root / SQLITE_FILE, data_dir
    )
    sqlite_repository: providers.Provider[ImageRepository] = providers.Singleton(
        SqliteImageRepository, path=sqlite_path, reserve=disk_reserve, request_id=request_ids
    )
    filesystem_blobs: providers.Provider[BlobStore] = providers.Singleton(
        FilesystemBlobStore,
        root=providers.Callable(lambda root: root / BLOB_DIR, data_dir),
        reserve=disk_reserve,
    )
    filesystem_partials: providers.Provider[PartialBlobs] = providers.Singleton(
        PartialFiles,
        root=providers.Callable(lambda root: root / PARTIAL_DIR, data_dir),
        reserve=disk_reserve,
        blobs_root=providers.Callable(lambda root: root / BLOB_DIR, data_dir),
    )
    disk_space: providers.Provider[StorageSpace] = providers.Callable(
        _as_storage_space, disk_reserve
    )
    dynamodb_repository: providers.Provider[ImageRepository] = providers.Singleton(
        _dynamodb_repository,
        clients=aws,
        table=config.table,
        public_shards=config.public_timeline_shards,
    )
    # Downloads and renditions through CloudFront when IMAGECORE_CDN_DOMAIN and its key are set.
    cdn_links: providers.Provider[ObjectLinks | None] = providers.Singleton(
        _cdn_links,
        domain=config.cdn_domain,
        key_id=config.cdn_key_id,
        parameter=config.cdn_private_key_parameter,
        endpoint_url=config.aws_endpoint_url,
        region=config.aws_region,
        clock=clock,
    )
    s3_store: providers.Provider[S3BlobStore] = providers.Singleton(
        _s3_store, clients=aws, bucket=config.bucket, links=cdn_links
    )
    s3_blobs: providers.Provider[BlobStore] = providers.Callable(_as_blob_store, s3_store)
    # The embedded server is its own upload target; on AWS, S3 is.
    upload_links: providers.Provider[SignedUploadLinks] = providers.Singleton(
        SignedUploadLinks,
        key=providers.Callable(derived_key, secret, "upload-link"),
        clock=clock.provided.now,
    )
    link_verifier: providers.Provider[UploadLinkVerifier] = providers.Callable(
        _as_link_verifier, upload_links
    )
    own_upload_targets: providers.Provider[UploadTargets] = providers.Callable(
        _as_upload_targets, upload_links
    )
    presigned_posts: providers.Provider[UploadTargets] = providers.Singleton(
        _presigned_posts, clients=aws, bucket=config.bucket, clock=clock.provided.now
    )

    repository: providers.Provider[ImageRepository] = providers.Selector(
        config.backend,
        memory=memory_repository,
        filesystem=sqlite_repository,
        aws=dynamodb_repository,
    )
    blobs: providers.Provider[BlobStore] = providers.Selector(
        config.backend, memory=memory_blobs, filesystem=filesystem_blobs, aws=s3_blobs
    )
    # The partial bytes of resumable uploads: kept by the server on one machine; on AWS the
    # bytes go to S3 by multipart upload, never through the API.
    partials: providers.Provider[PartialBlobs | None] = providers.Selector(
        config.backend,
        memory=providers.Singleton(MemoryPartialBlobs),
        filesystem=filesystem_partials,
        aws=providers.Object(None),
    )
    # On AWS the bytes of a resumable upload go to S3 by multipart upload, straight from the
    # client; the embedded server takes them by tus, through itself.
    multipart: providers.Provider[MultipartUploads | None] = providers.Selector(
        config.backend,
        memory=providers.Object(None),
        filesystem=providers.Object(None),
        aws=providers.Singleton(
            _s3_multipart_uploads, clients=aws, bucket=config.bucket, clock=clock.provided.now
        ),
    )
    # S3 copies a file sent in parts to the image's key itself, once the worker has checked it.
    copier: providers.Provider[BlobCopier | None] = providers.Selector(
        config.backend,
        memory=providers.Object(None),
        filesystem=providers.Object(None),
        aws=providers.Callable(_as_copier, s3_store),
    )
    # Memory, S3 and DynamoDB are taken never to fill; a local disk does.
    space: providers.Provider[StorageSpace | None] = providers.Selector(
        config.backend,
        memory=providers.Object(None),
        filesystem=disk_space,
        aws=providers.Object(None),
    )
    upload_targets: providers.Provider[UploadTargets] = providers.Selector(
        config.backend,
        memory=own_upload_targets,
        filesystem=own_upload_targets,
        aws=presigned_posts,
    )
    # Where the HTTP API runs a use case that only reads. The local stores answer from memory
    # or the page cache in microseconds, less than a hop to a worker thread and back costs
    # (measured: ~20 us for a SQLite get, ~115 us for the hop), so those run on the event loop;
    # network stores would stall every other request there, so theirs run in worker threads.
    reads_on_event_loop: providers.Provider[bool] = providers.Selector(
        config.backend,
        memory=providers.Object(True),
        filesystem=providers.Object(True),
        aws=providers.Object(False),
    )

    # Jobs go to SQS where a queue is configured (on AWS, for the worker Lambda), else they
    # run in the server: kept in its database on the filesystem backend, where every worker
    # process takes them, else in this process's memory.
    thread_jobs: providers.Provider[LocalJobQueue] = providers.Singleton(
        ThreadPoolJobQueue, workers=config.job_workers, attempts=config.thumbnail_attempts
    )
    sqlite_jobs: providers.Provider[LocalJobQueue] = providers.Singleton(
        SqliteJobQueue,
        path=sqlite_path,
        reserve=disk_reserve,
        workers=config.job_workers,
        attempts=config.thumbnail_attempts,
        lease=providers.Callable(lease_for, config.thumbnail_timeout_seconds),
        request_id=request_ids,
    )
    local_jobs: providers.Provider[LocalJobQueue] = providers.Selector(
        config.backend, memory=thread_jobs, filesystem=sqlite_jobs, aws=thread_jobs
    )
    sqs_jobs: providers.Provider[JobQueue] = providers.Singleton(
        _sqs_job_queue,
        endpoint_url=config.aws_endpoint_url,
        region=config.aws_region,
        queue_url=config.queue_url,
    )
    jobs: providers.Provider[JobQueue] = providers.Selector(
        providers.Callable(lambda url: "sqs" if url else "local", config.queue_url),
        sqs=sqs_jobs,
        local=local_jobs,
    )

    cursors: providers.Provider[CursorCodec] = providers.Singleton(
        CursorCodec, secret=providers.Callable(derived_key, secret, "cursor"), clock=clock
    )
    images: providers.Provider[ImageService] = providers.Singleton(
        _image_service,
        jobs=jobs,
        renderer=renderer,
        upload_targets=upload_targets,
        max_direct_upload_bytes=config.max_direct_upload_bytes,
        max_pixels=config.max_image_pixels,
        thumbnail_side=config.thumbnail_side,
        preview_side=config.preview_side,
        repository=repository,
        blobs=blobs,
        space=space,
        partials=partials,
        multipart=multipart,
        copier=copier,
        max_resumable_upload_bytes=config.max_resumable_upload_bytes,
        session_ttl=providers.Callable(
            lambda seconds: timedelta(seconds=seconds), config.upload_session_ttl_seconds
        ),
        inspector=inspector,
        clock=clock,
        ids=ids,
        cursors=cursors,
        max_upload_bytes=config.max_upload_bytes,
        url_ttl=providers.Callable(
            lambda seconds: timedelta(seconds=seconds), config.url_ttl_seconds
        ),
    )

    tokens: providers.Provider[TokenAuthority] = providers.Singleton(TokenAuthority, secret=secret)
    # `imagecore token` signs for a server that has started, with its secret: it never makes one.
    issued_tokens: providers.Provider[TokenAuthority] = providers.Singleton(
        TokenAuthority,
        secret=providers.Callable(
            existing_server_secret, data_dir=config.data_dir, configured=configured_secret
        ),
    )
    bearer_tokens: providers.Provider[Authenticate] = providers.Factory(bearer_token_caller, tokens)

    # The request rate and the uploads under way, counted in this process (the API Lambda, the
    # memory backend's one worker), or in files all the workers of `imagecore serve` share.
    in_process_buckets: providers.Provider[BucketStore] = providers.Singleton(
        InProcessRecords, capacity=MAX_TRACKED_CALLERS
    )
    in_process_places: providers.Provider[UploadPlaces] = providers.Singleton(InProcessPlaces)
    workers_dir: providers.Provider[Path] = providers.Callable(
        lambda root: root / WORKERS_DIR, data_dir
    )
    prepare_shared_limits: providers.Provider[None] = providers.Callable(
        _prepare_shared_limits, workers_dir=workers_dir, max_uploads=config.max_uploads
    )
    worker_lease: providers.Provider[Leases] = providers.Singleton(
        Leases, providers.Callable(lambda root: root / LEASES_DIR, workers_dir)
    )
    shared_buckets: providers.Provider[BucketStore] = providers.Singleton(
        SharedRecords,
        path=providers.Callable(lambda root: root / BUCKETS_FILE, workers_dir),
        capacity=MAX_TRACKED_CALLERS,
    )
    shared_places: providers.Provider[UploadPlaces] = providers.Singleton(
        SharedPlaces,
        path=providers.Callable(lambda root: root / PLACES_FILE, workers_dir),
        places=config.max_uploads,
        leases=worker_lease,
    )
    rate_limiter: providers.Provider[TokenBucketLimiter] = providers.Singleton(
        TokenBucketLimiter,
        rate=config.rate_limit_per_second,
        burst=config.rate_limit_burst,
        buckets=in_process_buckets,
    )
    upload_capacity: providers.Provider[UploadCapacity] = providers.Singleton(
        UploadCapacity,
        total=config.max_uploads,
        per_caller=config.max_uploads_per_user,
        places=in_process_places,
    )
    shared_rate_limiter: providers.Provider[TokenBucketLimiter] = providers.Singleton(
        TokenBucketLimiter,
        rate=config.rate_limit_per_second,
        burst=config.rate_limit_burst,
        buckets=shared_buckets,
    )
    shared_upload_capacity: providers.Provider[UploadCapacity] = providers.Singleton(
        UploadCapacity,
        total=config.max_uploads,
        per_caller=config.max_uploads_per_user,
        places=shared_places,
    )
    # What a worker of `imagecore serve` limits with: a server of one worker (the memory
    # backend's always) keeps its counts in its memory, where a request's take costs a fifth.
    server_rate_limiter: providers.Provider[TokenBucketLimiter] = providers.Selector(
        config.limits_kept, in_process=rate_limiter, shared=shared_rate_limiter
    )
    server_upload_capacity: providers.Provider[UploadCapacity] = providers.Selector(
        config.limits_kept, in_process=upload_capacity, shared=shared_upload_capacity
    )
    # The HTTP API; the API Lambda calls it with authenticate= and limiter= of its own, and
    # `imagecore serve`'s workers with the server's limiter= and uploads=.
    http_app: providers.Provider[Starlette] = providers.Factory(
        _http_app,
        jobs=jobs,
        processes=worker_lease.provider,
        images=images,
        authenticate=bearer_tokens,
        upload_links=link_verifier,
        limiter=rate_limiter,
        max_upload_bytes=config.max_upload_bytes,
        max_direct_upload_bytes=config.max_direct_upload_bytes,
        max_resumable_upload_bytes=config.max_resumable_upload_bytes,
        client_timeout=config.client_timeout_seconds,
        client_min_rate=config.client_min_bytes_per_second,
        uploads=upload_capacity,
        reads_on_event_loop=reads_on_event_loop,
    )


def build_container(settings: Settings) -> Container:
    container = Container()
    container.config.from_dict(settings.as_config())
    return container
