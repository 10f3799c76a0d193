"""The commands that run the server and act on its data: serve, token and reconcile."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import attrs
import click

from adapters.errors import MissingResource, UnusableDataDir
from adapters.private_paths import private_directory
from entrypoints.container import Container, build_container
from entrypoints.http.auth import DEFAULT_TOKEN_TTL
from entrypoints.logs import LOG_CONFIG, configure_logging
from entrypoints.settings import BACKENDS, Settings, SettingsError
from imagecore.errors import InsufficientStorage, InvalidInput
from imagecore.lifecycle import ORPHAN_GRACE

READ_BUFFER_BYTES = 1024 * 1024
"""The server's read buffer per connection, the most it grows to (a connection starts with a
few KiB): request heads beyond it, or with over 100 fields, get the server's own 431. It is
also the largest piece of a body the app is handed at once, and every piece crosses from
granian's thread to the event loop: at granian's default of 408 KiB a 50 MiB upload ran at
0.36-0.40x of a disk copy with fsync, at 1 MiB 0.53-0.54x, at 2 MiB no faster (interleaved
rounds, docs/benchmarks.md); a buffer of 32 KiB made it take 1,700 hops and run at 110 MiB/s.
A client that sends a head of nearly this size and then stalls holds it until the header read
timeout. The app's own limit on headers is ``http.middleware.MAX_HEADER_BYTES``."""

_DATA_DIR_HELP = "Where blobs, SQLite and the token secret live [env IMAGECORE_DATA_DIR]"


def _settings(**overrides: object) -> Settings:
    try:
        settings = Settings.from_env(None, **overrides)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None
    # Absolute, so the server's worker and later commands agree whatever their directory.
    return attrs.evolve(settings, data_dir=settings.data_dir.resolve())


def _full(data_dir: Path) -> str:
    return f"cannot use the data dir {data_dir}: its disk is full"


@contextlib.contextmanager
def _data_dir_errors(data_dir: Path) -> Iterator[None]:
    """What can be wrong with the data dir, told with its name instead of a traceback."""
    try:
        yield
    except UnusableDataDir as exc:
        raise click.ClickException(str(exc)) from None
    except InsufficientStorage:
        raise click.ClickException(_full(data_dir)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot use the data dir {data_dir}: {exc}") from None


def refuse_a_port_in_use(host: str, port: int) -> None:
    """Stop, naming the address, if something already listens on ``host``:``port``.

    granian binds with SO_REUSEPORT, so a second server on a port in use would start without an
    error and take half the connections: clients would reach either server at random. This
    probe binds without SO_REUSEPORT, which the kernel refuses while any socket listens there.
    It sets SO_REUSEADDR, so that a restart is not refused for the last run's connections still
    in TIME_WAIT. The probe is closed before granian binds, so a server started in that very
    instant could still share the port: the check is for the usual mistake, a second server
    started while the first runs. Port 0 (any free port) cannot be in use."""
    if port == 0:
        return
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise click.ClickException(f"cannot serve on {host}:{port}: {exc.strerror}") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise click.ClickException(
                    f"cannot serve on {host}:{port}: something already listens there (another "
                    "imagecore serve?). Stop it, or choose another --port"
                ) from None
            raise click.ClickException(f"cannot serve on {host}:{port}: {exc.strerror}") from None


def _container(settings: Settings) -> Container:
    container = build_container(settings)
    with _data_dir_errors(settings.data_dir):
        try:
            # Opening the stores now makes a bad data dir fail here, with its name, not on a
            # request.
            container.images()
            container.tokens()
        # The token secret's SSM parameter, read here too: missing, unreadable or too short.
        except (MissingResource, SettingsError) as exc:
            raise click.ClickException(str(exc)) from None
    return container


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help=_DATA_DIR_HELP)
@click.option(
    "--backend", type=click.Choice(BACKENDS), help="Where images are kept [env IMAGECORE_BACKEND]"
)
@click.option(
    "--max-upload-bytes", type=click.IntRange(min=1), help="[env IMAGECORE_MAX_UPLOAD_BYTES]"
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Worker processes; default one per core (one on the memory backend) "
    "[env IMAGECORE_WORKERS]",
)
@click.option(
    "--job-workers",
    type=click.IntRange(min=1),
    help="Thumbnails made at once on the whole server, whatever the worker processes; each may "
    "take a few hundred MiB  [default: 2; env IMAGECORE_JOB_WORKERS]",
)
def serve(
    host: str,
    port: int,
    data_dir: Path | None,
    backend: str | None,
    max_upload_bytes: int | None,
    workers: int | None,
    job_workers: int | None,
) -> None:
    """Run the HTTP API."""
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings

    settings = _settings(
        data_dir=data_dir,
        backend=backend,
        max_upload_bytes=max_upload_bytes,
        workers=workers,
        job_workers=job_workers,
    )
    refuse_a_port_in_use(host, port)
    # Made here, once, before the workers start: the secret every worker signs and verifies
    # tokens, cursors and upload links with, and the files where they share their limits.
    container = _container(settings)
    os.environ.update(settings.to_environ())  # the server's workers build their app from these
    with _data_dir_errors(settings.data_dir):
        if settings.backend != "memory":  # whose one worker keeps its limits in its memory
            container.prepare_shared_limits()
        # Uploads are spooled while the form is parsed; keep even those files in the data dir.
        scratch = private_directory(container.data_dir() / "tmp", "scratch dir")
    os.environ["TMPDIR"] = str(scratch)
    where = (
        f"table {settings.table}, bucket {settings.bucket}"
        if settings.backend == "aws"
        else f"data dir {settings.data_dir}"
    )
    configure_logging()
    logging.getLogger("imagecore.serve").info(
        "imagecore serving http://%s:%d (backend %s, %s, %d workers)",
        host,
        port,
        settings.backend,
        where,
        settings.worker_count,
    )
    Granian(
        "entrypoints.http.asgi:app_from_environment",
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        factory=True,
        workers=settings.worker_count,
        http=HTTPModes.http1,
        http1_settings=HTTP1Settings(
            header_read_timeout=settings.client_timeout_seconds * 1000,
            max_buffer_size=READ_BUFFER_BYTES,
        ),
        log_dictconfig=LOG_CONFIG,
        log_access=False,  # the app logs each request, with its id
    ).serve()


@click.command()
@click.argument("user")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help=_DATA_DIR_HELP)
@click.option(
    "--ttl",
    type=click.IntRange(min=1),
    default=int(DEFAULT_TOKEN_TTL.total_seconds()),
    show_default=True,
    help="Seconds the token stays valid",
)
def token(user: str, data_dir: Path | None, ttl: int) -> None:
    """Print a bearer token for USER, valid on the server that uses the same data dir (which
    that server made when it first started)."""
    settings = _settings(data_dir=data_dir)
    with _data_dir_errors(settings.data_dir):
        try:
            tokens = build_container(settings).issued_tokens()
        except (MissingResource, SettingsError) as exc:  # the secret's SSM parameter
            raise click.ClickException(str(exc)) from None
    try:
        click.echo(tokens.issue(user, timedelta(seconds=ttl)))
    except InvalidInput as exc:
        raise click.BadParameter(exc.message, param_hint="USER") from None


@click.command()
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help=_DATA_DIR_HELP)
@click.option(
    "--backend", type=click.Choice(BACKENDS), help="Where images are kept [env IMAGECORE_BACKEND]"
)
@click.option(
    "--grace-seconds",
    type=click.IntRange(min=0),
    default=int(ORPHAN_GRACE.total_seconds()),
    show_default=True,
    help="Bytes no image holds are removed once they are this old (younger may be an upload)",
)
def reconcile(data_dir: Path | None, backend: str | None, grace_seconds: int) -> None:
    """Finish interrupted deletes and remove orphaned bytes; print what was done as JSON."""
    settings = _settings(data_dir=data_dir, backend=backend)
    images = _container(settings).images()
    try:
        report = images.reconcile(timedelta(seconds=grace_seconds))
    except InsufficientStorage:
        raise click.ClickException(_full(settings.data_dir)) from None
    click.echo(json.dumps(attrs.asdict(report)))
