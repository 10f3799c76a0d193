"""The time and peak memory of decoding a 12-megapixel HEIC (pillow-heif's libheif) and AVIF
(libvips' heifload) to a 256-pixel thumbnail, each in a fresh process so that its peak is its
own: the figures behind adapters.heif_decode's estimate.

    .venv/bin/python -m bench.heif_decoders --work /tmp/heif-bench

"growth" is the peak RSS (VmHWM) during the decode less the RSS before it, once the modules
are imported and the file read; the file is in memory before, so growth is the decode's own,
to compare with "estimate" (adapters.heif_decode.heif_decode_bytes, the file left out).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import REPOSITORY_ROOT

MIB = 1024 * 1024
WIDTH, HEIGHT = 4032, 3024  # an iPhone's 12 megapixels


def make_images(work: Path) -> dict[str, tuple[Path, str]]:
    """name: (file, content type), made unless already in ``work``: a 4:2:0 photo as a
    camera writes it, and a 4:4:4 image with alpha."""
    import pillow_heif
    import pyvips

    work.mkdir(parents=True, exist_ok=True)
    xy = pyvips.Image.xyz(WIDTH, HEIGHT)
    x, y = xy[0], xy[1]
    noise = pyvips.Image.gaussnoise(WIDTH, HEIGHT, sigma=12, mean=0)
    photo = ((x * (255 / WIDTH)).bandjoin([y * (255 / HEIGHT), (x + y) * 0.03]) + noise).cast(
        "uchar"
    )
    # The dearest shape a decoder may be handed: full chroma and an alpha channel.
    dear = photo.bandjoin(x * (255 / WIDTH)).cast("uchar")
    made: dict[str, tuple[Path, str]] = {}
    for name, picture, mode, chroma in (
        ("photo-12mp", photo, "RGB", "420"),
        ("rgba-444-12mp", dear, "RGBA", "444"),
    ):
        heic, avif = work / f"{name}.heic", work / f"{name}.avif"
        if not heic.exists():
            pixels = picture.write_to_memory()
            image = pillow_heif.from_bytes(mode, (WIDTH, HEIGHT), pixels)
            image.save(heic, quality=80, chroma=int(chroma))
        if not avif.exists():
            subsample = "on" if chroma == "420" else "off"
            picture.heifsave(str(avif), compression="av1", Q=60, effort=0, subsample_mode=subsample)
        made[heic.name] = (heic, "image/heic")
        made[avif.name] = (avif, "image/avif")
    return made


def measure(path: Path, content_type: str) -> dict[str, float]:
    """In this process: the decode and thumbnail of ``path``, its time and RSS growth."""
    import pyvips

    from adapters.heif_decode import decode_heic, heif_decode_bytes, load_avif
    from adapters.heif_header import read_heif_header

    pyvips.cache_set_max(0)
    pyvips.concurrency_set(1)
    data = path.read_bytes()
    header = read_heif_header(data[:MIB])
    assert header is not None, path
    before = _rss("VmRSS")
    start = time.perf_counter()
    if content_type == "image/heic":
        image = decode_heic(data)
    else:
        image = load_avif(pyvips.Source.new_from_memory(data), access="sequential")
    thumbnail = image.thumbnail_image(256, height=256).write_to_buffer(".jpg")
    elapsed = time.perf_counter() - start
    return {
        "seconds": elapsed,
        "growth_mib": (_rss("VmHWM") - before) / MIB,
        "estimate_mib": heif_decode_bytes(header, 0) / MIB,  # the file is held before
        "width": image.width,
        "height": image.height,
        "thumbnail_bytes": len(thumbnail),
        "file_mib": len(data) / MIB,
    }


def _rss(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "heif-bench")
    parser.add_argument("--one", nargs=2, metavar=("PATH", "CONTENT_TYPE"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.one:
        print(json.dumps(measure(Path(arguments.one[0]), arguments.one[1])))
        return
    for name, (path, content_type) in make_images(arguments.work).items():
        output = subprocess.run(
            [sys.executable, "-m", "bench.heif_decoders", "--one", str(path), content_type],
            cwd=REPOSITORY_ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        print(name, output.strip())


if __name__ == "__main__":
    main()
