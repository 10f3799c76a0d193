"""Fault injection for the stateful ports the ImageService uses.

The fault model. Every call the service makes on a wrapped port (the image repository, the blob
store, the job queue, the renderer and the upload targets) takes the next *position* in one
shared count, the :class:`FaultPlan`. So does every chunk pulled through an iterator a port hands
out (``BlobStore.open``, ``BlobStore.stored_before``, ``ImageRepository.unsettled``) or consumes
(the chunks given to ``BlobStore.put``), and every call on a ``BlobStore.writer``'s writer. At
the planned position one fault happens:

- a **failure**: the call raises :class:`InjectedFailure`, an ordinary ``OSError`` as an adapter
  raises for a dropped connection or a full disk. The process goes on; the service's own cleanup
  runs and may call the ports again. The failure comes either *before* the call does anything,
  or *after* the real call completed: a lost reply, as when a write commits and the answer times
  out, so the caller cannot tell whether it took effect.
- a **crash**: the call raises :class:`Crash`, a ``BaseException``, and from then on the plan is
  *dead*: every later call on any wrapped port raises Crash too and changes nothing. That is the
  process dying at exactly that call: no ``except`` or ``finally`` block can touch a store
  afterwards. A crash comes either *before* the call does anything, or *after* the real call
  completed (the write happened, then the process died before it saw the answer).

Only the ports are wrapped: what the real adapters do inside one call (a temporary file removed,
a multipart upload aborted) is the adapter's own atomicity, which the contract suite proves.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TypeVar

import attrs

from imagecore.model import (
    ByteRange,
    Image,
    Job,
    Position,
    Rendered,
    RenditionSize,
    StoredBlob,
    UploadTarget,
)
from imagecore.ports import (
    BlobStore,
    BlobWriter,
    ImageRepository,
    JobQueue,
    Renderer,
    UploadTargets,
)
from imagecore.query import Listed, ListQuery

T = TypeVar("T")


class Crash(BaseException):
    """The process died here: nothing after this touches a store."""


class InjectedFailure(OSError):
    """An ordinary adapter error: the call did nothing, and the process goes on."""


class FaultKind(StrEnum):
    FAILURE = "failure"
    CRASH = "crash"


class FaultMoment(StrEnum):
    BEFORE = "before"
    """The call fails or crashes before it does anything."""
    AFTER = "after"
    """The real call completes, then its answer is lost: the caller sees the fault instead."""


@attrs.frozen
class Fault:
    """What happens at call ``position`` (counted from 1)."""

    position: int
    kind: FaultKind
    moment: FaultMoment

    def __str__(self) -> str:
        return f"{self.kind} {self.moment} call {self.position}"


FAULT_VARIANTS: tuple[tuple[FaultKind, FaultMoment], ...] = (
    (FaultKind.FAILURE, FaultMoment.BEFORE),
    (FaultKind.CRASH, FaultMoment.BEFORE),
    (FaultKind.CRASH, FaultMoment.AFTER),
    (FaultKind.FAILURE, FaultMoment.AFTER),
)
"""Every kind of fault the tests inject at a position."""


@attrs.define
class FaultPlan:
    """Counts the calls on every wrapped port and injects the one planned fault."""

    fault: Fault | None = None
    calls: list[str] = attrs.Factory(list)
    """The name of each call made since the plan was armed, in order: position N is calls[N-1]."""
    fired: bool = False
    dead: bool = False

    def arm(self, fault: Fault | None) -> None:
        """Count from zero again, with ``fault`` (None: none) to come."""
        self.fault = fault
        self.calls.clear()
        self.fired = False

    @property
    def call_count(self) -> int:
        return len(self.calls)

    def call(self, name: str, perform: Callable[[], T]) -> T:
        """Make the call ``perform`` stands for, unless the fault planned for it says otherwise."""
        if self.dead:
            raise Crash(f"{name}: the process is dead")
        self.calls.append(name)
        position = len(self.calls)
        fault = self.fault
        if fault is None or position != fault.position:
            return perform()
        self.fired = True
        if fault.moment is FaultMoment.AFTER:
            # Whatever the call answered (a StopIteration or KeyError included), nobody sees it.
            with contextlib.suppress(Exception):
                perform()
        if fault.kind is FaultKind.CRASH:
            self.dead = True
            raise Crash(f"crash {fault.moment} call {position}, {name}")
        raise InjectedFailure(f"injected failure at call {position}, {name}")


class FaultyIterator(Iterator[T]):
    """An iterator each of whose steps is a call of the plan's."""

    def __init__(self, plan: FaultPlan, name: str, inner: Iterable[T]) -> None:
        self._plan = plan
        self._name = name
        self._inner = iter(inner)

    def __next__(self) -> T:
        return self._plan.call(self._name, lambda: next(self._inner))

    def close(self) -> None:
        # Releasing a file or a connection changes no store: not a call of the plan's.
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()


class FaultyImageRepository:
    def __init__(self, inner: ImageRepository, plan: FaultPlan) -> None:
        self._inner = inner
        self._plan = plan

    def add(self, image: Image) -> None:
        self._plan.call("repository.add", lambda: self._inner.add(image))

    def get(self, image_id: str) -> Image | None:
        return self._plan.call("repository.get", lambda: self._inner.get(image_id))

    def replace(self, image: Image, expected_version: int) -> None:
        self._plan.call("repository.replace", lambda: self._inner.replace(image, expected_version))

    def list(self, query: ListQuery, caller: str, after: Position | None, limit: int) -> Listed:
        return self._plan.call(
            "repository.list", lambda: self._inner.list(query, caller, after, limit)
        )

    def find_by_content(self, user_id: str, sha256: str) -> Image | None:
        return self._plan.call(
            "repository.find_by_content", lambda: self._inner.find_by_content(user_id, sha256)
        )

    def unsettled(self) -> Iterator[Image]:
        found = self._plan.call("repository.unsettled", self._inner.unsettled)
        return FaultyIterator(self._plan, "repository.unsettled:next", found)

    def revision(self) -> None:
        # Nothing is kept between reads: every list under a plan reaches the inner store.
        return None

    def pending_thumbnails(self, created_before: datetime) -> Iterator[Image]:
        found = self._plan.call(
            "repository.pending_thumbnails",
            lambda: self._inner.pending_thumbnails(created_before),
        )
        return FaultyIterator(self._plan, "repository.pending_thumbnails:next", found)


class FaultyBlobStore:
    def __init__(self, inner: BlobStore, plan: FaultPlan) -> None:
        self._inner = inner
        self._plan = plan

    def put(self, key: str, chunks: Iterable[bytes], content_type: str | None = None) -> StoredBlob:
        pulled = FaultyIterator(self._plan, "blobs.put:chunk", chunks)
        return self._plan.call("blobs.put", lambda: self._inner.put(key, pulled, content_type))

    def writer(self, key: str) -> BlobWriter:
        inner = self._plan.call("blobs.writer", lambda: self._inner.writer(key))
        return FaultyBlobWriter(inner, self._plan)

    def open(self, key: str, byte_range: ByteRange | None = None) -> Iterator[bytes]:
        chunks = self._plan.call("blobs.open", lambda: self._inner.open(key, byte_range))
        return FaultyIterator(self._plan, "blobs.open:chunk", chunks)

    def delete(self, key: str) -> None:
        self._plan.call("blobs.delete", lambda: self._inner.delete(key))

    def stored_before(self, moment: datetime) -> Iterator[str]:
        keys = self._plan.call("blobs.stored_before", lambda: self._inner.stored_before(moment))
        return FaultyIterator(self._plan, "blobs.stored_before:next", keys)

    def presigned_get(
        self,
        key: str,
        ttl: timedelta,
        filename: str,
        content_type: str,
        *,
        as_stored: bool = False,
    ) -> str | None:
        return self._plan.call(
            "blobs.presigned_get",
            lambda: self._inner.presigned_get(
                key, ttl, filename, content_type, as_stored=as_stored
            ),
        )

    def local_path(self, key: str) -> str | None:
        return self._plan.call("blobs.local_path", lambda: self._inner.local_path(key))


class FaultyBlobWriter:
    def __init__(self, inner: BlobWriter, plan: FaultPlan) -> None:
        self._inner = inner
        self._plan = plan

    def write(self, data: bytes) -> None:
        self._plan.call("blobs.writer.write", lambda: self._inner.write(data))

    def commit(self) -> StoredBlob:
        return self._plan.call("blobs.writer.commit", self._inner.commit)

    def abort(self) -> None:
        self._plan.call("blobs.writer.abort", self._inner.abort)


class FaultyJobQueue:
    def __init__(self, inner: JobQueue, plan: FaultPlan) -> None:
        self._inner = inner
        self._plan = plan

    def enqueue(self, job: Job) -> None:
        self._plan.call("jobs.enqueue", lambda: self._inner.enqueue(job))


class FaultyRenderer:
    def __init__(self, inner: Renderer, plan: FaultPlan) -> None:
        self._inner = inner
        self._plan = plan

    def render(self, chunks: Iterable[bytes], sizes: Sequence[RenditionSize]) -> Rendered:
        # The chunks come from the blob store, whose wrapper already counts each of them.
        return self._plan.call("renderer.render", lambda: self._inner.render(chunks, sizes))


class FaultyUploadTargets:
    def __init__(self, inner: UploadTargets, plan: FaultPlan) -> None:
        self._inner = inner
        self._plan = plan

    def target(self, key: str, max_bytes: int, expires_at: datetime) -> UploadTarget:
        return self._plan.call(
            "upload_targets.target", lambda: self._inner.target(key, max_bytes, expires_at)
        )
