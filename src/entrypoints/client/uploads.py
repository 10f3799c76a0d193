"""How one file becomes an image on the server.

Each file is hashed first, and its SHA-256 goes with it, so a file the server already has is
never sent again: the server answers with the image it has. A file then takes one of the
routes, by its size:

- ``PostRoute``: POST /images, the file in the request (up to the server's upload limit);
- ``DirectRoute``: POST /uploads for a slot, the hash in its ``sha256``, then the file to the
  slot's link (the server's own signed link, or an S3 presigned POST on AWS), then the image
  once the server has checked the bytes.

- for files above ``resumable_above``, a resumable route (client/resumable.py): ``TusRoute`` on
  a server that speaks tus (the embedded server), ``SessionRoute`` (a multipart upload session,
  the parts straight to S3) on one that does not (AWS). The file goes in pieces, each kept as it
  arrives, so a dropped connection or a stopped run goes on from where the server stands.

The limit of POST /images is not published by the server, so files above ``direct_above``
take the direct route, and a file POST /images refuses as too large (413) takes it too, and
lowers the threshold for the files after it.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Protocol

import attrs

from entrypoints.client.api import ClientError, ImagecoreClient, Resource, Sent, UploadFields
from entrypoints.client.bodies import Counter, FileForm
from entrypoints.client.files import sniff_content_type
from entrypoints.client.resumable import (
    DEFAULT_RESUMABLE_ABOVE,
    ResumeState,
    SessionRoute,
    Stopping,
    TusRoute,
    default_state_file,
)

DEFAULT_DIRECT_ABOVE = 4 * 1024 * 1024
"""Files larger than this go through POST /uploads: API Gateway's requests take 4 MiB at most
(the embedded server's own limit is 50 MiB by default, and it takes direct uploads too)."""
DIRECT_IMAGE_WAIT_SECONDS = 300.0
"""How long a direct upload may take to become an image once its bytes have arrived (on AWS,
the worker checks and copies them)."""
_HASH_CHUNK = 1024 * 1024
_UNKNOWN_TYPE = "application/octet-stream"


@attrs.frozen
class LocalFile:
    """A file to upload, as read once: its size, SHA-256 and the image type of its bytes."""

    path: Path
    size: int
    sha256: str
    content_type: str | None

    @classmethod
    def read(cls, path: Path) -> LocalFile:
        digest = hashlib.sha256()
        size = 0
        head = b""
        with path.open("rb") as file:
            while chunk := file.read(_HASH_CHUNK):
                if not head:
                    head = chunk[:16]
                digest.update(chunk)
                size += len(chunk)
        return cls(path, size, digest.hexdigest(), sniff_content_type(head))

    def form(self, fields: Mapping[str, str], count: Counter | None) -> FileForm:
        return FileForm(
            fields, self.path, self.size, self.path.name, self.content_type or _UNKNOWN_TYPE, count
        )


@attrs.frozen
class Uploaded:
    """A file that is on the server: ``created`` by this upload, or there already."""

    file: LocalFile
    image: Resource
    created: bool


class Route(Protocol):
    """One way of getting a file's bytes to the server."""

    def send(self, file: LocalFile, count: Counter | None) -> Sent: ...


@attrs.frozen
class PostRoute:
    """POST /images, the file's hash in X-Content-SHA256."""

    client: ImagecoreClient
    fields: UploadFields

    def send(self, file: LocalFile, count: Counter | None) -> Sent:
        form = file.form(self.fields.form(), count)
        with _uncounted_on_failure(form):
            return self.client.post_image(form, file.sha256)


@attrs.frozen
class DirectRoute:
    """A direct upload slot, asked for with the file's hash: the server answers with the image
    it has of those bytes instead of a slot, and no byte is sent."""

    client: ImagecoreClient
    fields: UploadFields
    wait_seconds: float = DIRECT_IMAGE_WAIT_SECONDS

    def send(self, file: LocalFile, count: Counter | None) -> Sent:
        # A file that is no image is asked a slot all the same: the server says why not.
        content_type = file.content_type or _UNKNOWN_TYPE
        slot = self.client.create_slot(
            self.fields, file.path.name, content_type, file.size, file.sha256
        )
        if isinstance(slot, Sent):
            return slot
        form = file.form({**slot.fields, "Content-Type": content_type}, count)
        with _uncounted_on_failure(form):
            sent = self.client.post_to_slot(slot, form)
        if sent is None:
            sent = Sent(self.client.wait_for_image(slot, self.wait_seconds), created=True)
        return sent


@contextlib.contextmanager
def _uncounted_on_failure(form: FileForm) -> Iterator[None]:
    try:
        yield
    except BaseException:
        form.take_back()
        raise


class Uploader:
    """Uploads files one by one, from any number of threads, each by the route its size
    calls for; ``known`` holds images of the caller's by their SHA-256, whose files need no
    request at all."""

    def __init__(
        self,
        client: ImagecoreClient,
        fields: UploadFields,
        *,
        direct_above: int = DEFAULT_DIRECT_ABOVE,
        known: Mapping[str, Resource] | None = None,
        direct_wait_seconds: float = DIRECT_IMAGE_WAIT_SECONDS,
        resumable_above: int = DEFAULT_RESUMABLE_ABOVE,
        state: ResumeState | None = None,
    ) -> None:
        self.client = client
        self.post = PostRoute(client, fields)
        self.direct = DirectRoute(client, fields, direct_wait_seconds)
        state = state or ResumeState(default_state_file())
        self.tus = TusRoute(client, fields, state)
        self.sessions = SessionRoute(client, fields, state, direct_wait_seconds)
        self.direct_above = direct_above
        self.resumable_above = resumable_above
        self._speaks_tus: bool | None = None
        self._known = dict(known or {})
        self._lock = threading.Lock()

    def upload(
        self,
        path: Path,
        count: Counter | None = None,
        resumed: Counter | None = None,
        stopping: Stopping = lambda: False,
    ) -> Uploaded:
        """Upload one file; ``count`` is told the bytes sent, ``resumed`` those the server
        held already from an earlier run. A resumable upload asks ``stopping`` between its
        pieces, and ends (UploadStopped) once it says the run stops."""
        file = LocalFile.read(path)
        if (image := self._known.get(file.sha256)) is not None:
            return Uploaded(file, image, created=False)
        if file.size > self.resumable_above:
            route = self.tus if self._server_speaks_tus() else self.sessions
            sent = route.send(file, count, resumed, stopping)
        elif file.size > self.direct_above:
            sent = self.direct.send(file, count)
        else:
            try:
                sent = self.post.send(file, count)
            except ClientError as exc:
                if exc.status != 413:
                    raise
                with self._lock:  # the server's limit is below this size: learn it
                    self.direct_above = min(self.direct_above, file.size - 1)
                sent = self.direct.send(file, count)
        with self._lock:  # the same bytes twice in one run: the second is there already
            self._known.setdefault(file.sha256, sent.image)
        return Uploaded(file, sent.image, sent.created)

    def _server_speaks_tus(self) -> bool:
        """Asked once, when the first big file comes: most runs have none."""
        with self._lock:
            if self._speaks_tus is None:
                self._speaks_tus = self.client.speaks_tus()
            return self._speaks_tus
