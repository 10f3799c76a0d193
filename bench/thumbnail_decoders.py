"""libvips against Pillow, side by side: the time and peak memory of one thumbnail of each of a
few big images, each decode in a fresh process so that its peak RSS (ru_maxrss) is its own.

    .venv/bin/python -m bench.thumbnail_decoders              # 5 interleaved rounds
    .venv/bin/python -m bench.thumbnail_decoders --rounds 3 --work /tmp/decoders

The images are made once in the work directory (kept between runs): the 10000 x 10000 PNG
bomb of the hardening issue (one colour, ~300 KB), a 100 MP photo-like PNG, a 24 MP JPEG
(baseline and progressive), a 12 MP GIF, a 24 MP WebP, and the costly shapes the memory
estimate is for: a 100 MP panorama PNG, a 24 MP interlaced PNG. Rounds interleave the
libraries and the images, so a slow moment of the machine falls on both. Each row gives the
median and the range (min-max) over the rounds; "growth" is the peak RSS during the thumbnail
less the peak before it (after the imports and reading the file). The peak is the process's
VmHWM: ru_maxrss would carry over the peak of the process that started it (Linux keeps it
across fork and exec).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import REPOSITORY_ROOT, photo_like

LIBRARIES = ("pillow", "libvips")
MIB = 1024 * 1024


def make_images(work: Path) -> dict[str, tuple[Path, str]]:
    """name: (file, content type), made unless already in ``work``."""
    from tests.support.big_images import uniform_png

    work.mkdir(parents=True, exist_ok=True)
    images: dict[str, tuple[Path, str]] = {}

    def made(name: str, content_type: str, make: object) -> None:
        path = work / name
        if not path.exists():
            print(f"  making {name} ...", flush=True)
            partial = path.with_name(f"partial-{name}")
            make(partial)  # type: ignore[operator]
            partial.replace(path)
        images[name] = (path, content_type)

    made("bomb-10000x10000.png", "image/png", lambda p: p.write_bytes(uniform_png(10_000, 10_000)))
    made(
        "photo-10000x10000.png",
        "image/png",
        lambda p: photo_like(10_000, 10_000).pngsave(str(p), compression=3),
    )
    made(
        "panorama-113000x884.png",
        "image/png",
        lambda p: p.write_bytes(uniform_png(113_000, 884, rows=68)),
    )
    made(
        "interlaced-6000x4000.png",
        "image/png",
        lambda p: photo_like(6_000, 4_000).pngsave(str(p), compression=3, interlace=True),
    )
    made(
        "photo-6000x4000.jpg",
        "image/jpeg",
        lambda p: photo_like(6_000, 4_000).jpegsave(str(p), Q=90),
    )
    made(
        "progressive-6000x4000.jpg",
        "image/jpeg",
        lambda p: photo_like(6_000, 4_000).jpegsave(str(p), Q=90, interlace=True),
    )
    made("photo-4000x3000.gif", "image/gif", lambda p: photo_like(4_000, 3_000).gifsave(str(p)))
    made("photo-6000x4000.webp", "image/webp", lambda p: photo_like(6_000, 4_000).webpsave(str(p)))
    return images


def peak_rss_kib() -> int:
    """This process's peak resident set size so far (VmHWM), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def measure_one(library: str, path: Path, content_type: str) -> dict[str, object]:
    """In this (fresh) process: one thumbnail, its time and the growth of the peak RSS."""
    output = "image/jpeg" if content_type == "image/jpeg" else "image/webp"
    if library == "pillow":
        from bench.pillow_thumbnailer import PillowThumbnailer

        thumbnailer: object = PillowThumbnailer()
    else:
        from adapters.thumbnails import VipsRenderer

        thumbnailer = VipsRenderer(memory_budget=2**62)  # measure, do not refuse
    data = path.read_bytes()
    chunks = (data[start : start + 1024 * 1024] for start in range(0, len(data), 1024 * 1024))
    before = peak_rss_kib()
    started = time.perf_counter()
    try:
        thumbnail = thumbnailer.thumbnail(chunks, 256, output)  # type: ignore[attr-defined]
        outcome = f"{len(thumbnail)} B"
    except Exception as error:
        outcome = f"{type(error).__name__}: {error}"[:80]
    seconds = time.perf_counter() - started
    peak = peak_rss_kib()
    return {"seconds": seconds, "growth_kib": peak - before, "peak_kib": peak, "outcome": outcome}


def _in_fresh_process(library: str, path: Path, content_type: str) -> dict[str, object]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.thumbnail_decoders",
            "--one",
            library,
            str(path),
            content_type,
        ],
        capture_output=True,
        text=True,
        cwd=REPOSITORY_ROOT,
        check=False,
    )
    if done.returncode != 0:
        return {"seconds": None, "growth_kib": None, "peak_kib": None, "outcome": done.stderr[-80:]}
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _spread(values: list[float], unit: float, digits: int) -> str:
    if not values:
        return "-"
    low, middle, high = min(values) / unit, statistics.median(values) / unit, max(values) / unit
    return f"{middle:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "imagecore-bench-decoders"
    )
    parser.add_argument("--one", nargs=3, metavar=("LIBRARY", "FILE", "CONTENT_TYPE"))
    args = parser.parse_args()
    if args.one:
        library, path, content_type = args.one
        print(json.dumps(measure_one(library, Path(path), content_type)))
        return
    images = make_images(args.work)
    results: dict[tuple[str, str], list[dict[str, object]]] = {}
    for round_number in range(1, args.rounds + 1):
        print(f"round {round_number} of {args.rounds} ...", flush=True)
        for name, (path, content_type) in images.items():
            order = LIBRARIES if round_number % 2 else tuple(reversed(LIBRARIES))
            for library in order:
                results.setdefault((name, library), []).append(
                    _in_fresh_process(library, path, content_type)
                )
    print()
    print(f"Thumbnail (256 px) of each image, {args.rounds} rounds: median (min-max)")
    print()
    print("| image | file | library | seconds | peak RSS growth MiB | peak RSS MiB | outcome |")
    print("|---|---|---|---|---|---|---|")
    for name, (path, _) in images.items():
        for library in LIBRARIES:
            runs = results[(name, library)]
            seconds = [float(run["seconds"]) for run in runs if run["seconds"] is not None]  # type: ignore[arg-type]
            growth = [float(run["growth_kib"]) for run in runs if run["growth_kib"] is not None]  # type: ignore[arg-type]
            peak = [float(run["peak_kib"]) for run in runs if run["peak_kib"] is not None]  # type: ignore[arg-type]
            size = f"{path.stat().st_size / MIB:.1f} MiB"
            print(
                f"| {name} | {size} | {library} | {_spread(seconds, 1, 2)} | "
                f"{_spread(growth, 1024, 0)} | {_spread(peak, 1024, 0)} | {runs[-1]['outcome']} |"
            )


if __name__ == "__main__":
    for entry in (REPOSITORY_ROOT / "src", REPOSITORY_ROOT):
        sys.path.insert(0, str(entry))
    main()
