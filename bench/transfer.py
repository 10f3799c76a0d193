"""Rows 3 and 4: upload and download throughput beside nginx and a disk copy; the server's
peak memory during a 200 MiB upload and download."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import (
    MIB,
    UNLIMITED,
    Row,
    ensure_tool,
    free_port,
    jpeg_file,
    median,
    peak_rss_kib,
    process_tree,
    stop,
)

FAMILY_THROUGHPUT = "3 transfer"
FAMILY_MEMORY = "4 memory"

_NGINX_CONF = """
daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log;
{user}
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile on;
    client_max_body_size 0;
    client_body_buffer_size 1m;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root}/www;
        location / {{ dav_methods PUT; create_full_put_path on; }}
    }}
}}
"""


def curl(*arguments: str) -> tuple[int, float, str]:
    """Status, seconds and body of one curl request (the same client for every server); status
    0 when there was no answer (not listening yet).

    Dirty pages are written out first: nginx's PUT leaves its writes in the page cache, and
    when the kernel flushes them in the middle of a later request, that request's figure is
    the flush's (nginx's 50 MiB PUT measured 377 to 2,251 MiB/s in three runs without this)."""
    os.sync()
    with tempfile.NamedTemporaryFile() as body:
        done = subprocess.run(
            ["curl", "-s", "-H", "Expect:", "-o", body.name, "-w", "%{http_code} %{time_total}",
             *arguments],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            return 0, 0.0, ""
        status, seconds = done.stdout.split()
        return int(status), float(seconds), Path(body.name).read_text(errors="replace")


def upload(url: str, auth: str, path: Path) -> tuple[float, str]:
    """Seconds and image id of one raw-body upload of ``path`` to the service at ``url``."""
    status, seconds, body = curl(
        "-X", "POST", "-H", auth, "-H", "Content-Type: image/jpeg", "-T", str(path),
        f"{url}/images",
    )  # fmt: skip
    assert status == 201, body
    return seconds, str(json.loads(body)["image_id"])


class Nginx:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (root / "www").mkdir(parents=True)
        user = "user root;" if os.geteuid() == 0 else ""  # root's workers would be nobody
        conf = root / "nginx.conf"
        conf.write_text(_NGINX_CONF.format(root=root, port=self.port, user=user))
        self.process = subprocess.Popen(
            ["nginx", "-p", str(root), "-c", str(conf), "-e", str(root / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while curl(f"{self.url}/")[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)


def _mib_per_s(size: int, seconds: list[float]) -> float:
    return size / MIB / median(seconds)


def _disk_copy(source: Path, target: Path, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        shutil.copyfile(source, target)
        with target.open("rb+") as out:
            os.fsync(out.fileno())  # as the service does before it answers
        times.append(time.perf_counter() - started)
        target.unlink()
    return _mib_per_s(source.stat().st_size, times)


def _throughput(work: Path, quick: bool) -> list[Row]:
    from tests.support.http_server import ServerProcess

    server = ServerProcess(
        work / "data", **UNLIMITED, IMAGECORE_MAX_UPLOAD_BYTES=str(300 * MIB)
    ).start()
    nginx = Nginx(work / "nginx") if ensure_tool("nginx", "nginx") else None
    rows: list[Row] = []
    try:
        auth = f"Authorization: Bearer {server.token('bench')}"
        for size_mib, repeats in ((1, 10 if quick else 30), (50, 3 if quick else 6)):
            size = size_mib * MIB
            source = jpeg_file(work / f"{size_mib}.jpg", size)
            # nginx first: after our uploads, their thumbnails are still being made in the
            # background, and nginx would be measured beside that work.
            theirs: dict[str, float] = {}
            if nginx is not None:
                put, get = [], []
                for n in range(repeats):
                    status, seconds, _ = curl("-T", str(source), f"{nginx.url}/f{size_mib}-{n}")
                    assert status in (201, 204), status
                    put.append(seconds)
                for _ in range(repeats):
                    status, seconds, _ = curl(f"{nginx.url}/f{size_mib}-0")
                    assert status == 200
                    get.append(seconds)
                theirs = {"upload": _mib_per_s(size, put), "download": _mib_per_s(size, get)}
            up, down, image_id = [], [], ""
            for _ in range(repeats):
                seconds, image_id = upload(server.url, auth, source)
                up.append(seconds)
            for _ in range(repeats):
                status, seconds, _ = curl("-H", auth, f"{server.url}/images/{image_id}/download")
                assert status == 200
                down.append(seconds)
            ours = {"upload": _mib_per_s(size, up), "download": _mib_per_s(size, down)}
            disk = _disk_copy(source, work / "copy", repeats)
            for way, share in (("download", 0.6), ("upload", 0.5)):
                ratio = ours[way] / theirs[way] if theirs else None
                against = f"nginx {theirs[way]:.0f} MiB/s" if theirs else "nginx missing"
                rows.append(
                    Row(
                        FAMILY_THROUGHPUT,
                        f"{way} {size_mib} MiB (embedded server)",
                        ours[way],
                        "MiB/s",
                        f"≥ {share:.0%} of nginx",
                        None if ratio is None else ratio >= share,
                        f"{against}"
                        + (f", {ratio:.0%} of it" if ratio else "")
                        + f"; disk copy+fsync {disk:.0f} MiB/s"
                        + (
                            "; nginx's PUT does not fsync, the service does"
                            if way == "upload"
                            else ""
                        ),
                        {"ours": ours[way], "nginx": theirs.get(way, 0.0), "disk": disk},
                    )
                )
    finally:
        server.stop()
        if nginx is not None:
            stop(nginx.process)
    return rows


def _memory(work: Path) -> list[Row]:
    from tests.support.http_server import ServerProcess

    server = ServerProcess(
        work / "rss-data", **UNLIMITED, IMAGECORE_MAX_UPLOAD_BYTES=str(300 * MIB)
    ).start()
    try:
        auth = f"Authorization: Bearer {server.token('bench')}"
        warm = jpeg_file(work / "warm.jpg", MIB)
        big = jpeg_file(work / "big.jpg", 200 * MIB)

        curl("-H", auth, f"{server.url}/images/{upload(server.url, auth, warm)[1]}/download")
        assert server.process is not None
        processes = process_tree(server.process.pid)
        before = {pid: peak_rss_kib(pid) for pid in processes}
        image_id = upload(server.url, auth, big)[1]
        middle = {pid: peak_rss_kib(pid) for pid in processes}
        status, _, _ = curl("-H", auth, f"{server.url}/images/{image_id}/download")
        assert status == 200
        after = {pid: peak_rss_kib(pid) for pid in processes}
    finally:
        server.stop()
    rows = []
    for name, peaks in (("200 MiB upload", middle), ("200 MiB upload + download", after)):
        growth = max(peaks[pid] - before[pid] for pid in processes) / 1024
        rows.append(
            Row(
                FAMILY_MEMORY,
                f"peak RSS growth, {name}",
                growth,
                "MiB",
                "< 64 MiB",
                growth < 64,
                f"VmHWM of {len(processes)} server processes",
            )
        )
    return rows


def run(quick: bool) -> list[Row]:
    if shutil.which("curl") is None:
        from bench.common import skipped

        return [skipped(FAMILY_THROUGHPUT, "transfers", "curl is missing (apt-get install curl)")]
    with tempfile.TemporaryDirectory(prefix="bench-transfer-") as temp:
        return _throughput(Path(temp), quick) + _memory(Path(temp))
