"""AWS for the tests: moto in-process (``mock_aws``) and a real moto server on a loopback port,
the stand-in for LocalStack. Tables are made from the Terraform module's definition."""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import httpx

from adapters.aws import AwsClients, make_clients
from adapters.aws_resources import set_up_bucket, set_up_table, table_definition
from adapters.dynamodb import DynamoDbImageRepository
from adapters.s3 import S3BlobStore

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
METADATA_MODULE = REPOSITORY_ROOT / "terraform" / "modules" / "metadata"
REGION = "us-east-1"

# Fake credentials, so no test can ever reach a real account, whatever the machine has set.
FAKE_AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
for _name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
    os.environ.pop(_name, None)
os.environ.update(FAKE_AWS_ENVIRONMENT)


@cache
def table_schema() -> dict[str, Any]:
    return table_definition(METADATA_MODULE)


def unique_name(kind: str) -> str:
    return f"imagecore-test-{kind}-{uuid.uuid4().hex[:12]}"


class _OneCallAtATime:
    """A client whose calls never overlap. moto's in-process backend is not thread-safe (a
    transaction copies tables that another thread is changing); a real service, moto server
    included, handles each request atomically, and this gives the tests the same."""

    def __init__(self, client: Any, lock: threading.RLock) -> None:
        self._client = client
        self._lock = lock

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name.startswith("_") or not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return call


@contextmanager
def in_process_aws() -> Iterator[AwsClients]:
    """Clients of moto's in-process mock, fresh and empty."""
    from moto import mock_aws

    with mock_aws():
        clients = make_clients(region=REGION)
        lock = threading.RLock()
        yield AwsClients(
            dynamodb=_OneCallAtATime(clients.dynamodb, lock),  # type: ignore[arg-type]
            s3=_OneCallAtATime(clients.s3, lock),  # type: ignore[arg-type]
        )


class MotoServer:
    """moto server (tests/support/moto_server.py) in a process of its own, on a free loopback
    port."""

    def __init__(self) -> None:
        from tests.support.http_server import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.moto_server", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            cwd=REPOSITORY_ROOT,
        )
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited with {self.process.returncode}")
            try:
                httpx.get(f"{self.url}/moto-api/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start within 30 s") from None
                time.sleep(0.05)

    def clients(self) -> AwsClients:
        return make_clients(endpoint_url=self.url, region=REGION)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@cache
def moto_server() -> MotoServer:
    """One moto server per test process, started on first use."""
    server = MotoServer()
    atexit.register(server.stop)
    return server


@contextmanager
def fresh_resources(clients: AwsClients) -> Iterator[tuple[str, str]]:
    """A new table (from the Terraform definition) and bucket; both removed afterwards."""
    table, bucket = unique_name("table"), unique_name("bucket")
    set_up_table(clients.dynamodb, table, table_schema())
    set_up_bucket(clients.s3, bucket)
    try:
        yield table, bucket
    finally:
        clients.dynamodb.delete_table(TableName=table)
        _delete_bucket(clients, bucket)


def _delete_bucket(clients: AwsClients, bucket: str, attempts: int = 20) -> None:
    """Empty the bucket and remove it. A server stopped just before may have left a background
    job writing its last renditions: what arrives meanwhile is emptied again."""
    for attempt in range(attempts):
        pages = clients.s3.get_paginator("list_object_versions").paginate(Bucket=bucket)
        for page in pages:
            doomed = [
                {"Key": entry["Key"], "VersionId": entry["VersionId"]}
                for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
            ]
            if doomed:
                clients.s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed})
        try:
            clients.s3.delete_bucket(Bucket=bucket)
            return
        except clients.s3.exceptions.ClientError as error:
            if error.response["Error"]["Code"] != "BucketNotEmpty" or attempt == attempts - 1:
                raise
            time.sleep(0.25)


@contextmanager
def aws_clients(where: str) -> Iterator[AwsClients]:
    """Clients of moto ``in-process`` or of the moto ``server`` of this test process."""
    if where == "in-process":
        with in_process_aws() as clients:
            yield clients
    else:
        yield moto_server().clients()


@contextmanager
def aws_stores(where: str) -> Iterator[tuple[DynamoDbImageRepository, S3BlobStore]]:
    """A DynamoDB repository and S3 blob store on a fresh table and bucket."""
    with aws_clients(where) as clients, fresh_resources(clients) as (table, bucket):
        yield DynamoDbImageRepository(clients.dynamodb, table), S3BlobStore(clients.s3, bucket)


def aws_environment(**names: str) -> dict[str, str]:
    """The environment of a process that is to use the moto server of this test process, with
    ``names`` (IMAGECORE_TABLE, IMAGECORE_BUCKET ...) on top."""
    return {**FAKE_AWS_ENVIRONMENT, "AWS_ENDPOINT_URL": moto_server().url, **names}
