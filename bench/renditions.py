"""libvips against Pillow for renditions, side by side: one decode per upload making the preview
(1440 px) and the thumbnail (256 px) in JPEG, WebP and AVIF, and the placeholder (blurhash and
dominant colour), each set in a fresh process so that its peak RSS (VmHWM) is its own.

    .venv/bin/python -m bench.renditions --rounds 3            # minutes
    .venv/bin/python -m bench.renditions --quick               # tiny images, one round: seconds

The two implementations are in bench/rendition_makers.py. The images are made once in the work
directory (kept between runs), photo-like (smooth gradients under noise, so that the encoders
work as on a photograph): a 24 MP JPEG with an EXIF orientation of 6, a 100 MP non-interlaced
PNG, and the 12 MP photo whose preview's bytes are compared. Rounds interleave the libraries
and the images, so a slow moment of the machine falls on both. Each figure is the median and
the range (min-max) over the rounds; a "set" is the six encoded renditions and the placeholder
of one upload, from its bytes in memory; "growth" is the peak RSS during the set less the peak
before it (after the imports and reading the file).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import REPOSITORY_ROOT, photo_like

LIBRARIES = ("pillow", "libvips")
MIB = 1024 * 1024
BYTES_IMAGE = "photo"
"""The image whose preview's bytes, encode times and PSNR the second table gives."""

FULL_SIZES = {"jpeg": (6000, 4000), "png": (10_000, 10_000), "photo": (4000, 3000)}
QUICK_SIZES = {"jpeg": (480, 320), "png": (400, 400), "photo": (400, 300)}
"""Small enough for a test: a few seconds for the whole run, AVIF included."""


def make_images(work: Path, sizes: dict[str, tuple[int, int]]) -> dict[str, Path]:
    """key ("jpeg", "png", "photo"): file, made unless already in ``work``."""
    import pyvips

    work.mkdir(parents=True, exist_ok=True)

    def turned(image: pyvips.Image) -> pyvips.Image:
        """The image stored as a camera held upright stores it: EXIF orientation 6."""
        tagged = image.copy()
        tagged.set_type(pyvips.GValue.gint_type, "orientation", 6)
        return tagged

    makers: dict[str, tuple[str, Callable[[Path, int, int], None]]] = {
        "jpeg": ("jpg", lambda path, w, h: turned(photo_like(w, h)).jpegsave(str(path), Q=90)),
        "png": (
            "png",
            lambda path, w, h: photo_like(w, h).pngsave(str(path), compression=3, interlace=False),
        ),
        "photo": ("jpg", lambda path, w, h: photo_like(w, h).jpegsave(str(path), Q=90)),
    }
    images: dict[str, Path] = {}
    for key, (width, height) in sizes.items():
        suffix, make = makers[key]
        name = f"{key}-{width}x{height}.{suffix}"
        path = work / name
        if not path.exists():
            print(f"  making {name} ...", flush=True)
            partial = path.with_name(f"partial-{name}")
            make(partial, width, height)
            partial.replace(path)
        images[key] = path
    return images


def peak_rss_kib() -> int:
    """This process's peak resident set size so far (VmHWM), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def psnr(reference: bytes, size: tuple[int, int], encoded: bytes) -> float:
    """The peak signal-to-noise ratio (dB) of ``encoded`` decoded, against the RGB pixels it
    was encoded from: the same decoder (Pillow's) for every format and library."""
    from PIL import Image, ImageChops, ImageStat

    original = Image.frombytes("RGB", size, reference)
    with Image.open(io.BytesIO(encoded)) as decoded:
        difference = ImageChops.difference(original, decoded.convert("RGB"))
    mean_square = statistics.fmean(rms**2 for rms in ImageStat.Stat(difference).rms)
    return math.inf if mean_square == 0 else 10 * math.log10(255**2 / mean_square)


def measure_one(library: str, path: Path) -> dict[str, Any]:
    """In this (fresh) process: one set, its times and the growth of the peak RSS; then, outside
    what is measured, each preview encoding's PSNR."""
    from bench.rendition_makers import MAKERS

    make = MAKERS[library]
    data = path.read_bytes()
    before = peak_rss_kib()
    started = time.perf_counter()
    made = make(data)
    seconds = time.perf_counter() - started
    peak = peak_rss_kib()
    preview = made.rendition("preview", "jpeg")
    reference = made.preview_rgb()
    renditions = [
        {
            "name": rendition.name,
            "format": rendition.format,
            "width": rendition.width,
            "height": rendition.height,
            "bytes": len(rendition.data),
            "encode_seconds": rendition.encode_seconds,
            "psnr": psnr(reference, (preview.width, preview.height), rendition.data)
            if rendition.name == "preview"
            else None,
        }
        for rendition in made.renditions
    ]
    assert made.placeholder is not None
    return {
        "seconds": seconds,
        "decode_seconds": made.decode_seconds,
        "placeholder_seconds": made.placeholder.seconds,
        "blurhash": made.placeholder.blurhash,
        "dominant_colour": made.placeholder.dominant_colour,
        "renditions": renditions,
        "growth_kib": peak - before,
        "peak_kib": peak,
    }


def _in_fresh_process(library: str, path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.renditions", "--one", library, str(path)],
        capture_output=True,
        text=True,
        cwd=REPOSITORY_ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{library} on {path.name} failed: {done.stderr[-400:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(images: dict[str, Path], rounds: int) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(image key, library): the runs of that library on that image, one per round."""
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for round_number in range(1, rounds + 1):
        print(f"round {round_number} of {rounds} ...", flush=True)
        for key, path in images.items():
            order = LIBRARIES if round_number % 2 else tuple(reversed(LIBRARIES))
            for library in order:
                results.setdefault((key, library), []).append(_in_fresh_process(library, path))
    return results


def blurhash_seconds(side: int, repeats: int = 3) -> float:
    """The median time of the blurhash package's 4 x 3 encode of a ``side`` x ``side`` image."""
    import blurhash

    rows = [
        [[(x * 7) % 256, (y * 5) % 256, (x + y) % 256] for x in range(side)] for y in range(side)
    ]
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        blurhash.encode(rows, 4, 3)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _spread(values: list[float], digits: int, unit: float = 1) -> str:
    low, middle, high = min(values) / unit, statistics.median(values) / unit, max(values) / unit
    return f"{middle:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


def _encode_seconds(run: dict[str, Any], format_name: str) -> float:
    return sum(r["encode_seconds"] for r in run["renditions"] if r["format"] == format_name)


def report(
    images: dict[str, Path], results: dict[tuple[str, str], list[dict[str, Any]]], rounds: int
) -> str:
    """The two tables, in Markdown: sets per image and library, and the photo's preview bytes."""
    lines = [
        f"One set (preview 1440 + thumbnail 256, each in JPEG, WebP and AVIF, and the "
        f"placeholder) per fresh process, {rounds} rounds: median (min-max)",
        "",
        "| image | file MiB | library | sets/s | s/set | decode s | JPEG s | WebP s | AVIF s "
        "| placeholder ms | peak RSS growth MiB | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, path in images.items():
        for library in LIBRARIES:
            runs = results[(key, library)]
            seconds = [run["seconds"] for run in runs]
            lines.append(
                f"| {path.name} | {path.stat().st_size / MIB:.1f} | {library} "
                f"| {_spread([1 / s for s in seconds], 2)} | {_spread(seconds, 2)} "
                f"| {_spread([run['decode_seconds'] for run in runs], 2)} "
                + "".join(
                    f"| {_spread([_encode_seconds(run, f) for run in runs], 2)} "
                    for f in ("jpeg", "webp", "avif")
                )
                + f"| {_spread([run['placeholder_seconds'] for run in runs], 0, 1e-3)} "
                f"| {_spread([run['growth_kib'] for run in runs], 0, 1024)} "
                f"| {_spread([run['peak_kib'] for run in runs], 0, 1024)} |"
            )
    photo = images[BYTES_IMAGE]
    lines += [
        "",
        f"The preview of {photo.name}: bytes, encode time (median (min-max)) and PSNR against "
        "the unencoded preview",
        "",
        "| library | format | size | bytes | encode s | PSNR dB |",
        "|---|---|---|---|---|---|",
    ]
    for library in LIBRARIES:
        runs = results[(BYTES_IMAGE, library)]
        for format_name in ("jpeg", "webp", "avif"):
            previews = [
                next(
                    r
                    for r in run["renditions"]
                    if r["name"] == "preview" and r["format"] == format_name
                )
                for run in runs
            ]
            first = previews[0]
            lines.append(
                f"| {library} | {format_name} | {first['width']} x {first['height']} "
                f"| {first['bytes']:,} | {_spread([p['encode_seconds'] for p in previews], 3)} "
                f"| {first['psnr']:.1f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny images, one round: seconds")
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "imagecore-bench-renditions"
    )
    parser.add_argument("--one", nargs=2, metavar=("LIBRARY", "FILE"))
    args = parser.parse_args()
    if args.one:
        library, path = args.one
        print(json.dumps(measure_one(library, Path(path))))
        return
    rounds = 1 if args.quick else args.rounds
    images = make_images(args.work, QUICK_SIZES if args.quick else FULL_SIZES)
    results = run(images, rounds)
    print()
    print(report(images, results, rounds))
    print()
    for side in (32, 64):
        print(f"blurhash 4 x 3 of {side} x {side}: {blurhash_seconds(side) * 1000:.0f} ms")


if __name__ == "__main__":
    for entry in (REPOSITORY_ROOT / "src", REPOSITORY_ROOT):
        sys.path.insert(0, str(entry))
    main()
