"""Row 1: metadata reads on the embedded server under 16 connections, beside the stack's ceiling."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import BIN, REPOSITORY_ROOT, UNLIMITED, Row, free_port, small_jpeg, stop, wait_for

FAMILY = "1 HTTP reads"
CONNECTIONS = 16

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


def seed(data_dir: Path, count: int) -> str:
    """Upload ``count`` images through the use cases; the id of one of user0's."""
    from entrypoints.container import build_container
    from entrypoints.settings import Settings
    from imagecore.commands import UploadCommand

    images = build_container(Settings(data_dir=data_dir)).images()
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
    return first


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


def run(quick: bool) -> list[Row]:
    from tests.support.http_server import ServerProcess

    images, seconds = (1_000, 5) if quick else (10_000, 15)
    tool = "wrk" if shutil.which("wrk") else "python loadgen (wrk missing)"
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-reads-") as temp:
        work = Path(temp)
        image_id = seed(work / "data", images)
        port = free_port()
        ceiling = subprocess.Popen(
            [
                BIN / "granian",
                "--interface",
                "asgi",
                "--http",
                "1",
                "--workers",
                "1",
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
        try:
            wait_for(f"http://127.0.0.1:{port}/")
            top = load(f"http://127.0.0.1:{port}/images/x", "x", seconds, work)
        finally:
            stop(ceiling)
        rows.append(
            Row(
                FAMILY,
                "ceiling: granian+Starlette, 200 B JSON",
                top["requests_per_second"],
                "req/s",
                note=f"p50 {top['p50_ms']:.2f} ms, p99 {top['p99_ms']:.2f} ms ({tool})",
                extra=top,
            )
        )
        server = ServerProcess(work / "data", **UNLIMITED).start()
        try:
            token = server.token("user0")
            for name, path in (
                ("GET /images/{id}", f"/images/{image_id}"),
                ("GET /images?limit=50", "/images?limit=50"),
            ):
                got = load(server.url + path, token, seconds, work)
                ratio = got["requests_per_second"] / top["requests_per_second"]
                note = (
                    f"p50 {got['p50_ms']:.2f} ms, p99 {got['p99_ms']:.2f} ms, {ratio:.2f}x ceiling"
                )
                if got["non2xx"]:
                    note += f", {got['non2xx']:.0f} failed"
                rows.append(
                    Row(
                        FAMILY,
                        f"{name} ({images} images, {CONNECTIONS} conn)",
                        got["requests_per_second"],
                        "req/s",
                        "≥ 0.5x ceiling",
                        ratio >= 0.5 and not got["non2xx"],
                        note,
                        {**got, "ratio": ratio},
                    )
                )
        finally:
            server.stop()
    return rows
