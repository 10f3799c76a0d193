"""Thumbnails with libvips (pyvips): the one place where pixels are decoded.

libvips decodes JPEG, PNG and WebP as a stream, a few rows at a time, and JPEG and WebP at a
reduced scale where the thumbnail allows it, so a 100-megapixel photograph costs tens of MiB
instead of the whole bitmap. What it must hold whole (a progressive JPEG's coefficients, an
interlaced PNG, a GIF frame, an animated WebP's canvas, the bytes of a GIF or WebP file) is
estimated from the header first and refused above a memory budget, before a pixel is decoded.
The figures behind the estimates are in bench/thumbnail_decoders.py and docs/benchmarks.md.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import blurhash
import pyvips

from adapters.heif_decode import (
    AV1_CONTENT_TYPES,
    HEVC_CONTENT_TYPES,
    decode_heic,
    heif_decode_bytes,
    load_avif,
)
from adapters.heif_header import read_heif_header
from adapters.pillow import PillowInspector
from imagecore.errors import ThumbnailTooCostly
from imagecore.model import (
    RENDITION_CONTENT_TYPES,
    ImageFacts,
    Placeholder,
    Rendered,
    RenderedRendition,
    RenditionSize,
)
from imagecore.thumbnails import DEFAULT_THUMBNAIL_TIMEOUT_SECONDS

JPEG_QUALITY = 85
WEBP_QUALITY = 80
AVIF_QUALITY = 50
AVIF_EFFORT = 2
"""libaom's speed against size, 0 to 9: 2 encodes a 1440-pixel preview in ~0.4 s on one core
of this machine, 4 (the default) in ~1.5 s for a few percent fewer bytes (bench/renditions.py)."""

PLACEHOLDER_SIDE = 32
"""The placeholder is computed from the image scaled to this: a blurhash of 4 x 3 components
keeps nothing finer, and the blurhash library is Python, a few ms for 32 x 24 pixels."""
BLURHASH_COMPONENTS = (4, 3)

MIB = 1024 * 1024
DEFAULT_MEMORY_BUDGET = 256 * MIB
"""What one thumbnail may hold to decode, by the estimate below."""

HEAD_BYTES = 1024 * 1024
"""How much of the image is read for its header: as much as an upload's inspection reads, so
the size and EXIF orientation seen here are those the upload was accepted with."""

_LOADERS = {
    "image/jpeg": "jpegload_source",
    "image/png": "pngload_source",
    "image/gif": "gifload_source",
    "image/webp": "webpload_source",
}
_HEIF_TYPES = HEVC_CONTENT_TYPES | AV1_CONTENT_TYPES
_WHOLE_FILE_FORMATS = {"image/gif", "image/webp"}
"""libvips reads these whole into memory before decoding (libnsgif and libwebp's demuxer)."""

_OUTPUT_FORMATS = {"image/jpeg": ".jpg", "image/webp": ".webp", "image/avif": ".avif"}

# What each EXIF orientation (2 to 8) asks for to show the image upright.
_UPRIGHT: dict[int, Callable[[pyvips.Image], pyvips.Image]] = {
    2: lambda image: image.fliphor(),
    3: lambda image: image.rot180(),
    4: lambda image: image.flipver(),
    5: lambda image: image.rot90().fliphor(),
    6: lambda image: image.rot90(),
    7: lambda image: image.rot270().fliphor(),
    8: lambda image: image.rot270(),
}

# Decode memory, in bytes per pixel of what is held whole, measured (bench/thumbnail_decoders.py)
# and rounded up: the decoded bitmap and the copies libvips makes of it on the way.
_WHOLE_BITMAP_COPIES = 2.0
_INTERLACED_PNG_COPIES = 2.25  # libpng's deinterlaced rows, and libvips' copy of them
_GIF_BYTES_PER_PIXEL = 7.0  # libnsgif's RGBA frame, and the canvas libvips composes it on
_LIBVIPS_BYTES = 16 * MIB  # what any decode holds besides: buffers, a thread, its stack
_JPEG_COEFFICIENT_BYTES = 2  # libjpeg keeps every DCT coefficient of a progressive JPEG
_STREAM_ROWS_IN_FLIGHT = 2.0  # a streamed decode holds about twice the rows one output row needs
_STREAM_SLACK_ROWS = 1400  # and the caches of libvips' streamed pipeline besides


class _TimeUp(Exception):
    """The deadline passed while the image was being read."""


class _OverBudget(Exception):
    """A whole-file format's bytes alone exceed the memory budget."""


@functools.cache
def _configure_libvips() -> None:
    """Once per process: no operation cache (each thumbnail is made once, and a cached
    operation would keep its image and source alive), one worker thread per pipeline (the job
    queue's threads are the parallelism; more only multiplies the buffers), and no loader that
    libvips itself marks as unfit for untrusted input."""
    pyvips.cache_set_max(0)
    pyvips.cache_set_max_mem(0)
    pyvips.cache_set_max_files(0)
    pyvips.concurrency_set(1)
    pyvips.block_untrusted_set(True)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, where the C library is glibc."""
    library = ctypes.CDLL(ctypes.util.find_library("c") or None)
    trim: Callable[[int], int] | None = getattr(library, "malloc_trim", None)
    return trim


@contextlib.contextmanager
def _memory_given_back() -> Iterator[None]:
    """Hands what the thumbnail freed back to the system. glibc keeps freed memory in the arena
    of the thread that freed it, and libvips' threads use many arenas: without this, the
    server's RSS settles at several times one thumbnail's peak (measured: +340 MiB after 20
    100-megapixel PNGs on two job threads; +6 MiB with it)."""
    try:
        yield
    finally:
        trim = _malloc_trim()
        if trim is not None:
            trim(0)


@functools.cache
def encodable_types() -> tuple[str, ...]:
    """The rendition formats this libvips encodes, best first: AVIF needs libheif built with
    an AV1 encoder (the pyvips-binary wheel has one)."""
    return tuple(
        content_type
        for content_type in RENDITION_CONTENT_TYPES
        if _OUTPUT_FORMATS[content_type] in pyvips.get_suffixes()
    )


class VipsRenderer:
    """The :class:`imagecore.ports.Renderer` for JPEG, PNG, GIF and WebP uploads.

    ``max_pixels`` is the largest width x height it decodes (the upload limit, checked again
    for what reaches it by another path); ``memory_budget`` the bytes one decode may hold by
    the estimate; ``time_limit`` the seconds one thumbnail may take, from its first byte read
    to its last byte encoded. ``clock`` is for tests.
    """

    def __init__(
        self,
        max_pixels: int = 100_000_000,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        time_limit: float = DEFAULT_THUMBNAIL_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _configure_libvips()
        self._max_pixels = max_pixels
        self._memory_budget = memory_budget
        self._time_limit = time_limit
        self._clock = clock
        self._inspector = PillowInspector()

    def render(self, chunks: Iterable[bytes], sizes: Sequence[RenditionSize]) -> Rendered:
        """Every rendition from one decode: the image is decoded (shrunk on load where the
        format allows) to the largest size, turned upright and held in memory once; each
        smaller one is scaled from that; each is encoded in every format of
        ``encodable_types()``; and the placeholder is computed from the smallest. Bounded and
        refused as ``thumbnail`` is, the deadline counting the whole set."""
        if not sizes or min(size.max_side for size in sizes) < 1:
            raise ValueError("renditions need at least one size, each of at least 1 pixel")
        largest = max(size.max_side for size in sizes)
        stream = _ChunkSource(chunks, self._clock() + self._time_limit, self._clock)
        with _memory_given_back(), stream.errors_translated(self._time_limit, self._memory_budget):
            facts = self._checked_facts(stream)
            image = self._decoded(stream, facts, largest)
            base = _scaled_upright(image, largest, facts.orientation).copy_memory()
            made: dict[str, RenderedRendition] = {}
            for size in sorted(sizes, key=lambda size: -size.max_side):
                picture = _scaled_upright(base, size.max_side, None)
                encodings = {
                    content_type: _encode(
                        _displayable(picture, content_type),
                        _OUTPUT_FORMATS[content_type],
                        stream.late,
                    )
                    for content_type in encodable_types()
                }
                made[size.name] = RenderedRendition(
                    size.name, picture.width, picture.height, encodings
                )
            placeholder = _placeholder(picture, base.width / base.height)  # the smallest
            return Rendered(tuple(made[size.name] for size in sizes), placeholder)

    def _checked_facts(self, stream: _ChunkSource) -> ImageFacts:
        facts = self._inspector.inspect(stream.head(HEAD_BYTES))
        if facts is None:
            raise ValueError("not a JPEG, PNG, GIF, WebP, HEIC or AVIF image")
        if facts.pixels > self._max_pixels:
            raise ThumbnailTooCostly(
                f"{facts.width} x {facts.height} is more than the {self._max_pixels} "
                "pixels a thumbnail is made from"
            )
        if facts.content_type in _WHOLE_FILE_FORMATS:
            stream.max_bytes = self._memory_budget
        return facts

    def thumbnail(self, chunks: Iterable[bytes], max_side: int, content_type: str) -> bytes:
        """The image in ``chunks`` scaled to fit ``max_side`` x ``max_side`` (aspect ratio kept,
        never enlarged), turned upright as its EXIF orientation says, encoded as
        ``content_type`` (image/jpeg: sRGB, transparency over white; image/webp: alpha kept)
        with no metadata at all. Only the first frame of an animation is used.

        Raises ValueError for an unknown ``content_type``, a ``max_side`` below 1 or bytes
        that are not a JPEG, PNG, GIF or WebP; ThumbnailTooCostly for an image of more than
        ``max_pixels`` pixels or whose decoding is estimated to hold more than
        ``memory_budget`` bytes (both before decoding), and for one that takes longer than
        ``time_limit`` (stopped then); whatever ``chunks`` raises propagates; pyvips.Error
        for an image libvips cannot decode (cut off, corrupt).
        """
        suffix = _OUTPUT_FORMATS.get(content_type)
        if suffix is None:
            raise ValueError(f"cannot encode a thumbnail as {content_type!r}")
        if max_side < 1:
            raise ValueError(f"a thumbnail's side must be at least 1 pixel, not {max_side}")
        stream = _ChunkSource(chunks, self._clock() + self._time_limit, self._clock)
        with _memory_given_back(), stream.errors_translated(self._time_limit, self._memory_budget):
            facts = self._checked_facts(stream)
            image = self._decoded(stream, facts, max_side)
            picture = _scaled_upright(image, max_side, facts.orientation)
            return _encode(_displayable(picture, content_type), suffix, stream.late)

    def _decoded(self, stream: _ChunkSource, facts: ImageFacts, max_side: int) -> pyvips.Image:
        """The image, loaded as small as ``max_side`` allows, once its decoding is estimated to
        fit the memory budget (refused before any pixel is decoded otherwise)."""
        if facts.content_type not in _HEIF_TYPES:
            image = _load(stream.source, facts, max_side)
            self._check_memory(image, facts, max_side, stream)
            return image
        header = read_heif_header(stream.first_bytes)
        if header is None:
            raise ValueError("a HEIF image whose header cannot be read")
        held = _LIBVIPS_BYTES + heif_decode_bytes(header, 0)
        if held > self._memory_budget:
            raise ThumbnailTooCostly(
                f"decoding this {facts.width} x {facts.height} {facts.content_type} would take "
                f"about {held / MIB:.0f} MiB, more than the {self._memory_budget / MIB:.0f} MiB "
                "a thumbnail may use"
            )
        stream.max_bytes = self._memory_budget - held  # libheif holds the whole file too
        if facts.content_type in HEVC_CONTENT_TYPES:
            return decode_heic(stream.read_all())
        return load_avif(stream.source, access="sequential", fail_on="error")

    def _check_memory(
        self, image: pyvips.Image, facts: ImageFacts, max_side: int, stream: _ChunkSource
    ) -> None:
        held = _LIBVIPS_BYTES + _decode_bytes(image, facts, stream.first_bytes, max_side)
        if facts.content_type in _WHOLE_FILE_FORMATS:
            held += stream.bytes_read  # the loader has read the whole file by now
        if held > self._memory_budget:
            raise ThumbnailTooCostly(
                f"decoding this {facts.width} x {facts.height} {facts.content_type} would take "
                f"about {held / MIB:.0f} MiB, more than the {self._memory_budget / MIB:.0f} MiB "
                "a thumbnail may use"
            )


def _load(source: pyvips.Source, facts: ImageFacts, max_side: int) -> pyvips.Image:
    """The image's header, from the loader of its format (never another one libvips would
    choose by sniffing), set to decode sequentially and as small as the thumbnail allows."""
    options: dict[str, Any] = {"access": "sequential", "fail_on": "error"}
    factor = max(facts.width, facts.height) / max_side
    shortest = min(facts.width, facts.height)  # no side may shrink to nothing
    if facts.content_type == "image/jpeg":
        options["shrink"] = _jpeg_shrink(factor, shortest)
    elif facts.content_type == "image/webp" and factor > 2:
        # libwebp scales while decoding; still twice the target, for the final reduce.
        options["scale"] = max(2 / factor, 1 / shortest)
    loader = getattr(pyvips.Image, _LOADERS[facts.content_type])
    image: pyvips.Image = loader(source, **options)
    return image


def _jpeg_shrink(factor: float, shortest: int) -> int:
    """libjpeg decodes at 1/2, 1/4 or 1/8 scale: the largest that leaves the image at least
    twice the thumbnail, so the final reduce still has pixels to average, and its shortest
    side at least a pixel."""
    for shrink in (8, 4, 2):
        if factor >= 2 * shrink and shortest >= shrink:
            return shrink
    return 1


def _decode_bytes(image: pyvips.Image, facts: ImageFacts, head: bytes, max_side: int) -> int:
    """The bytes decoding ``image`` (a header, as loaded, whose file starts with ``head``)
    will hold at its peak beyond what any decode holds, estimated."""
    width, height = int(image.width), int(image.height)
    pixel_bytes = image.bands * (2 if image.format in ("ushort", "short") else 1)
    interlaced = _field(image, "interlaced") == 1
    pages = _field(image, "n-pages") or 1
    if facts.content_type == "image/jpeg" and interlaced:
        subsampled = _field(image, "jpeg-chroma-subsample") == "4:2:0"
        samples = 1 + (image.bands - 1) / 4 if subsampled else image.bands
        # The coefficients are of the full image, whatever scale it is decoded at.
        return int(facts.width * facts.height * samples * _JPEG_COEFFICIENT_BYTES)
    if facts.content_type == "image/png" and interlaced:
        return int(width * height * pixel_bytes * _INTERLACED_PNG_COPIES)
    if facts.content_type == "image/gif":
        return int(width * height * _GIF_BYTES_PER_PIXEL)
    if facts.content_type == "image/webp" and pages > 1:
        return int(width * height * 4 * _WHOLE_BITMAP_COPIES)
    if facts.content_type == "image/webp" and _is_lossless_webp(head):
        return facts.width * facts.height * 4  # libwebp decodes lossless at full scale first
    if facts.content_type == "image/webp":
        return width * height * 4  # decoded whole, at the reduced scale
    # Streamed: the rows that make one output row, for each of the rows in flight.
    rows_per_output_row = math.ceil(max(width, height) / max_side)
    rows = min(height, _STREAM_ROWS_IN_FLIGHT * rows_per_output_row + _STREAM_SLACK_ROWS)
    return int(width * pixel_bytes * rows)


def _is_lossless_webp(head: bytes) -> bool:
    """Whether the first image chunk of the WebP file starting with ``head`` is lossless
    (VP8L) rather than lossy (VP8): the RIFF chunks are walked from the first one."""
    position = 12  # "RIFF", its size, "WEBP"
    while position + 8 <= len(head):
        fourcc = head[position : position + 4]
        if fourcc in (b"VP8L", b"VP8 "):
            return fourcc == b"VP8L"
        size = int.from_bytes(head[position + 4 : position + 8], "little")
        position += 8 + size + (size & 1)
    return True  # not in the head: assume the dearer


def _field(image: pyvips.Image, name: str) -> Any:
    return image.get(name) if image.get_typeof(name) else None


def _scaled_upright(image: pyvips.Image, max_side: int, orientation: int | None) -> Any:
    """The image scaled to fit ``max_side`` (never enlarged) and turned upright."""
    scaled = image.thumbnail_image(max_side, height=max_side, size="down", no_rotate=True)
    return _UPRIGHT.get(orientation or 1, lambda picture: picture)(scaled)


def _displayable(picture: pyvips.Image, content_type: str) -> Any:
    """The picture as 8-bit sRGB, for JPEG (which has no transparency) over white."""
    if content_type == "image/jpeg" and picture.hasalpha():
        picture = picture.flatten(background=[255] * (picture.bands - 1))
    return picture.colourspace("srgb").cast("uchar")


def _placeholder(picture: pyvips.Image, aspect_ratio: float) -> Placeholder:
    """The blurhash and the dominant colour of the picture as shown over white."""
    small = _displayable(_scaled_upright(picture, PLACEHOLDER_SIDE, None), "image/jpeg")
    rgb = small[:3] if small.bands >= 3 else small.bandjoin([small, small])
    pixels = bytes(rgb.write_to_memory())
    width = int(rgb.width)
    rows = [
        [list(pixels[offset : offset + 3]) for offset in range(start, start + 3 * width, 3)]
        for start in range(0, len(pixels), 3 * width)
    ]
    return Placeholder(
        blurhash=blurhash.encode(rows, *BLURHASH_COMPONENTS),
        dominant_color=_dominant_color(pixels),
        aspect_ratio=round(aspect_ratio, 4),
    )


def _dominant_color(pixels: bytes) -> str:
    """The mean of the most common colour, colours counted in 4,096 bins (4 bits a channel):
    the colour most of the image is, where a mean of all would be a grey no pixel has."""
    bins: dict[int, list[int]] = {}
    for offset in range(0, len(pixels) - 2, 3):
        red, green, blue = pixels[offset], pixels[offset + 1], pixels[offset + 2]
        kept = bins.setdefault((red >> 4) << 8 | (green >> 4) << 4 | blue >> 4, [0, 0, 0, 0])
        kept[0] += red
        kept[1] += green
        kept[2] += blue
        kept[3] += 1
    red, green, blue, count = max(bins.values(), key=lambda kept: kept[3])
    return f"#{red // count:02x}{green // count:02x}{blue // count:02x}"


def _encode(picture: pyvips.Image, suffix: str, late: Callable[[], bool]) -> bytes:
    """The encoded thumbnail, without metadata; libvips stops computing it once ``late``."""

    def on_eval(image: pyvips.Image, _progress: object) -> None:
        if late():
            image.set_kill(True)

    picture.set_progress(True)
    picture.signal_connect("eval", on_eval)
    if suffix == ".jpg":
        data = picture.write_to_buffer(
            suffix, Q=JPEG_QUALITY, optimize_coding=True, keep="none", subsample_mode="on"
        )
    elif suffix == ".avif":
        data = picture.write_to_buffer(suffix, Q=AVIF_QUALITY, effort=AVIF_EFFORT, keep="none")
    else:
        data = picture.write_to_buffer(suffix, Q=WEBP_QUALITY, keep="none")
    if late():  # killed: libvips may still hand back what it had
        raise _TimeUp
    return bytes(data)


class _ChunkSource:
    """A libvips source that reads the upload as the blob store streams it: no spooling, and
    a read that blocks on a slow store still checks the deadline."""

    def __init__(
        self, chunks: Iterable[bytes], deadline: float, clock: Callable[[], float]
    ) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._pending = memoryview(b"")
        self._deadline = deadline
        self._clock = clock
        self._drained = False
        self.first_bytes = b""
        self.bytes_read = 0
        self.max_bytes: int | None = None
        self.error: BaseException | None = None
        self.source = pyvips.SourceCustom()
        self.source.signal_connect("read", self._read)

    def head(self, size: int) -> bytes:
        """The first ``size`` bytes (fewer if the image is smaller), kept to be read again."""
        parts: list[bytes] = []
        total = 0
        while total < size:
            chunk = self._next_chunk()
            if chunk is None:
                break
            parts.append(chunk)
            total += len(chunk)
        head = b"".join(parts)
        self._pending = memoryview(head)
        self.first_bytes = head[:size]
        return self.first_bytes

    def _next_chunk(self) -> bytes | None:
        """The next chunk of the upload, None once there are no more; waiting for one (a slow
        store) is where a read spends its time, so the deadline is checked here."""
        if self._drained:
            return None
        if self._clock() > self._deadline:
            raise _TimeUp
        chunk = next(self._chunks, None)
        self._drained = chunk is None
        return chunk

    def _read(self, buffer: Any) -> int:
        """libvips' read callback: up to len(buffer) bytes, 0 at the end, -1 for an error
        (kept in ``error``: an exception cannot cross libvips)."""
        try:
            while not self._pending:
                chunk = self._next_chunk()
                if chunk is None:
                    return 0
                self._pending = memoryview(chunk)
            count = min(len(buffer), len(self._pending))
            if self.max_bytes is not None and self.bytes_read + count > self.max_bytes:
                raise _OverBudget
            buffer[:count] = self._pending[:count]
            self._pending = self._pending[count:]
            self.bytes_read += count
            return count
        except Exception as error:
            self.error = error
            return -1

    def read_all(self) -> bytes:
        """The whole file, for a decoder that cannot read a stream; _OverBudget past
        ``max_bytes``."""
        parts: list[bytes] = []
        buffer = bytearray(1024 * 1024)
        while count := self._read(buffer):
            if count < 0:
                raise self.error or _OverBudget()  # _read keeps what stopped it
            parts.append(bytes(buffer[:count]))
        return b"".join(parts)

    def late(self) -> bool:
        return self._clock() > self._deadline

    @contextlib.contextmanager
    def errors_translated(self, time_limit: float, memory_budget: int) -> Iterator[None]:
        """Turns what stopped libvips into the error the port promises: the chunks' own
        error, or ThumbnailTooCostly for the deadline (however libvips noticed it: a read, or
        its computation killed) or the budget."""
        try:
            yield
        except (pyvips.Error, _TimeUp, _OverBudget) as error:
            cause = self.error if isinstance(error, pyvips.Error) else error
            if isinstance(cause, _TimeUp) or self.late():
                raise ThumbnailTooCostly(
                    f"making the thumbnail took more than {time_limit:g} s"
                ) from None
            if isinstance(cause, _OverBudget):
                raise ThumbnailTooCostly(
                    f"the file alone is more than the {memory_budget / MIB:.0f} MiB "
                    "a thumbnail may use"
                ) from None
            if cause is not None:
                raise cause from error
            raise
