"""A quick load run against the embedded server (not part of the test suite).

Seeds N images into a fresh data dir through the use cases, starts `imagecore serve`, and drives
`GET /images/{id}` and a `GET /images` page of 50 with wrk (Debian's `wrk` package), printing
requests per second and latency percentiles.

    python bench/quick_load.py [--images 10000] [--seconds 10] [--connections 16] [--workers 1]
"""

from __future__ import annotations

import argparse
import io
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from entrypoints.container import build_container
from entrypoints.settings import Settings
from imagecore.commands import UploadCommand

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.http_server import ServerProcess

from bench.http_reads import settle_thumbnails


def seed(data_dir: Path, count: int) -> str:
    container = build_container(Settings(data_dir=data_dir))
    images = container.images()
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 200)).save(buffer, "JPEG")
    data = buffer.getvalue()
    tags = ["beach", "city", "sunset", "family", "food", "night"]
    first_id = ""
    for n in range(count):
        user = f"user{n % 20}"
        image = images.store_upload(
            user,
            UploadCommand(
                chunks=[data],
                filename=f"photo-{n}.jpg",
                title=f"Photo number {n}",
                tags=[tags[n % len(tags)], tags[(n * 7) % len(tags)]],
                metadata={"n": n, "camera": "bench"},
                visibility="public" if n % 3 else "private",
            ),
        ).image
        if user == "user0" and not first_id:
            first_id = image.image_id
    settle_thumbnails(container)
    return first_id


def wrk(url: str, token: str, seconds: int, connections: int) -> dict[str, str]:
    output = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency",
         "-H", f"Authorization: Bearer {token}", url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    figures = {"requests/s": re.search(r"Requests/sec:\s+([\d.]+)", output)[1]}  # type: ignore[index]
    for percentile in ("50", "90", "99"):
        figures[f"p{percentile}"] = re.search(rf"\s{percentile}%\s+(\S+)", output)[1]  # type: ignore[index]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    figures["non-2xx"] = errors[1] if errors else "0"
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk")
    root = Path(tempfile.mkdtemp(prefix="imagecore-load-"))
    started = time.monotonic()
    image_id = seed(root / "data", args.images)
    print(f"seeded {args.images} images in {time.monotonic() - started:.1f}s")
    server = ServerProcess(root / "data", workers=args.workers).start()
    try:
        token = server.token("user0")
        for name, path in (
            ("GET /images/{id}", f"/images/{image_id}"),
            ("GET /images?limit=50", "/images?limit=50"),
        ):
            figures = wrk(server.url + path, token, args.seconds, args.connections)
            print(f"{name:24} " + "  ".join(f"{k} {v}" for k, v in figures.items()))
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
