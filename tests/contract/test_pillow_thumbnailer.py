"""PillowThumbnailer: small, upright, metadata-free pictures, and refusals."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, JpegImagePlugin, UnidentifiedImageError

from adapters.thumbnails import SPOOL_IN_MEMORY, PillowThumbnailer
from tests.support.malicious_files import MaliciousFile, malicious_corpus, small_jpeg

FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WEBP"}
OUTPUTS = ["image/jpeg", "image/webp"]
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)

THUMBNAILER = PillowThumbnailer()


def encode(image: Image.Image, format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def chunked(data: bytes, size: int = 4096) -> Iterator[bytes]:
    """The upload as the blob store streams it."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def thumbnail(data: bytes, content_type: str = "image/jpeg", max_side: int = 256) -> Image.Image:
    out = THUMBNAILER.thumbnail(chunked(data), max_side, content_type)
    image = Image.open(io.BytesIO(out))
    image.load()
    return image


def close_to(pixel: object, colour: tuple[int, int, int], tolerance: int = 40) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], colour, strict=True))


# --- size ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("source", sorted(FORMATS))
def test_a_big_image_is_scaled_to_a_longest_side_of_256(source: str, output: str) -> None:
    data = encode(Image.new("RGB", (1200, 800), BLUE), FORMATS[source])

    image = thumbnail(data, output)

    assert image.size == (256, 171)
    assert image.format == FORMATS[output]


def test_a_tall_jpeg_decoded_at_reduced_scale_keeps_its_aspect_ratio() -> None:
    data = encode(Image.new("RGB", (3000, 6000), GREEN), "JPEG")

    image = thumbnail(data)

    assert image.size == (128, 256)
    assert close_to(image.getpixel((64, 128)), GREEN)


def test_a_big_jpeg_is_decoded_at_reduced_scale(monkeypatch: pytest.MonkeyPatch) -> None:
    decoded_sizes: list[tuple[int, int]] = []
    draft = JpegImagePlugin.JpegImageFile.draft

    def spy(
        image: JpegImagePlugin.JpegImageFile, mode: str | None, size: tuple[int, int] | None
    ) -> tuple[str, tuple[int, int, float, float]] | None:
        result = draft(image, mode, size)
        decoded_sizes.append(image.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)

    image = thumbnail(encode(Image.new("RGB", (4000, 3000), GREEN), "JPEG"))

    assert image.size == (256, 192)
    assert decoded_sizes == [(1000, 750)]  # a quarter: the largest scale still 2 x 256 wide


@pytest.mark.parametrize("output", OUTPUTS)
def test_a_small_image_is_not_enlarged(output: str) -> None:
    image = thumbnail(encode(Image.new("RGB", (100, 40), BLUE), "PNG"), output)

    assert image.size == (100, 40)


@settings(max_examples=25, deadline=None)
@given(
    width=st.integers(1, 1500),
    height=st.integers(1, 1500),
    max_side=st.integers(1, 400),
    source=st.sampled_from(sorted(FORMATS)),
)
def test_the_aspect_ratio_is_kept(width: int, height: int, max_side: int, source: str) -> None:
    data = encode(Image.new("RGB", (width, height), BLUE), FORMATS[source])

    image = thumbnail(data, "image/webp", max_side)

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
        (99, (200, 100), (5, 5)),  # no such orientation: left alone
    ],
)
def test_the_exif_orientation_is_applied(
    format: str, orientation: int, size: tuple[int, int], red_corner: tuple[int, int]
) -> None:
    image = thumbnail(oriented(orientation, format), "image/webp")

    assert image.size == size
    assert close_to(image.getpixel(red_corner), RED)
    assert close_to(image.getpixel((size[0] // 2, size[1] // 2)), BLUE)


# --- output -------------------------------------------------------------------------------------


@pytest.mark.parametrize("output", OUTPUTS)
def test_the_thumbnail_carries_no_metadata(output: str) -> None:
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

    out = THUMBNAILER.thumbnail(chunked(data), 256, output)

    with Image.open(io.BytesIO(out)) as image:
        assert not {"exif", "icc_profile", "comment", "xmp"} & set(image.info)
        assert not image.getexif()
    for secret in (b"Exif", b"ICC_PROFILE", b"ICCP", b"XMP", b"Secret", b"ns.adobe.com"):
        assert secret not in out


def test_alpha_is_kept_in_webp_and_white_in_jpeg() -> None:
    image = Image.new("RGBA", (400, 200), (*RED, 255))
    image.paste((0, 0, 0, 0), (200, 0, 400, 200))  # the right half fully transparent
    data = encode(image, "PNG")

    webp = thumbnail(data, "image/webp")
    jpeg = thumbnail(data, "image/jpeg")

    assert webp.mode == "RGBA"
    assert webp.getpixel((60, 60))[3] == 255  # type: ignore[index]
    assert webp.getpixel((200, 60))[3] == 0  # type: ignore[index]
    assert jpeg.mode == "RGB"
    assert close_to(jpeg.getpixel((60, 60)), RED)
    assert close_to(jpeg.getpixel((200, 60)), (255, 255, 255))


def test_a_palette_image_with_transparency_keeps_it() -> None:
    image = Image.new("P", (300, 300), 0)
    image.putpalette([*RED, *GREEN])
    image.paste(1, (150, 0, 300, 300))
    data = encode(image, "PNG", transparency=1)

    webp = thumbnail(data, "image/webp")

    assert webp.getpixel((10, 10))[3] == 255  # type: ignore[index]
    assert webp.getpixel((250, 10))[3] == 0  # type: ignore[index]


@pytest.mark.parametrize(
    ("mode", "format"),
    [("L", "JPEG"), ("CMYK", "JPEG"), ("I;16", "PNG"), ("1", "PNG"), ("LA", "PNG"), ("L", "GIF")],
)
def test_unusual_modes_are_thumbnailed(mode: str, format: str) -> None:
    data = encode(Image.new(mode, (500, 300)), format)

    for output in OUTPUTS:
        assert thumbnail(data, output).size == (256, 154)


@pytest.mark.parametrize("format", ["GIF", "WEBP"])
def test_an_animation_gives_its_first_frame(format: str) -> None:
    frames = [Image.new("RGB", (300, 300), colour) for colour in (RED, GREEN, BLUE)]
    data = encode(frames[0], format, save_all=True, append_images=frames[1:], duration=100)
    with Image.open(io.BytesIO(data)) as animation:
        assert getattr(animation, "n_frames", 1) == 3

    image = thumbnail(data, "image/jpeg")

    assert image.size == (256, 256)
    assert close_to(image.getpixel((128, 128)), RED)


def test_an_upload_bigger_than_the_memory_spool_is_thumbnailed() -> None:
    # Trailing bytes after a JPEG's end are ignored by decoders: a cheap way to be big.
    data = small_jpeg() + b"\0" * (SPOOL_IN_MEMORY + 1)

    assert thumbnail(data).size == (48, 32)


# --- refusals -----------------------------------------------------------------------------------


def test_an_image_over_max_pixels_is_refused() -> None:
    data = encode(Image.new("RGB", (200, 100), BLUE), "PNG")

    with pytest.raises(ValueError, match="200 x 100"):
        PillowThumbnailer(max_pixels=19_999).thumbnail(chunked(data), 256, "image/jpeg")
    assert PillowThumbnailer(max_pixels=20_000).thumbnail(chunked(data), 256, "image/jpeg")


def too_many_pixels() -> list[MaliciousFile]:
    return [file for file in malicious_corpus() if file.expected == "too_many_pixels"]


@pytest.mark.parametrize("file", too_many_pixels(), ids=lambda file: file.name)
def test_a_decompression_bomb_is_refused_before_decoding(file: MaliciousFile) -> None:
    with pytest.raises(ValueError, match="pixels"):
        THUMBNAILER.thumbnail(chunked(file.data), 256, "image/jpeg")


def accepted() -> list[MaliciousFile]:
    return [file for file in malicious_corpus() if file.expected == "accepted"]


@pytest.mark.parametrize("file", accepted(), ids=lambda file: file.name)
def test_an_odd_but_accepted_file_is_thumbnailed_unless_pillow_refuses_it(
    file: MaliciousFile,
) -> None:
    if file.thumbnail:
        image = thumbnail(file.data)
        turned = file.exif.get("orientation") in (5, 6, 7, 8)
        size = (file.height, file.width) if turned else (file.width, file.height)
        assert image.size == size  # all are under 256 pixels
    else:
        with pytest.raises(ValueError, match="MAX_TEXT_CHUNK"):
            THUMBNAILER.thumbnail(chunked(file.data), 256, "image/jpeg")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"garbage, not an image at all", id="garbage"),
        pytest.param(encode(Image.new("RGB", (50, 50)), "BMP"), id="bmp"),
        pytest.param(encode(Image.new("RGB", (50, 50)), "TIFF"), id="tiff"),
    ],
)
def test_what_is_no_accepted_image_raises(data: bytes) -> None:
    with pytest.raises(UnidentifiedImageError):
        THUMBNAILER.thumbnail(chunked(data), 256, "image/jpeg")


def test_a_cut_off_image_raises() -> None:
    data = encode(Image.new("RGB", (500, 500), BLUE), "PNG")

    with pytest.raises(OSError, match="truncated"):
        THUMBNAILER.thumbnail(chunked(data[: len(data) // 2]), 256, "image/jpeg")


@pytest.mark.parametrize(
    ("content_type", "max_side"), [("image/png", 256), ("image/gif", 256), ("image/jpeg", 0)]
)
def test_an_unknown_output_or_no_size_is_refused(content_type: str, max_side: int) -> None:
    with pytest.raises(ValueError, match=r"content_type|image/|side"):
        THUMBNAILER.thumbnail([small_jpeg()], max_side, content_type)


def test_an_error_of_the_upload_stream_propagates() -> None:
    def failing() -> Iterator[bytes]:
        yield small_jpeg()[:100]
        raise ConnectionError("the blob store went away")

    with pytest.raises(ConnectionError):
        THUMBNAILER.thumbnail(failing(), 256, "image/jpeg")
