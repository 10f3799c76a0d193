"""Row 1: metadata reads on the embedded server under 16 connections, beside the stack's ceiling,
with one worker process and with one per core.

Each worker count runs its own ceiling (granian + Starlette answering a constant 200-byte JSON
body, with as many workers) and `imagecore serve --workers N` side by side; the three loads
(ceiling, one image, a page of 50) take turns, in a rotating order, for several rounds, and each
figure of ours is divided by the ceiling of its own round. The median of those ratios is the
figure; their spread says how much the machine's other load moved it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from bench.common import (
    BIN,
    REPOSITORY_ROOT,
    UNLIMITED,
    Row,
    free_port,
    median,
    rotated,
    small_jpeg,
    spread,
    stop,
    wait_for,
)

if TYPE_CHECKING:
    from entrypoints.container import Container

FAMILY = "1 HTTP reads"
CONNECTIONS = 16
READS = {  # what is read, and the share of the ceiling it should reach
    "GET /images/{id}": 0.6,
    "GET /images?limit=50": 0.3,
}

_LUA = """
wrk.headers["Authorization"] = "Bearer %s"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests_per_second": %%f, "p50_ms": %%f, "p99_ms": %%f, "non2xx": %%d, '
    .. '"socket_errors": %%d}\\n',
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def worker_counts() -> list[int]:
    """One worker, and one per core this process may use (the server's default)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return sorted({1, cores or 1})


def seed(data_dir: Path, count: int) -> str:
    """Upload ``count`` images through the use cases; the id of one of user0's."""
    from entrypoints.container import build_container
    from entrypoints.settings import Settings
    from imagecore.commands import UploadCommand

    container = build_container(Settings(data_dir=data_dir))
    images = container.images()
    data = small_jpeg()
    tags = ["beach", "city", "sunset", "family", "food", "night"]
    first = ""
    for n in range(count):
        image = images.store_upload(
            f"user{n % 20}",
            UploadCommand(
                chunks=[data],
                filename=f"photo-{n}.jpg",
                title=f"Photo number {n}",
                tags=[tags[n % 6], tags[(n * 7) % 6]],
                metadata={"n": n},
                visibility="public" if n % 3 else "private",
            ),
        ).image
        if n == 0:
            first = image.image_id
    settle_thumbnails(container)
    return first


def settle_thumbnails(container: Container) -> None:
    """Make the seeded images' thumbnails before the server starts. Their jobs are kept in the
    database with the images, so a server started on the seed would spend the first minutes of
    the run making 10,000 thumbnails, and writing each image again, beside the reads measured."""
    from adapters.local_jobs import ResumableJobQueue

    jobs = container.jobs()
    if isinstance(jobs, ResumableJobQueue):
        jobs.start(container.worker_lease())
        if not jobs.join(timeout=600):
            raise RuntimeError("the seeded images' thumbnails were not all made in 10 minutes")
        jobs.close()


def load(url: str, token: str, seconds: int, work: Path) -> dict[str, float]:
    """Requests/s, p50 and p99 (ms) and failures of GETs on ``url``: wrk, else Python."""
    if shutil.which("wrk"):
        script = work / "auth.lua"
        script.write_text(_LUA % token)
        output = subprocess.run(
            ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "-s", str(script), url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        line = next(x for x in output.splitlines() if x.startswith("BENCH "))
        figures: dict[str, float] = json.loads(line[6:])
        figures["non2xx"] += figures.pop("socket_errors")
        return figures
    output = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", url, token, str(seconds), str(CONNECTIONS)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPOSITORY_ROOT,
    ).stdout
    result: dict[str, float] = json.loads(output)
    return result


def _ceiling(port: int, workers: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            BIN / "granian",
            "--interface",
            "asgi",
            "--http",
            "1",
            "--workers",
            str(workers),
            "--no-access-log",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "bench.ceiling:app",
        ],
        cwd=REPOSITORY_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _rows_for(
    workers: int,
    data_dir: Path,
    image_id: str,
    images: int,
    seconds: int,
    rounds: int,
    work: Path,
) -> list[Row]:
    from tests.support.http_server import ServerProcess

    tool = "wrk" if shutil.which("wrk") else "python loadgen (wrk missing)"
    port = free_port()
    ceiling = _ceiling(port, workers)
    server = ServerProcess(data_dir, workers=workers, **UNLIMITED)
    try:
        wait_for(f"http://127.0.0.1:{port}/")
        server.start()
        token = server.token("user0")
        targets = {
            "ceiling": (f"http://127.0.0.1:{port}/images/x", "x"),
            "GET /images/{id}": (f"{server.url}/images/{image_id}", token),
            "GET /images?limit=50": (f"{server.url}/images?limit=50", token),
        }
        loads: dict[str, Callable[[], dict[str, float]]] = {
            name: partial(load, url, bearer, seconds, work)
            for name, (url, bearer) in targets.items()
        }
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in loads}
        for round_ in range(rounds):
            for name in rotated(list(loads), round_):
                samples[name].append(loads[name]())
    finally:
        server.stop()
        stop(ceiling)

    top = [sample["requests_per_second"] for sample in samples["ceiling"]]
    rows = [
        Row(
            FAMILY,
            f"ceiling: granian+Starlette, 200 B JSON ({workers} worker(s))",
            median(top),
            "req/s",
            note=f"{spread(top, '{:,.0f}')} over {rounds} rounds ({tool})",
            extra={"workers": workers},
        )
    ]
    for name, share in READS.items():
        got = samples[name]
        served = [sample["requests_per_second"] for sample in got]
        ratios = [ours / theirs for ours, theirs in zip(served, top, strict=True)]
        failed = sum(sample["non2xx"] for sample in got)
        note = (
            f"{median(ratios):.2f}x its round's ceiling ({spread(ratios, '{:.2f}')} over "
            f"{rounds} rounds); p99 {median([s['p99_ms'] for s in got]):.2f} ms"
        )
        if failed:
            note += f", {failed:.0f} failed"
        rows.append(
            Row(
                FAMILY,
                f"{name} ({images} images, {CONNECTIONS} conn, {workers} worker(s))",
                median(served),
                "req/s",
                f"≥ {share}x ceiling",
                median(ratios) >= share and not failed,
                note,
                {"workers": workers, "ratio": median(ratios)},
            )
        )
    return rows


def run(quick: bool, rounds: int | None = None) -> list[Row]:
    images, seconds, default_rounds = (1_000, 3, 3) if quick else (10_000, 8, 5)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-reads-") as temp:
        work = Path(temp)
        image_id = seed(work / "data", images)
        for workers in worker_counts():
            rows += _rows_for(
                workers, work / "data", image_id, images, seconds, rounds or default_rounds, work
            )
    return rows
