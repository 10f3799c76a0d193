"""The renderer's single renditions (``thumbnail``, the one-size path the Renderer port's
``render`` shares its decoding with): small, upright, metadata-free pictures; refusals; and a
decode whose memory and time are bounded. Parametrized over the renderers the service has
(today one, on libvips); test_renderer.py covers ``render`` itself."""

from __future__ import annotations

import io
import itertools
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import pyvips
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from adapters.thumbnails import HEAD_BYTES, MIB, VipsRenderer
from imagecore.commands import UploadCommand
from imagecore.errors import ThumbnailTooCostly
from imagecore.model import THUMBNAIL_JOB, Job, ThumbnailStatus
from imagecore.service import ImageService
from tests.support.big_images import interlaced_png_header, uniform_png
from tests.support.doubles import RecordingJobs, make_service
from tests.support.malicious_files import MaliciousFile, malicious_corpus, small_jpeg

FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WEBP"}
OUTPUTS = ["image/jpeg", "image/webp"]
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)

Thumbnailer = VipsRenderer
MakeThumbnailer = Callable[..., Thumbnailer]
THUMBNAILERS: dict[str, MakeThumbnailer] = {"libvips": VipsRenderer}
"""Each takes the keyword arguments max_pixels, memory_budget, time_limit and clock."""


@pytest.fixture(params=sorted(THUMBNAILERS), scope="module")
def make_thumbnailer(request: pytest.FixtureRequest) -> MakeThumbnailer:
    return THUMBNAILERS[request.param]


@pytest.fixture(scope="module")
def thumbnailer(make_thumbnailer: MakeThumbnailer) -> Thumbnailer:
    return make_thumbnailer()


def encode(image: Image.Image, format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def chunked(data: bytes, size: int = 4096) -> Iterator[bytes]:
    """The upload as the blob store streams it."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def thumbnail(
    thumbnailer: Thumbnailer, data: bytes, content_type: str = "image/jpeg", max_side: int = 256
) -> Image.Image:
    out = thumbnailer.thumbnail(chunked(data), max_side, content_type)
    image = Image.open(io.BytesIO(out))
    image.load()
    return image


def close_to(pixel: object, colour: tuple[int, int, int], tolerance: int = 40) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], colour, strict=True))


# --- size ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("source", sorted(FORMATS))
def test_a_big_image_is_scaled_to_a_longest_side_of_256(
    source: str, output: str, thumbnailer: Thumbnailer
) -> None:
    data = encode(Image.new("RGB", (1200, 800), BLUE), FORMATS[source])

    image = thumbnail(thumbnailer, data, output)

    assert image.size == (256, 171)
    assert image.format == FORMATS[output]


def test_a_tall_jpeg_decoded_at_reduced_scale_keeps_its_aspect_ratio(
    thumbnailer: Thumbnailer,
) -> None:
    data = encode(Image.new("RGB", (3000, 6000), GREEN), "JPEG")

    image = thumbnail(thumbnailer, data)

    assert image.size == (128, 256)
    assert close_to(image.getpixel((64, 128)), GREEN)


def test_a_big_jpeg_is_decoded_at_reduced_scale(
    monkeypatch: pytest.MonkeyPatch, thumbnailer: Thumbnailer
) -> None:
    decoded_sizes: list[tuple[int, int]] = []
    load = pyvips.Image.jpegload_source

    def spy(source: pyvips.Source, **options: object) -> pyvips.Image:
        image = load(source, **options)
        decoded_sizes.append((image.width, image.height))
        return image

    monkeypatch.setattr(pyvips.Image, "jpegload_source", spy, raising=False)

    image = thumbnail(thumbnailer, encode(Image.new("RGB", (4000, 3000), GREEN), "JPEG"))

    assert image.size == (256, 192)
    assert decoded_sizes == [(1000, 750)]  # a quarter: the largest scale still 2 x 256 wide


@pytest.mark.parametrize("output", OUTPUTS)
def test_a_small_image_is_not_enlarged(output: str, thumbnailer: Thumbnailer) -> None:
    image = thumbnail(thumbnailer, encode(Image.new("RGB", (100, 40), BLUE), "PNG"), output)

    assert image.size == (100, 40)


@settings(max_examples=25, deadline=None)
@given(
    width=st.integers(1, 1500),
    height=st.integers(1, 1500),
    max_side=st.integers(1, 400),
    source=st.sampled_from(sorted(FORMATS)),
)
def test_the_aspect_ratio_is_kept(
    width: int, height: int, max_side: int, source: str, thumbnailer: Thumbnailer
) -> None:
    data = encode(Image.new("RGB", (width, height), BLUE), FORMATS[source])

    image = thumbnail(thumbnailer, data, "image/webp", max_side)

    scale = min(1, max_side / max(width, height))
    assert max(image.size) == min(max_side, max(width, height))
    assert abs(image.width - width * scale) <= 1
    assert abs(image.height - height * scale) <= 1
    assert min(image.size) >= 1


# --- orientation --------------------------------------------------------------------------------


def oriented(orientation: int, format: str = "PNG") -> bytes:
    """200 x 100 blue, its top-left corner red, stored with the EXIF orientation given."""
    image = Image.new("RGB", (200, 100), BLUE)
    image.paste(RED, (0, 0, 60, 30))
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(image, format, exif=exif)


@pytest.mark.parametrize("format", ["PNG", "JPEG", "WEBP"])
@pytest.mark.parametrize(
    ("orientation", "size", "red_corner"),
    [
        (1, (200, 100), (5, 5)),  # upright already
        (6, (100, 200), (94, 5)),  # shown turned 90 degrees clockwise: top-left goes top-right
        (8, (100, 200), (5, 194)),  # shown turned 90 degrees anticlockwise: to bottom-left
        (3, (200, 100), (194, 94)),  # upside down
        (2, (200, 100), (194, 5)),  # mirrored: top-left goes top-right
        (4, (200, 100), (5, 94)),  # mirrored upside down: to bottom-left
        (5, (100, 200), (5, 5)),  # mirrored along the diagonal through the top-left corner
        (7, (100, 200), (94, 194)),  # mirrored along the other diagonal: to bottom-right
        (99, (200, 100), (5, 5)),  # no such orientation: left alone
    ],
)
def test_the_exif_orientation_is_applied(
    format: str,
    orientation: int,
    size: tuple[int, int],
    red_corner: tuple[int, int],
    thumbnailer: Thumbnailer,
) -> None:
    image = thumbnail(thumbnailer, oriented(orientation, format), "image/webp")

    assert image.size == size
    assert close_to(image.getpixel(red_corner), RED)
    assert close_to(image.getpixel((size[0] // 2, size[1] // 2)), BLUE)


# --- output -------------------------------------------------------------------------------------


@pytest.mark.parametrize("output", OUTPUTS)
def test_the_thumbnail_carries_no_metadata(output: str, thumbnailer: Thumbnailer) -> None:
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"
    exif[0x0112] = 1
    exif.get_ifd(0x8825)[1] = "N"
    icc = b"\0\0\x01\x00fake ICC profile, SecretProfile" + b"\0" * 200
    data = encode(
        Image.new("RGB", (600, 400), BLUE),
        "JPEG",
        exif=exif,
        icc_profile=icc,
        comment=b"SecretComment",
        xmp=b"<x:xmpmeta>SecretXMP</x:xmpmeta>",
    )
    with Image.open(io.BytesIO(data)) as source:
        assert {"exif", "icc_profile", "comment", "xmp"} <= set(source.info)

    out = thumbnailer.thumbnail(chunked(data), 256, output)

    with Image.open(io.BytesIO(out)) as image:
        assert not {"exif", "icc_profile", "comment", "xmp"} & set(image.info)
        assert not image.getexif()
    for secret in (b"Exif", b"ICC_PROFILE", b"ICCP", b"XMP", b"Secret", b"ns.adobe.com"):
        assert secret not in out


def test_alpha_is_kept_in_webp_and_white_in_jpeg(thumbnailer: Thumbnailer) -> None:
    image = Image.new("RGBA", (400, 200), (*RED, 255))
    image.paste((0, 0, 0, 0), (200, 0, 400, 200))  # the right half fully transparent
    data = encode(image, "PNG")

    webp = thumbnail(thumbnailer, data, "image/webp")
    jpeg = thumbnail(thumbnailer, data, "image/jpeg")

    assert webp.mode == "RGBA"
    assert webp.getpixel((60, 60))[3] == 255  # type: ignore[index]
    assert webp.getpixel((200, 60))[3] == 0  # type: ignore[index]
    assert jpeg.mode == "RGB"
    assert close_to(jpeg.getpixel((60, 60)), RED)
    assert close_to(jpeg.getpixel((200, 60)), (255, 255, 255))


def test_a_palette_image_with_transparency_keeps_it(thumbnailer: Thumbnailer) -> None:
    image = Image.new("P", (300, 300), 0)
    image.putpalette([*RED, *GREEN])
    image.paste(1, (150, 0, 300, 300))
    data = encode(image, "PNG", transparency=1)

    webp = thumbnail(thumbnailer, data, "image/webp")

    assert webp.getpixel((10, 10))[3] == 255  # type: ignore[index]
    assert webp.getpixel((250, 10))[3] == 0  # type: ignore[index]


@pytest.mark.parametrize(
    ("mode", "format"),
    [("L", "JPEG"), ("CMYK", "JPEG"), ("I;16", "PNG"), ("1", "PNG"), ("LA", "PNG"), ("L", "GIF")],
)
def test_unusual_modes_are_thumbnailed(mode: str, format: str, thumbnailer: Thumbnailer) -> None:
    data = encode(Image.new(mode, (500, 300)), format)

    for output in OUTPUTS:
        assert thumbnail(thumbnailer, data, output).size == (256, 154)


@pytest.mark.parametrize("format", ["GIF", "WEBP"])
def test_an_animation_gives_its_first_frame(format: str, thumbnailer: Thumbnailer) -> None:
    frames = [Image.new("RGB", (300, 300), colour) for colour in (RED, GREEN, BLUE)]
    data = encode(frames[0], format, save_all=True, append_images=frames[1:], duration=100)
    with Image.open(io.BytesIO(data)) as animation:
        assert getattr(animation, "n_frames", 1) == 3

    image = thumbnail(thumbnailer, data, "image/jpeg")

    assert image.size == (256, 256)
    assert close_to(image.getpixel((128, 128)), RED)


def test_an_upload_bigger_than_its_header_read_is_thumbnailed(thumbnailer: Thumbnailer) -> None:
    # Trailing bytes after a JPEG's end are ignored by decoders: a cheap way to be big.
    data = small_jpeg() + b"\0" * (HEAD_BYTES + 1)

    assert thumbnail(thumbnailer, data).size == (48, 32)


# --- refusals -----------------------------------------------------------------------------------


def test_an_image_over_max_pixels_is_refused(make_thumbnailer: MakeThumbnailer) -> None:
    data = encode(Image.new("RGB", (200, 100), BLUE), "PNG")

    with pytest.raises(ThumbnailTooCostly, match="200 x 100"):
        make_thumbnailer(max_pixels=19_999).thumbnail(chunked(data), 256, "image/jpeg")
    assert make_thumbnailer(max_pixels=20_000).thumbnail(chunked(data), 256, "image/jpeg")


def too_many_pixels() -> list[MaliciousFile]:
    return [file for file in malicious_corpus() if file.expected == "too_many_pixels"]


@pytest.mark.parametrize("file", too_many_pixels(), ids=lambda file: file.name)
def test_a_decompression_bomb_is_refused_before_decoding(
    file: MaliciousFile, thumbnailer: Thumbnailer
) -> None:
    with pytest.raises(ThumbnailTooCostly, match="pixels"):
        thumbnailer.thumbnail(chunked(file.data), 256, "image/jpeg")


def accepted() -> list[MaliciousFile]:
    return [file for file in malicious_corpus() if file.expected == "accepted"]


@pytest.mark.parametrize("file", accepted(), ids=lambda file: file.name)
def test_an_odd_but_accepted_file_is_thumbnailed(
    file: MaliciousFile, thumbnailer: Thumbnailer
) -> None:
    image = thumbnail(thumbnailer, file.data)

    turned = file.exif.get("orientation") in (5, 6, 7, 8)
    size = (file.height, file.width) if turned else (file.width, file.height)
    assert image.size == size  # all are under 256 pixels


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"garbage, not an image at all", id="garbage"),
        pytest.param(encode(Image.new("RGB", (50, 50)), "BMP"), id="bmp"),
        pytest.param(encode(Image.new("RGB", (50, 50)), "TIFF"), id="tiff"),
    ],
)
def test_what_is_no_accepted_image_raises(data: bytes, thumbnailer: Thumbnailer) -> None:
    with pytest.raises(ValueError, match="not a JPEG, PNG, GIF, WebP, HEIC or AVIF"):
        thumbnailer.thumbnail(chunked(data), 256, "image/jpeg")


def test_a_cut_off_image_raises(thumbnailer: Thumbnailer) -> None:
    data = encode(Image.new("RGB", (500, 500), BLUE), "PNG")

    with pytest.raises(pyvips.Error, match=r"read error|truncated"):
        thumbnailer.thumbnail(chunked(data[: len(data) // 2]), 256, "image/jpeg")


@pytest.mark.parametrize(
    ("content_type", "max_side"), [("image/png", 256), ("image/gif", 256), ("image/jpeg", 0)]
)
def test_an_unknown_output_or_no_size_is_refused(
    content_type: str, max_side: int, thumbnailer: Thumbnailer
) -> None:
    with pytest.raises(ValueError, match=r"content_type|image/|side"):
        thumbnailer.thumbnail([small_jpeg()], max_side, content_type)


def test_an_error_of_the_upload_stream_propagates(thumbnailer: Thumbnailer) -> None:
    def failing() -> Iterator[bytes]:
        yield small_jpeg()[:100]
        raise ConnectionError("the blob store went away")

    with pytest.raises(ConnectionError):
        thumbnailer.thumbnail(failing(), 256, "image/jpeg")


# --- bounded memory and time --------------------------------------------------------------------

# The peak is VmHWM rather than ru_maxrss: Linux carries ru_maxrss over fork and exec, so a
# child of a big test process would start at its parent's peak and hide its own.
MEASURE_PEAK = """
import sys
from entrypoints.container import build_container
from entrypoints.settings import Settings
from imagecore.thumbnails import rendition_sizes

def peak_kib():
    status = open("/proc/self/status").read().splitlines()
    return int(next(line for line in status if line.startswith("VmHWM:")).split()[1])

data = open(sys.argv[1], "rb").read()
settings = Settings(backend="memory")
renderer = build_container(settings).renderer()
before = peak_kib()
chunks = (data[start : start + 65536] for start in range(0, len(data), 65536))
rendered = renderer.render(chunks, rendition_sizes(settings.thumbnail_side, settings.preview_side))
made = sum(len(data) for made in rendered.renditions for data in made.encodings.values())
print(made, (peak_kib() - before) // 1024)
"""


def test_a_100_megapixel_png_grows_the_peak_memory_by_less_than_256_mib(tmp_path: Path) -> None:
    """The pixel bomb of the hardening issue, through the renderer the service is wired with,
    every rendition of it, in a process of its own so that its peak RSS is this image's alone."""
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(uniform_png(10_000, 10_000))
    assert bomb.stat().st_size < 512 * 1024

    done = subprocess.run(
        [sys.executable, "-c", MEASURE_PEAK, str(bomb)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    thumbnail_bytes, growth_mib = map(int, done.stdout.split())
    assert thumbnail_bytes > 0
    assert growth_mib < 256


def test_an_image_whose_decoding_would_exceed_the_memory_budget_is_refused_from_its_header(
    make_thumbnailer: MakeThumbnailer,
) -> None:
    # Interlaced, it must be decoded whole: 8000 x 8000 RGBA is 244 MiB before any copy. Its
    # pixel data is junk, so only a refusal from the header can end in ThumbnailTooCostly.
    data = interlaced_png_header(8_000, 8_000)

    with pytest.raises(ThumbnailTooCostly, match=r"about \d+ MiB, more than the 256 MiB"):
        make_thumbnailer(memory_budget=256 * MIB).thumbnail(chunked(data), 256, "image/webp")


@pytest.mark.parametrize(
    ("format", "options", "refused"),
    [
        ("JPEG", {"progressive": True}, True),
        ("JPEG", {}, False),
        ("WEBP", {"lossless": True}, True),
        ("WEBP", {}, False),
    ],
    ids=["progressive-jpeg", "baseline-jpeg", "lossless-webp", "lossy-webp"],
)
def test_what_is_decoded_whole_counts_whole_and_what_is_streamed_or_scaled_does_not(
    make_thumbnailer: MakeThumbnailer, format: str, options: dict[str, bool], refused: bool
) -> None:
    # libjpeg keeps every coefficient of a progressive JPEG (2000 x 2000 x 1.5 x 2 bytes), and
    # libwebp decodes a lossless WebP at full scale (x 4 bytes); a baseline JPEG is streamed
    # at 1/4 scale, a lossy WebP decoded at the thumbnail's scale.
    data = encode(Image.new("RGB", (2000, 2000), GREEN), format, **options)
    thumbnailer = make_thumbnailer(memory_budget=24 * MIB)

    if refused:
        with pytest.raises(ThumbnailTooCostly, match="MiB"):
            thumbnailer.thumbnail(chunked(data), 256, "image/webp")
    else:
        assert thumbnail(thumbnailer, data, "image/webp").size == (256, 256)


def test_a_gif_bigger_than_the_budget_is_refused_while_it_is_read(
    make_thumbnailer: MakeThumbnailer,
) -> None:
    frame = Image.effect_noise((1200, 1200), 80).convert("P")  # noise: the file stays big
    data = encode(frame, "GIF")
    assert len(data) > MIB
    read: list[int] = []

    def counted() -> Iterator[bytes]:
        for chunk in chunked(data, 64 * 1024):
            read.append(len(chunk))
            yield chunk

    with pytest.raises(ThumbnailTooCostly, match="file alone"):
        make_thumbnailer(memory_budget=MIB // 2).thumbnail(counted(), 256, "image/webp")
    assert sum(read) < len(data)


def test_a_thumbnail_past_its_time_limit_is_stopped(make_thumbnailer: MakeThumbnailer) -> None:
    ticks = itertools.count()  # a clock a second later at every look

    thumbnailer = make_thumbnailer(time_limit=0.5, clock=lambda: float(next(ticks)))

    with pytest.raises(ThumbnailTooCostly, match=r"took more than 0.5 s"):
        thumbnailer.thumbnail(chunked(uniform_png(2_000, 2_000)), 256, "image/webp")


def test_the_time_limit_stops_the_decoding_itself_once_every_byte_is_read(
    make_thumbnailer: MakeThumbnailer,
) -> None:
    """Past the last read, only libvips' own progress can tell that the time is up."""
    drained = False

    def upload() -> Iterator[bytes]:
        nonlocal drained
        yield from chunked(uniform_png(4_000, 4_000, rows=4_000))
        drained = True

    thumbnailer = make_thumbnailer(time_limit=10, clock=lambda: 100.0 if drained else 0.0)

    with pytest.raises(ThumbnailTooCostly, match="took more than 10 s"):
        thumbnailer.thumbnail(upload(), 256, "image/webp")


def test_within_its_limits_the_same_image_is_thumbnailed(
    make_thumbnailer: MakeThumbnailer,
) -> None:
    thumbnailer = make_thumbnailer(memory_budget=64 * MIB, time_limit=60)

    assert thumbnail(thumbnailer, uniform_png(4_000, 4_000)).size == (256, 256)


# --- through the thumbnail job ------------------------------------------------------------------


def service_with(thumbnailer: Thumbnailer) -> ImageService:
    return make_service(jobs=RecordingJobs(), renderer=thumbnailer)


def test_a_job_over_its_time_limit_is_stopped_and_its_thumbnail_fails_at_once(
    make_thumbnailer: MakeThumbnailer,
) -> None:
    service = service_with(make_thumbnailer(time_limit=1e-9))
    image = service.store_upload("alice", UploadCommand(chunks=[uniform_png(2_000, 2_000)])).image

    status = service.run_job(Job(THUMBNAIL_JOB, image.image_id, "alice"), final_attempt=False)

    assert status is ThumbnailStatus.FAILED
    assert service.get("alice", image.image_id).thumbnail_status is ThumbnailStatus.FAILED


def test_an_image_over_the_memory_budget_fails_at_once_without_being_decoded(
    make_thumbnailer: MakeThumbnailer,
) -> None:
    service = service_with(make_thumbnailer())
    data = interlaced_png_header(8_000, 8_000)
    image = service.store_upload("alice", UploadCommand(chunks=[data])).image

    # Not the final attempt: a decoding error (the pixel data is junk) would raise, to be
    # tried again. Only the refusal from the header settles it now.
    status = service.run_job(Job(THUMBNAIL_JOB, image.image_id, "alice"), final_attempt=False)

    assert status is ThumbnailStatus.FAILED
