"""The one place where adapters are chosen and wired to the use cases."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from pathlib import Path

from dependency_injector import containers, providers

from adapters.filesystem import FilesystemBlobStore
from adapters.memory import MemoryBlobStore, MemoryImageRepository
from adapters.pillow import PillowInspector
from adapters.secret_file import load_or_create_secret
from adapters.sqlite import SqliteImageRepository
from adapters.system import SystemClock, UlidGenerator
from entrypoints.auth import TokenAuthority
from entrypoints.settings import Settings
from imagecore.cursor import CursorCodec
from imagecore.service import ImageService

SQLITE_FILE = "imagecore.sqlite3"
BLOB_DIR = "blobs"


def server_secret(data_dir: str, configured: str | None) -> bytes:
    return configured.encode() if configured else load_or_create_secret(Path(data_dir))


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

    repository = providers.Selector(
        config.backend,
        memory=providers.Singleton(MemoryImageRepository),
        filesystem=providers.Singleton(
            SqliteImageRepository,
            path=providers.Callable(lambda root: Path(root) / SQLITE_FILE, config.data_dir),
        ),
    )
    blobs = providers.Selector(
        config.backend,
        memory=providers.Singleton(MemoryBlobStore),
        filesystem=providers.Singleton(
            FilesystemBlobStore,
            root=providers.Callable(lambda root: Path(root) / BLOB_DIR, config.data_dir),
        ),
    )
    cursors = providers.Singleton(
        CursorCodec, secret=providers.Callable(derived_key, secret, "cursor"), clock=clock
    )
    tokens = providers.Singleton(TokenAuthority, secret=secret)
    images = providers.Singleton(
        ImageService,
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


def build_container(settings: Settings) -> Container:
    container = Container()
    container.config.from_dict(
        {
            "backend": settings.backend,
            "data_dir": str(settings.data_dir),
            "max_upload_bytes": settings.max_upload_bytes,
            "token_secret": settings.token_secret,
            "url_ttl_seconds": settings.url_ttl_seconds,
        }
    )
    return container
