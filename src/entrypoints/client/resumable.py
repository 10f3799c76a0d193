"""Resumable uploads: a big file sent in pieces, each kept by the server as it arrives, so a
dropped connection costs one piece and a stopped run (Ctrl-C, a closed laptop, a crash) goes on,
when run again, from where the server stands.

Two ways, as the server offers: tus (``TusRoute``, the embedded server's /files/), and on AWS a
multipart upload session (``SessionRoute``), whose parts go straight to S3.

Where each file's upload is, is kept on this machine (``ResumeState``), by the server, the user
and the file's SHA-256 and size: the same bytes under another name resume too, and a changed
file starts anew. An upload the server no longer holds (expired, ended) starts anew.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import io
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from entrypoints.client.api import (
    ClientError,
    ImagecoreClient,
    Sent,
    TusProgress,
    UploadFields,
    UploadSession,
)
from entrypoints.client.bodies import CountedBytes, Counter

if TYPE_CHECKING:
    from entrypoints.client.uploads import LocalFile

DEFAULT_RESUMABLE_ABOVE = 64 * 1024 * 1024
"""Files larger than this are sent resumably: below it, starting over costs little."""
TUS_CHUNK_BYTES = 8 * 1024 * 1024
"""The bytes of one PATCH: what a dropped connection costs at most, and what the client holds
in memory per file."""
MAX_STALLED_TRIES = 6
"""Tries in a row that move the upload no further before the file is given up (this run)."""
LOCKED_WAIT_SECONDS = 1.0

Stopping = Callable[[], bool]
"""Asked between pieces: True once the run is stopping (Ctrl-C), and the file with it."""


class UploadStopped(ClientError):
    """The run stopped between two pieces of a resumable upload: run again to go on."""

    def __init__(self) -> None:
        super().__init__("stopped part-way: run again to go on from where the server stands")


def _never() -> bool:
    return False


def default_state_file() -> Path:
    """``$XDG_STATE_HOME/imagecore/uploads.json`` (``~/.local/state`` by default)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "imagecore" / "uploads.json"


class ResumeState:
    """The URLs of unfinished uploads, in a JSON file shared by every run (and every thread):
    each change is read, made and written under a lock on the file, and written whole by a
    rename, so a run killed mid-write leaves the last state."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    @staticmethod
    def key(server: str, user: str | None, file: LocalFile) -> str:
        return f"{server} {user or '-'} {file.sha256} {file.size}"

    def get(self, key: str) -> str | None:
        with self._locked() as entries:
            value = entries.get(key)
        return value if isinstance(value, str) else None

    def put(self, key: str, url: str) -> None:
        with self._locked(write=True) as entries:
            entries[key] = url

    def drop(self, key: str) -> None:
        with self._locked(write=True) as entries:
            entries.pop(key, None)

    @contextlib.contextmanager
    def _locked(self, write: bool = False) -> Iterator[dict[str, Any]]:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self._lock, (self.path.parent / f".{self.path.name}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                entries = json.loads(self.path.read_text())
            except (FileNotFoundError, ValueError):
                entries = {}
            if not isinstance(entries, dict):
                entries = {}
            yield entries
            if write:
                self._write(entries)

    def _write(self, entries: dict[str, Any]) -> None:
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".uploads-")
        try:
            with os.fdopen(fd, "w") as file:
                json.dump(entries, file, indent=1, sort_keys=True)
            Path(temporary).replace(self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


@attrs.define
class TusRoute:
    """A file sent by tus (the embedded server's /files/), in pieces of ``chunk_bytes``, each
    with its SHA-256 for the server to check."""

    client: ImagecoreClient
    fields: UploadFields
    state: ResumeState
    chunk_bytes: int = TUS_CHUNK_BYTES
    sleep: Callable[[float], None] = time.sleep

    def send(
        self,
        file: LocalFile,
        count: Counter | None,
        resumed: Counter | None = None,
        stopping: Stopping = _never,
    ) -> Sent:
        key = ResumeState.key(self.client.base_url, self.client.subject, file)
        url, progress = self._resumed_upload(key)
        if url is None or progress is None:
            url = self.client.tus_create(
                self.fields, file.path.name, file.size, file.sha256, file.content_type
            )
            self.state.put(key, url)
            progress = TusProgress(0)
        elif progress.offset and resumed is not None:
            resumed(progress.offset)
        progress = self._send_from(url, file, progress, count, stopping)
        self.state.drop(key)
        assert progress.image_location is not None
        image_id = progress.image_location.rstrip("/").rsplit("/", 1)[-1]
        image = self.client.get(image_id)
        # The upload's id is its image's, unless the caller had the bytes already.
        return Sent(image, created=url.rstrip("/").rsplit("/", 1)[-1] == image_id)

    def _resumed_upload(self, key: str) -> tuple[str | None, TusProgress | None]:
        url = self.state.get(key)
        if url is None:
            return None, None
        progress = self.client.tus_progress(url)
        if progress is None:  # the server holds it no more: start anew
            self.state.drop(key)
            return None, None
        return url, progress

    def _send_from(
        self,
        url: str,
        file: LocalFile,
        progress: TusProgress,
        count: Counter | None,
        stopping: Stopping,
    ) -> TusProgress:
        stalled = 0
        # One buffer for every piece: a new 8 MiB object per piece grew the heap by hundreds
        # of MiB over a gigabyte (glibc serves them from the heap once one has been freed).
        buffer = memoryview(bytearray(self.chunk_bytes))
        with file.path.open("rb") as source:
            while progress.image_location is None:
                if progress.offset >= file.size:  # all there, and no image said: ask again
                    progress = self._progress(url)
                    if progress.image_location is None:
                        raise ClientError(
                            f"the server holds all of {file.path.name} but made no image of it"
                        )
                    break
                if stopping():
                    raise UploadStopped
                source.seek(progress.offset)
                wanted = min(self.chunk_bytes, file.size - progress.offset)
                data = buffer[: source.readinto(buffer[:wanted])]
                if not data:
                    raise OSError(f"{file.path} became shorter while it was sent")
                body = CountedBytes(data, count)
                try:
                    progress = self.client.tus_append(
                        url, progress.offset, body, len(data), hashlib.sha256(data).digest()
                    )
                    stalled = 0
                except ClientError as exc:
                    body.take_back()
                    stalled += 1
                    if stalled >= MAX_STALLED_TRIES or not _worth_resuming(exc):
                        raise
                    if exc.status == 423:  # another request still holds it: let it end
                        self.sleep(LOCKED_WAIT_SECONDS * stalled)
                    before = progress.offset
                    progress = self._progress(url)
                    if progress.offset > before:  # the piece arrived, or part of it did
                        body_sent = progress.offset - before
                        if count is not None:
                            count(body_sent)
        return progress

    def _progress(self, url: str) -> TusProgress:
        progress = self.client.tus_progress(url)
        if progress is None:
            raise ClientError("the server no longer holds this upload: run again to start anew")
        return progress


def _worth_resuming(error: ClientError) -> bool:
    """A piece that may go through if sent again from where the server stands: the connection
    failed (status None), the offset was not the server's (409), another request held the
    upload (423), or the bytes arrived damaged (460)."""
    return error.status in (None, 409, 423, 460)


PARTS_PER_REQUEST = 16
"""Part URLs asked for at once: each is good for a while, and the parts are hashed before."""


@attrs.define
class SessionRoute:
    """A file sent by a multipart upload session (POST /upload-sessions, on AWS): the parts go
    straight to the blob store, each with its SHA-256 for the store to check, and the server
    assembles them once all are there. A part is the unit a failure costs."""

    client: ImagecoreClient
    fields: UploadFields
    state: ResumeState
    wait_seconds: float

    def send(
        self,
        file: LocalFile,
        count: Counter | None,
        resumed: Counter | None = None,
        stopping: Stopping = _never,
    ) -> Sent:
        key = ResumeState.key(self.client.base_url, self.client.subject, file)
        session = self._resumed_session(key)
        if session is None:
            opened = self.client.open_session(
                self.fields, file.path.name, file.size, file.sha256, file.content_type
            )
            if isinstance(opened, Sent):  # the caller has these bytes: nothing to send
                return opened
            session = opened
            self.state.put(key, f"session {session.upload_id}")
        elif session.parts and resumed is not None:
            resumed(sum(session.parts.values()))
        if not session.complete:
            self._send_missing_parts(session, file, count, stopping)
            self.client.complete_session(session.upload_id)
        self.state.drop(key)
        image = self.client.wait_for_image(session, self.wait_seconds)
        return Sent(image, created=image.get("image_id") == session.upload_id)

    def _resumed_session(self, key: str) -> UploadSession | None:
        kept = self.state.get(key)
        if kept is None or not kept.startswith("session "):
            return None
        session = self.client.session(kept.removeprefix("session "))
        if session is None:  # expired, cancelled, or refused: start anew
            self.state.drop(key)
        return session

    def _send_missing_parts(
        self, session: UploadSession, file: LocalFile, count: Counter | None, stopping: Stopping
    ) -> None:
        missing = [
            number
            for number in range(1, session.part_count + 1)
            if session.parts.get(number) != session.part_length(number)
        ]
        buffer = memoryview(bytearray(session.part_size))  # one for every part: see TusRoute
        with file.path.open("rb") as source:
            for first in range(0, len(missing), PARTS_PER_REQUEST):
                batch = missing[first : first + PARTS_PER_REQUEST]
                digests = {
                    number: base64.b64encode(
                        hashlib.sha256(_part(source, session, number, buffer)).digest()
                    ).decode()
                    for number in batch
                }
                for target in self.client.part_targets(session.upload_id, digests):
                    if stopping():
                        raise UploadStopped
                    data = _part(source, session, target.number, buffer)
                    if (
                        base64.b64encode(hashlib.sha256(data).digest()).decode()
                        != digests[target.number]
                    ):
                        raise ClientError(f"{file.path} changed while it was sent")
                    body = CountedBytes(data, count)
                    try:
                        self.client.put_part(target, body, len(data))
                    except BaseException:
                        body.take_back()
                        raise


def _part(
    source: io.BufferedReader, session: UploadSession, number: int, buffer: memoryview
) -> memoryview:
    """Part ``number`` of the file, read into ``buffer``."""
    length = session.part_length(number)
    source.seek((number - 1) * session.part_size)
    if source.readinto(buffer[:length]) != length:
        raise OSError(f"{source.name} became shorter while it was sent")
    return buffer[:length]
