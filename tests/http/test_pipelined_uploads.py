"""Uploads whose next piece is received while the last is written keep every guarantee of an
upload: a client gone mid-body, a body past the limit and a disk that fails mid-write each
leave no temporary file and no image, and the body is not read on after the failure.

The app runs in this process on files + SQLite, fed by an ASGI ``receive`` of the test's own,
so the test decides exactly when the client goes away and what the disk does."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from dependency_injector import providers
from starlette.types import ASGIApp, Message

from entrypoints.container import Container, build_container
from entrypoints.http.body import PIECE_BYTES
from entrypoints.http.upload_pipeline import PIPELINE_DEPTH
from entrypoints.settings import Settings
from imagecore.model import StoredBlob
from imagecore.ports import BlobStore, BlobWriter
from imagecore.query import build_list_query
from tests.reliability.faults import (
    Fault,
    FaultKind,
    FaultMoment,
    FaultPlan,
    FaultyBlobStore,
)
from tests.support.sample_images import image_bytes

MIB = 1024 * 1024
ENOUGH = 64 * MIB
"""Where the test's client gives up on a body without end: an app still reading has failed."""
CHUNK = 256 * 1024
"""What the test's client sends per message (granian hands the app up to 1 MiB)."""
BOUNDARY = "pipelined-test-boundary"
JPEG = image_bytes("image/jpeg", 64, 48)
OWNER = "alice"
SECRET = "pipelined-uploads-test-secret-32-bytes!"


def chunks_of(kind: str, size: int | None) -> tuple[str, Iterator[bytes]]:
    """The Content-Type and the messages of an upload of ``size`` bytes of file (a JPEG, then
    padding), or of a file without end (None): a raw body or a form."""
    head, tail, content_type = b"", b"", "image/jpeg"
    if kind == "form":
        content_type = f"multipart/form-data; boundary={BOUNDARY}"
        head = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"'
            "\r\nContent-Type: image/jpeg\r\n\r\n"
        ).encode()
        tail = f"\r\n--{BOUNDARY}--\r\n".encode()

    def messages() -> Iterator[bytes]:
        yield head + JPEG
        sent = len(JPEG)
        padding = bytes(CHUNK)
        while size is None or sent < size:
            piece = padding if size is None else padding[: min(CHUNK, size - sent)]
            sent += len(piece)
            yield piece
        yield tail

    return content_type, messages()


class Client:
    """The ASGI side of one request: its messages, what the app answered, and how much of the
    body the app asked for."""

    def __init__(
        self,
        body: Iterator[bytes],
        before_each: Callable[[Client], Awaitable[Message | None]] | None = None,
    ) -> None:
        self.body = body
        self.before_each = before_each
        self.received = 0  # bytes of body the app took
        self.status = 0
        self.answer = b""

    async def receive(self) -> Message:
        if self.before_each is not None and (instead := await self.before_each(self)):
            return instead
        await anyio.sleep(0)  # a server yields to the loop between messages
        if self.received > ENOUGH:
            return {"type": "http.disconnect"}
        piece = next(self.body, None)
        if piece is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        self.received += len(piece)
        return {"type": "http.request", "body": piece, "more_body": True}

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self.answer += message.get("body", b"")

    def error(self) -> str:
        code: str = json.loads(self.answer)["error"]
        return code


def post_image(app: ASGIApp, token: str, content_type: str, client: Client) -> None:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/images",
        "raw_path": b"/images",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"test"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", content_type.encode()),
            (b"transfer-encoding", b"chunked"),  # no length: the limit is met as bytes arrive
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    anyio.run(app, scope, client.receive, client.send)


class Server:
    """The app of a files + SQLite container under ``root``, with its blob store replaced by
    whatever ``wrap`` makes of the real one."""

    def __init__(
        self,
        root: Path,
        max_upload_bytes: int = 64 * MIB,
        wrap: Callable[[BlobStore], Any] | None = None,
    ) -> None:
        self.container: Container = build_container(
            Settings(
                backend="filesystem",
                data_dir=root / "data",
                token_secret=SECRET,
                rate_limit_burst=10**9,
                max_upload_bytes=max_upload_bytes,
            )
        )
        self.blob_root = root / "data" / "blobs"
        if wrap is not None:
            self.container.blobs.override(providers.Object(wrap(self.container.blobs())))
        self.app = self.container.http_app()
        self.token = self.container.tokens().issue(OWNER)

    def files_left(self) -> list[Path]:
        """Every file under the blob store's root: temporary ones and blobs alike."""
        return [path for path in self.blob_root.rglob("*") if path.is_file()]

    def images(self) -> list[Any]:
        everything = build_list_query(user_id=OWNER, limit=100)
        return list(self.container.images().list_images(OWNER, everything, None).images)


@pytest.mark.parametrize("kind", ["raw", "form"])
def test_a_client_gone_mid_body_leaves_no_temporary_file_and_no_image(
    tmp_path: Path, kind: str
) -> None:
    server = Server(tmp_path)
    content_type, body = chunks_of(kind, None)
    saw_temporary_file: list[bool] = []

    async def gone_once_writing(client: Client) -> Message | None:
        if client.received < 4 * MIB:
            return None
        # The client goes away while the file is being written, not before it exists.
        deadline = anyio.current_time() + 10
        while not server.files_left() and anyio.current_time() < deadline:
            await anyio.sleep(0.005)
        saw_temporary_file.append(bool(server.files_left()))
        return {"type": "http.disconnect"}

    client = Client(body, gone_once_writing)
    post_image(server.app, server.token, content_type, client)

    assert saw_temporary_file == [True], "the upload never got to write a file"
    assert client.status == 400, client.answer
    assert server.files_left() == []
    assert server.images() == []


class CountingBlobStore:
    """A blob store whose writers count the bytes written through them."""

    def __init__(self, inner: BlobStore) -> None:
        self.inner = inner
        self.written = 0

    def writer(self, key: str) -> BlobWriter:
        return _CountingWriter(self, self.inner.writer(key))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _CountingWriter:
    def __init__(self, store: CountingBlobStore, inner: BlobWriter) -> None:
        self.store = store
        self.inner = inner

    def write(self, data: bytes) -> None:
        self.inner.write(data)
        self.store.written += len(data)

    def commit(self) -> StoredBlob:
        return self.inner.commit()

    def abort(self) -> None:
        self.inner.abort()


def test_a_body_past_the_limit_is_refused_with_nothing_written_past_it(tmp_path: Path) -> None:
    limit = 3 * MIB
    stores: list[CountingBlobStore] = []

    def counting(inner: BlobStore) -> Any:
        stores.append(CountingBlobStore(inner))
        return stores[0]

    server = Server(tmp_path, max_upload_bytes=limit, wrap=counting)
    content_type, body = chunks_of("raw", None)
    client = Client(body)
    post_image(server.app, server.token, content_type, client)

    assert client.status == 413, client.answer
    assert client.error() == "PayloadTooLarge"
    assert 0 < stores[0].written <= limit
    # Refused as soon as the writer met the limit: the body was read no further than the
    # pieces the pipeline holds (and the one being gathered) past it.
    assert client.received <= limit + (PIPELINE_DEPTH + 1) * (PIECE_BYTES + CHUNK)
    assert server.files_left() == []
    assert server.images() == []


@pytest.mark.parametrize("kind", ["raw", "form"])
def test_a_write_that_fails_mid_upload_aborts_it_and_reads_no_further(
    tmp_path: Path, kind: str
) -> None:
    plan = FaultPlan()
    server = Server(tmp_path, wrap=lambda inner: FaultyBlobStore(inner, plan))
    # Calls on the store: 1 the writer, 2 the first MiB held back to tell the type, 3 and on
    # each part of the rest; the fifth write fails.
    plan.arm(Fault(6, FaultKind.FAILURE, FaultMoment.BEFORE))
    content_type, body = chunks_of(kind, None)
    client = Client(body)
    post_image(server.app, server.token, content_type, client)

    assert plan.fired
    assert client.status == 500, client.answer
    assert client.error() == "InternalError"
    after_failure = plan.calls[6:]
    assert "blobs.writer.write" not in after_failure, plan.calls
    assert "blobs.writer.abort" in after_failure, plan.calls
    assert client.received <= 3 * MIB + (PIPELINE_DEPTH + 1) * (PIECE_BYTES + CHUNK)
    assert server.files_left() == []
    assert server.images() == []
