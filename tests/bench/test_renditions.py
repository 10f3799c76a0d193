"""The renditions bench (bench/renditions.py) and the two implementations it compares
(bench/rendition_makers.py): each makes every rendition upright, at its size, in its format,
with no metadata and never enlarged, and a placeholder of the thumbnail's pixels; the bench's
smallest run gives both tables for both libraries."""

from __future__ import annotations

import io
from pathlib import Path

import blurhash
import pytest
from bench.rendition_makers import FORMATS, MAKERS, RENDITION_SIDES
from bench.renditions import LIBRARIES, QUICK_SIZES, make_images, report, run
from blurhash.blurhash import base83_decode
from PIL import Image

SMALL_SIDES = {"preview": 300, "thumbnail": 64}
"""Small renditions, so that AVIF's encoder takes a fraction of a second."""

PILLOW_FORMATS = {"jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF"}


@pytest.fixture(scope="module")
def turned_jpeg(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """600 x 400 stored, EXIF orientation 6: 400 x 600 upright. Red grows with the stored x,
    green with the stored y, so upright its top-left corner is green and its top-right black."""
    work = tmp_path_factory.mktemp("renditions")
    return make_images(work, {"jpeg": (600, 400)})["jpeg"].read_bytes()


def png_bytes(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("library", LIBRARIES)
def test_every_rendition_is_upright_at_its_size_in_its_format_without_metadata(
    library: str, turned_jpeg: bytes
) -> None:
    made = MAKERS[library](turned_jpeg, SMALL_SIDES)

    expected_sizes = {"preview": (200, 300), "thumbnail": (43, 64)}
    assert sorted((r.name, r.format) for r in made.renditions) == sorted(
        (name, format_name) for name in SMALL_SIDES for format_name in FORMATS
    )
    for rendition in made.renditions:
        with Image.open(io.BytesIO(rendition.data)) as decoded:
            assert decoded.format == PILLOW_FORMATS[rendition.format]
            assert decoded.size == (rendition.width, rendition.height)
            assert decoded.size == expected_sizes[rendition.name]
            assert decoded.mode == "RGB"
            assert not decoded.getexif()
            assert "icc_profile" not in decoded.info
            assert "xmp" not in decoded.info
            if rendition.name == "preview":
                top_left = decoded.convert("RGB").getpixel((3, 3))
                top_right = decoded.convert("RGB").getpixel((decoded.width - 4, 3))
                assert isinstance(top_left, tuple)
                assert isinstance(top_right, tuple)
                red, green = top_left[:2]
                assert (red < 60, green > 200) == (True, True), rendition
                red, green = top_right[:2]
                assert (red < 60, green < 60) == (True, True), rendition


@pytest.mark.parametrize("library", LIBRARIES)
def test_a_small_image_is_never_enlarged(library: str) -> None:
    made = MAKERS[library](png_bytes((200, 100), (10, 120, 200)), RENDITION_SIDES)

    assert {(r.width, r.height) for r in made.renditions} == {(200, 100)}


@pytest.mark.parametrize("library", LIBRARIES)
def test_the_placeholder_is_a_4_by_3_blurhash_and_the_dominant_colour(library: str) -> None:
    made = MAKERS[library](png_bytes((300, 200), (200, 30, 40)), SMALL_SIDES)

    assert made.placeholder is not None
    assert made.placeholder.dominant_colour == "#c81e28"
    assert blurhash.components(made.placeholder.blurhash) == (4, 3)
    # Characters 2 to 5 are the DC component: the image's average colour, as 0xRRGGBB.
    assert f"#{base83_decode(made.placeholder.blurhash[2:6]):06x}" == "#c81e28"


def test_the_quick_run_gives_both_tables_for_both_libraries(tmp_path: Path) -> None:
    images = make_images(tmp_path, QUICK_SIZES)
    results = run(images, rounds=1)

    for (key, library), runs in results.items():
        assert len(runs) == 1
        renditions = runs[0]["renditions"]
        assert len(renditions) == 6, (key, library)
        assert all(r["bytes"] > 0 for r in renditions)
        thumbnail_sides = {
            max(r["width"], r["height"]) for r in renditions if r["name"] == "thumbnail"
        }
        assert thumbnail_sides == {256}, (key, library)
        assert runs[0]["growth_kib"] >= 0
    assert set(results) == {(key, library) for key in QUICK_SIZES for library in LIBRARIES}
    table = report(images, results, rounds=1).splitlines()
    rows = [line for line in table if line.startswith("| ") and not line.startswith("| image")]
    sets = [row for row in rows if row.startswith("| jpeg") or row.startswith("| png")]
    sets += [row for row in rows if row.startswith("| photo")]
    assert len(sets) == 6
    assert all(row.count("|") == 13 for row in sets)
    preview_bytes = [row for row in rows if row.split("|")[2].strip() in FORMATS]
    assert [row.split("|")[1:3] for row in preview_bytes] == [
        [f" {library} ", f" {format_name} "] for library in LIBRARIES for format_name in FORMATS
    ]
    assert all(" 400 x 300 " in row for row in preview_bytes)
