"""Test doubles and builders for the use cases: a clock the test moves by hand, ids that are
valid and predictable, a job queue and a thumbnailer that do what the test says, an image, and a
service wired over the memory adapters."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.memory import MemoryBlobStore, MemoryImageRepository
from adapters.pillow import PillowInspector
from adapters.upload_links import SignedUploadLinks
from imagecore.cursor import CursorCodec
from imagecore.errors import ThumbnailTooCostly
from imagecore.model import (
    Image,
    Job,
    Placeholder,
    Rendered,
    RenderedRendition,
    RenditionSize,
)
from imagecore.service import ImageService

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
START = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)
SECRET = b"domain-tests-cursor-secret-32-by"


class FakeClock:
    """A clock that stands still until the test moves it."""

    def __init__(self, start: datetime = START) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta = timedelta(seconds=1)) -> datetime:
        self.current += delta
        return self.current


def crockford(value: int) -> str:
    """A 128-bit number as 26 characters of Crockford base32, as a ULID is written."""
    chars = []
    for _ in range(26):
        chars.append(CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


class CountingIds:
    """ULID-shaped ids: the milliseconds of ``now``, then a counter, so they sort by creation."""

    def __init__(self) -> None:
        self.issued = 0

    def new_id(self, now: datetime) -> str:
        self.issued += 1
        millis = int(now.timestamp() * 1000)
        return crockford((millis << 80) | self.issued)


class RandomIds:
    """ULID-shaped ids with random low bits from a seeded generator: unique, valid, and in no
    particular order among images created in the same millisecond."""

    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd
        self.issued: set[str] = set()

    def new_id(self, now: datetime) -> str:
        millis = int(now.timestamp() * 1000)
        while True:
            candidate = crockford((millis << 80) | self.rnd.getrandbits(80))
            if candidate not in self.issued:
                self.issued.add(candidate)
                return candidate


def chunked(data: bytes, size: int = 64 * 1024) -> Iterable[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def make_service(
    clock: FakeClock | None = None,
    ids: Any = None,
    *,
    repository: MemoryImageRepository | None = None,
    blobs: MemoryBlobStore | None = None,
    max_upload_bytes: int = 50 * 1024 * 1024,
    **more: Any,
) -> ImageService:
    """The service over memory adapters; ``more`` sets any other of its fields (jobs,
    thumbnailer, limits). Direct uploads get the embedded server's signed links."""
    clock = clock or FakeClock()
    more.setdefault("upload_targets", SignedUploadLinks(SECRET, clock.now))
    return ImageService(
        repository=repository if repository is not None else MemoryImageRepository(),
        blobs=blobs if blobs is not None else MemoryBlobStore(),
        inspector=PillowInspector(),
        clock=clock,
        ids=ids or CountingIds(),
        cursors=CursorCodec(secret=SECRET, clock=clock),
        max_upload_bytes=max_upload_bytes,
        **more,
    )


def make_image(**changes: Any) -> Image:
    """An ACTIVE private PNG owned by alice; ``changes`` override any field."""
    fields: dict[str, Any] = {
        "image_id": crockford(1),
        "user_id": "alice",
        "filename": "beach.png",
        "content_type": "image/png",
        "size": 100,
        "width": 3,
        "height": 2,
        "sha256": "0" * 64,
        "blob_key": "images/alice/x",
        "created_at": START,
        "updated_at": START,
    }
    fields.update(changes)
    return Image(**fields)


class RecordingJobs:
    """A job queue that keeps the jobs for the test to run, or refuses them when told to."""

    def __init__(self) -> None:
        self.jobs: list[Job] = []
        self.refuse = False

    def enqueue(self, job: Job) -> None:
        if self.refuse:
            raise ConnectionError("the queue is down")
        self.jobs.append(job)


class FakeRenderer:
    """Fails the first ``failures`` times, then makes recognisable renditions (each format's
    bytes name the rendition and the format, then the original's first 8 bytes) of each size
    at its full side by two thirds of it, and PLACEHOLDER; refuses every image for its cost
    while ``too_costly`` is set."""

    PLACEHOLDER = Placeholder("LEHV6nWB2yk8pyo0adR*.7kCMdnj", "#1e6f8a", 1.5)
    CONTENT_TYPES = ("image/webp", "image/jpeg")

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.too_costly = False
        self.calls: list[tuple[RenditionSize, ...]] = []

    def render(self, chunks: Iterable[bytes], sizes: Sequence[RenditionSize]) -> Rendered:
        self.calls.append(tuple(sizes))
        if self.too_costly:
            raise ThumbnailTooCostly("decoding it would take more memory than allowed")
        data = b"".join(chunks)
        if self.failures > 0:
            self.failures -= 1
            raise OSError("cannot decode")
        return Rendered(
            tuple(
                RenderedRendition(
                    size.name,
                    size.max_side,
                    size.max_side * 2 // 3,
                    {
                        kind: f"{size.name}:{kind}:".encode() + data[:8]
                        for kind in self.CONTENT_TYPES
                    },
                )
                for size in sizes
            ),
            self.PLACEHOLDER,
        )
