"""Latency of `GET /images/{id}` and of a page of 50 on the aws backend, against a moto server.

Starts a moto server and `imagecore serve` with IMAGECORE_BACKEND=aws on free loopback ports,
uploads images, then times requests one at a time and prints p50 and p99. Not part of the test
suite; run from a checkout with the dev extra installed:

    .venv/bin/python -m bench.aws_latency [--images 300] [--requests 300]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from PIL import Image

from bench.common import free_port, wait_for

BIN = Path(sys.executable).parent


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1000:6.1f} ms   p99 {p99 * 1000:6.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()

    moto_port, port = free_port(), free_port()
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "IMAGECORE_BACKEND": "aws",
        "IMAGECORE_TABLE": "bench-images",
        "IMAGECORE_BUCKET": "bench-blobs",
    }
    processes = []
    with tempfile.TemporaryDirectory() as data_dir:
        try:
            processes.append(
                subprocess.Popen(
                    [BIN / "moto_server", "-p", str(moto_port)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            wait_for(f"http://127.0.0.1:{moto_port}/moto-api/")
            subprocess.run([BIN / "imagecore", "aws-setup"], env=env, check=True)
            processes.append(
                subprocess.Popen(
                    # one worker: the latency of single requests, one at a time
                    [
                        BIN / "imagecore",
                        "serve",
                        "--port",
                        str(port),
                        "--data-dir",
                        data_dir,
                        "--workers",
                        "1",
                    ],
                    env=env,
                    stderr=subprocess.DEVNULL,
                )
            )
            url = f"http://127.0.0.1:{port}"
            wait_for(f"{url}/health")
            token = subprocess.run(
                [BIN / "imagecore", "token", "bench", "--data-dir", data_dir],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
            run(url, token, args.images, args.requests)
        finally:
            for process in reversed(processes):
                process.terminate()
                process.wait()


def run(url: str, token: str, images: int, requests: int) -> None:
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"})
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "teal").save(buffer, "PNG")
    data = buffer.getvalue()
    ids = []
    started = time.perf_counter()
    for n in range(images):
        response = client.post(
            "/images",
            files={"file": (f"{n}.png", data, "image/png")},
            data={"tags": "bench", "visibility": "public" if n % 2 else "private"},
        )
        response.raise_for_status()
        ids.append(response.json()["image_id"])
    upload = (time.perf_counter() - started) / images
    by_id, pages = [], []
    for n in range(requests):
        started = time.perf_counter()
        client.get(f"/images/{ids[n % len(ids)]}").raise_for_status()
        by_id.append(time.perf_counter() - started)
        started = time.perf_counter()
        page = client.get("/images", params={"limit": 50})
        page.raise_for_status()
        pages.append(time.perf_counter() - started)
        assert page.json()["count"] == 50
    print(f"aws backend on moto server, {images} images stored, one request at a time")
    print(f"POST /images (64x48 PNG)   mean {upload * 1000:6.1f} ms")
    print(f"GET /images/{{id}}          {percentiles(by_id)}")
    print(f"GET /images?limit=50       {percentiles(pages)}")


if __name__ == "__main__":
    main()
