"""The storage backends the test suites run against: the one place that lists them.

Each entry of BACKENDS is one value of ``IMAGECORE_BACKEND`` and says, for every suite that runs
per backend, how to make that backend's stores there:

- ``places``: where its stores run (in the test process for memory and filesystem; on moto
  in-process and on a moto server for aws). The contract suite (tests/contract) proves the
  repository and the blob store of each place, under the place's ids; the stateful machine of
  tests/domain/test_stateful.py plays on the places that name a ``stateful`` run;
- ``server_environment``: what ``imagecore serve`` needs besides ``IMAGECORE_BACKEND`` to run on
  it (tests/http, through tests/support/backend_server.py);
- ``fault_injection``: how tests/reliability/test_fault_injection.py makes fresh stores of it,
  over and over, and the knobs of its runs there.

The suites take their parameters, and their test ids, from here: adding a backend to the tests
is adding one entry to BACKENDS.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import Protocol

import attrs

from adapters.aws import AwsClients
from adapters.dynamodb import DynamoDbImageRepository
from adapters.filesystem import FilesystemBlobStore
from adapters.memory import MemoryBlobStore, MemoryImageRepository
from adapters.s3 import S3BlobStore
from adapters.sqlite import SqliteImageRepository
from imagecore.ports import BlobStore, ImageRepository
from tests.support.fake_aws import aws_clients, aws_stores, fresh_resources, moto_server


class ListedBlobStore(BlobStore, Protocol):
    def keys(self) -> list[str]:
        """Every key stored, sorted: how the checks find orphaned bytes."""


@attrs.frozen
class Stores:
    repository: ImageRepository
    blobs: ListedBlobStore


StoreFactory = Callable[[], Stores]
"""Fresh, empty stores of one kind; the ones it made before may be discarded."""

RepositoryFactory = Callable[[Path], AbstractContextManager[ImageRepository]]
BlobStoreFactory = Callable[[Path], AbstractContextManager[BlobStore]]
"""Given the test's tmp_path: a context manager that yields a fresh, empty adapter and tears it
down afterwards."""

StorePair = Callable[[], AbstractContextManager[tuple[ImageRepository, ListedBlobStore]]]
"""A fresh, empty repository and blob store, torn down afterwards."""


@attrs.frozen
class StatefulRun:
    """The stateful machine of tests/domain/test_stateful.py, played on one place's stores."""

    test_name: str
    """The name of its TestCase in that module, and so its test id."""
    stores: StorePair
    """A fresh repository and blob store per example."""
    max_examples: int | None
    """Examples per run, with the module's settings; None: the settings Hypothesis gives a state
    machine's TestCase by default (100 examples, no health check)."""


@attrs.frozen
class Place:
    """One place a backend's stores run, with the ids of the contract tests on them."""

    repository_id: str
    repository: RepositoryFactory
    blob_store_id: str
    blob_store: BlobStoreFactory
    stateful: StatefulRun | None = None


@attrs.frozen
class FaultInjection:
    """How the fault-injection suite runs on a backend."""

    test_id: str
    stores: Callable[[], AbstractContextManager[StoreFactory]]
    """Yields a factory of fresh, empty stores, called once per fault injected."""
    every_variant_at_each_position: bool
    """Whether each call position gets every kind of fault, or one kind, the kinds taking turns."""
    min_positions: int
    """A little under the fault positions the enumeration finds today, so that a wrapper that
    stops counting calls (and so stops injecting faults into them) fails the test instead of
    passing it emptier."""
    scenario_examples: int
    """Hypothesis examples of the random scenarios."""


@attrs.frozen
class Backend:
    name: str
    """Its ``IMAGECORE_BACKEND``, and the id of the HTTP tests on it."""
    places: tuple[Place, ...]
    server_environment: Callable[[], AbstractContextManager[dict[str, str]]]
    """Yields what a server on it needs in its environment besides ``IMAGECORE_BACKEND``, and
    removes whatever it made for that server afterwards."""
    fault_injection: FaultInjection


# --- memory -----------------------------------------------------------------------------------


@contextmanager
def memory_repository(tmp_path: Path) -> Iterator[ImageRepository]:
    yield MemoryImageRepository()


@contextmanager
def memory_blob_store(tmp_path: Path) -> Iterator[BlobStore]:
    yield MemoryBlobStore()


@contextmanager
def memory_pair() -> Iterator[tuple[ImageRepository, ListedBlobStore]]:
    yield MemoryImageRepository(), MemoryBlobStore()


@contextmanager
def memory_stores() -> Iterator[StoreFactory]:
    yield lambda: Stores(MemoryImageRepository(), MemoryBlobStore())


# --- filesystem: SQLite and files ---------------------------------------------------------------


@contextmanager
def sqlite_repository(tmp_path: Path) -> Iterator[ImageRepository]:
    repository = SqliteImageRepository(tmp_path / "data" / "imagecore.sqlite3")
    try:
        yield repository
    finally:
        repository.close()


@contextmanager
def filesystem_blob_store(tmp_path: Path) -> Iterator[BlobStore]:
    yield FilesystemBlobStore(tmp_path / "data" / "blobs")


# Hundreds of fresh stores, each fsyncing every write: on tmpfs, where fsync costs nothing, the
# run takes seconds instead of a minute. Durability is not what these tests are about.
FAST_TEMPORARY_ROOT = Path("/dev/shm") if Path("/dev/shm").is_dir() else None


@contextmanager
def filesystem_stores() -> Iterator[StoreFactory]:
    with tempfile.TemporaryDirectory(prefix="imagecore-faults-", dir=FAST_TEMPORARY_ROOT) as root:
        numbers = itertools.count()
        previous: list[tuple[SqliteImageRepository, Path]] = []

        def fresh() -> Stores:
            for repository, data_dir in previous:
                repository.close()
                shutil.rmtree(data_dir, ignore_errors=True)
            previous.clear()
            data_dir = Path(root) / str(next(numbers))
            repository = SqliteImageRepository(data_dir / "imagecore.sqlite3")
            previous.append((repository, data_dir))
            return Stores(repository, FilesystemBlobStore(data_dir / "blobs"))

        try:
            yield fresh
        finally:
            for repository, _ in previous:
                repository.close()


# --- aws: DynamoDB and S3, on moto in-process or on a moto server -------------------------------


@contextmanager
def dynamodb_repository(where: str) -> Iterator[ImageRepository]:
    with aws_clients(where) as clients, fresh_resources(clients) as (table, _):
        yield DynamoDbImageRepository(clients.dynamodb, table)


@contextmanager
def s3_blob_store(where: str) -> Iterator[BlobStore]:
    with aws_clients(where) as clients, fresh_resources(clients) as (_, bucket):
        yield S3BlobStore(clients.s3, bucket)


def _empty(clients: AwsClients, table: str, bucket: str) -> None:
    """Remove every item and object: much faster on moto than a new table and bucket."""
    scans = clients.dynamodb.get_paginator("scan").paginate(
        TableName=table, ProjectionExpression="pk, sk", ConsistentRead=True
    )
    keys = [item for page in scans for item in page.get("Items", [])]
    for start in range(0, len(keys), 25):
        clients.dynamodb.batch_write_item(
            RequestItems={
                table: [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]
            }
        )
    listing = clients.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    names = [item["Key"] for page in listing for item in page.get("Contents", [])]
    if names:
        clients.s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": name} for name in names], "Quiet": True}
        )


@contextmanager
def moto_server_stores() -> Iterator[StoreFactory]:
    clients = moto_server().clients()
    with fresh_resources(clients) as (table, bucket):
        stores = Stores(
            DynamoDbImageRepository(clients.dynamodb, table), S3BlobStore(clients.s3, bucket)
        )

        def fresh() -> Stores:
            _empty(clients, table, bucket)
            return stores

        yield fresh


@contextmanager
def moto_server_environment() -> Iterator[dict[str, str]]:
    """A fresh table and bucket on the moto server of this test process, and where they are."""
    moto = moto_server()
    with fresh_resources(moto.clients()) as (table, bucket):
        yield {"AWS_ENDPOINT_URL": moto.url, "IMAGECORE_TABLE": table, "IMAGECORE_BUCKET": bucket}


# --- the registry -------------------------------------------------------------------------------


BACKENDS: tuple[Backend, ...] = (
    Backend(
        name="memory",
        places=(
            Place(
                repository_id="memory",
                repository=memory_repository,
                blob_store_id="memory",
                blob_store=memory_blob_store,
                stateful=StatefulRun("TestImageService", memory_pair, max_examples=200),
            ),
        ),
        server_environment=lambda: nullcontext({}),
        fault_injection=FaultInjection(
            test_id="memory",
            stores=memory_stores,
            every_variant_at_each_position=True,
            min_positions=100,
            scenario_examples=300,
        ),
    ),
    Backend(
        name="filesystem",
        places=(
            Place(
                repository_id="filesystem",
                repository=sqlite_repository,
                blob_store_id="filesystem",
                blob_store=filesystem_blob_store,
            ),
        ),
        server_environment=lambda: nullcontext({}),
        fault_injection=FaultInjection(
            test_id="filesystem-sqlite",
            stores=filesystem_stores,
            every_variant_at_each_position=True,
            min_positions=100,
            scenario_examples=150,
        ),
    ),
    Backend(
        name="aws",
        places=(
            Place(
                repository_id="dynamodb-moto",
                repository=lambda _: dynamodb_repository("in-process"),
                blob_store_id="s3-moto",
                blob_store=lambda _: s3_blob_store("in-process"),
                stateful=StatefulRun(
                    "TestImageServiceOnDynamoDbAndS3InProcess",
                    partial(aws_stores, "in-process"),
                    max_examples=None,
                ),
            ),
            Place(
                repository_id="dynamodb-moto-server",
                repository=lambda _: dynamodb_repository("server"),
                blob_store_id="s3-moto-server",
                blob_store=lambda _: s3_blob_store("server"),
                stateful=StatefulRun(
                    "TestImageServiceOnDynamoDbAndS3OnMotoServer",
                    partial(aws_stores, "server"),
                    max_examples=None,
                ),
            ),
        ),
        server_environment=moto_server_environment,
        fault_injection=FaultInjection(
            test_id="dynamodb-s3-moto-server",
            stores=moto_server_stores,
            # Each request to moto server takes tens of milliseconds: there, each position gets
            # one kind of fault, the kinds taking turns, which keeps the run near a minute. The
            # full cross product runs on the other backends, whose adapters the contract suite
            # proves equal.
            every_variant_at_each_position=False,
            min_positions=100,
            scenario_examples=30,
        ),
    ),
)

PLACES: tuple[Place, ...] = tuple(place for backend in BACKENDS for place in backend.places)


def backend(name: str) -> Backend:
    """The entry of BACKENDS named ``name``."""
    for entry in BACKENDS:
        if entry.name == name:
            return entry
    raise KeyError(f"no backend {name!r} in tests/support/backends.py")
