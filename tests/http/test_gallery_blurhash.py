"""The blurhash decoder the gallery draws placeholders with (the vendored blurhash.js, run by
node) against the encoder the server makes them with (the blurhash package): what one encodes,
the other decodes to the picture's colours."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import blurhash
import pytest

from entrypoints.http.pages import GALLERY_ASSETS

NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(
    NODE is None, reason="no node on this machine (apt-get install nodejs)"
)

COMPONENTS = (4, 3)
"""As the server encodes its placeholders."""

DECODE_ALL = """
import { decode } from "./blurhash.mjs";
let input = "";
for await (const chunk of process.stdin) input += chunk;
const decoded = JSON.parse(input).map(
  ([hash, width, height]) => Array.from(decode(hash, width, height)),
);
process.stdout.write(JSON.stringify(decoded));
"""

Pixel = tuple[int, int, int]


@pytest.fixture(scope="module")
def decoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder where node takes the gallery's vendored decoder for the ES module it is."""
    folder = tmp_path_factory.mktemp("blurhash")
    shutil.copyfile(GALLERY_ASSETS / "vendor" / "blurhash.js", folder / "blurhash.mjs")
    (folder / "decode_all.mjs").write_text(DECODE_ALL, encoding="utf-8")
    return folder


def decoded_in_the_browser_code(
    decoder: Path, requests: list[tuple[str, int, int]]
) -> list[list[Pixel]]:
    """The RGB pixels blurhash.js decodes each (hash, width, height) to, row by row."""
    assert NODE is not None
    run = subprocess.run(
        [NODE, "decode_all.mjs"],
        cwd=decoder,
        input=json.dumps(requests),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return [
        [(rgba[i], rgba[i + 1], rgba[i + 2]) for i in range(0, len(rgba), 4)]
        for rgba in json.loads(run.stdout)
    ]


def mean_colour(pixels: list[Pixel]) -> Pixel:
    """The mean in linear light, as blurhash's DC component holds it, back in sRGB."""
    channels = zip(*pixels, strict=True)
    return tuple(  # type: ignore[return-value]
        blurhash.linear_to_srgb(sum(map(blurhash.srgb_to_linear, values)) / len(pixels))
        for values in channels
    )


def close(found: Pixel, expected: Pixel, tolerance: int) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(found, expected, strict=True))


def picture(width: int, height: int) -> list[list[Pixel]]:
    """A left-to-right ramp from a dark teal to an orange, darker toward the bottom: detail in
    both directions for the AC components to carry."""
    return [
        [
            (
                int(30 + 210 * x / (width - 1)),
                int((111 + 40 * x / (width - 1)) * (1 - 0.5 * y / (height - 1))),
                int(138 - 100 * x / (width - 1)),
            )
            for x in range(width)
        ]
        for y in range(height)
    ]


def test_the_servers_hash_of_a_picture_decodes_to_its_mean_colour_and_shape(
    decoder: Path,
) -> None:
    width, height = 32, 24  # the server's placeholder size for a 4:3 image
    rows = picture(width, height)
    hash_ = blurhash.encode([[list(pixel) for pixel in row] for row in rows], *COMPONENTS)
    [pixels] = decoded_in_the_browser_code(decoder, [(hash_, width, height)])

    expected = mean_colour([pixel for row in rows for pixel in row])
    assert close(mean_colour(pixels), expected, 3), (mean_colour(pixels), expected)
    # Not only the mean: left is teal and right orange, as in the picture.
    left, right = pixels[height // 2 * width], pixels[height // 2 * width + width - 1]
    assert left[2] > left[0], left
    assert right[0] > right[2], right
    # The same pixels the reference Python decoder makes, but for rounding.
    reference = blurhash.decode(hash_, width, height)
    assert all(
        close(pixels[y * width + x], tuple(reference[y][x][:3]), 1)
        for y in range(height)
        for x in range(width)
    )


def test_the_documented_example_hash_decodes_to_its_average_colour(decoder: Path) -> None:
    # blurha.sh's example. Its characters 2 to 5 are its DC component, the average colour, in
    # base 83 (a flat picture does not make a flat hash: blurhash samples its cosines at pixel
    # edges, so a mean is what a hash promises).
    example = "LEHV6nWB2yk8pyo0adR*.7kCMdnj"
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"
    value = 0
    for character in example[2:6]:
        value = value * 83 + digits.index(character)
    average = (value >> 16, value >> 8 & 255, value & 255)
    [pixels] = decoded_in_the_browser_code(decoder, [(example, 32, 32)])
    assert close(mean_colour(pixels), average, 4), (mean_colour(pixels), average)
