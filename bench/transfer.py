"""Rows 3 and 4: upload and download throughput beside nginx and a disk copy; the server's
peak memory during a 200 MiB upload and download.

An upload is held to a plain disk copy with fsync (the service makes every upload durable
before it answers; nginx's PUT does not), a download to nginx's GET. The sides take turns, in a
rotating order, for several rounds, and each figure of ours is divided by the other side's of
the same round: the median of those ratios is the figure, their spread how much the machine's
other load moved it. After each upload of ours the next side waits for its thumbnail, so that
no side is measured beside the left-over work of another."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

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
    rotated,
    spread,
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


def _disk_copy(source: Path, target: Path) -> float:
    """Seconds of one copy of ``source`` with fsync, as the service makes an upload durable."""
    os.sync()  # as before every request: no side is timed beside another's dirty pages
    started = time.perf_counter()
    shutil.copyfile(source, target)
    with target.open("rb+") as out:
        os.fsync(out.fileno())
    seconds = time.perf_counter() - started
    target.unlink()
    return seconds


def settled(url: str, auth: str, image_id: str) -> None:
    """Wait until the image's thumbnail is made (or failed): the next side measured must not
    share the machine with this upload's left-over work."""
    header = dict([auth.split(": ", 1)])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        image = httpx.get(f"{url}/images/{image_id}", headers=header, timeout=10).json()
        if image["thumbnail_status"] != "pending":
            return
        time.sleep(0.02)


def _throughput(work: Path, quick: bool, rounds: int | None) -> list[Row]:
    from tests.support.http_server import ServerProcess

    # One transfer at a time: one worker process serves it, whatever the machine's cores.
    server = ServerProcess(
        work / "data", workers=1, **UNLIMITED, IMAGECORE_MAX_UPLOAD_BYTES=str(300 * MIB)
    ).start()
    nginx = Nginx(work / "nginx") if ensure_tool("nginx", "nginx") else None
    rows: list[Row] = []
    try:
        auth = f"Authorization: Bearer {server.token('bench')}"
        for size_mib, default_rounds in ((1, 10 if quick else 30), (50, 5 if quick else 9)):
            size = size_mib * MIB
            source = jpeg_file(work / f"{size_mib}.jpg", size)
            _, downloaded = upload(server.url, auth, source)
            settled(server.url, auth, downloaded)

            def ours_up(source: Path = source) -> float:
                seconds, image_id = upload(server.url, auth, source)
                settled(server.url, auth, image_id)
                return seconds

            def ours_down(image_id: str = downloaded) -> float:
                status, seconds, _ = curl("-H", auth, f"{server.url}/images/{image_id}/download")
                assert status == 200
                return seconds

            def disk_copy(source: Path = source) -> float:
                return _disk_copy(source, work / "copy")

            sides: dict[str, Callable[[], float]] = {
                "disk": disk_copy,
                "upload": ours_up,
                "download": ours_down,
            }
            if nginx is not None:
                url = f"{nginx.url}/f{size_mib}"
                assert curl("-T", str(source), url)[0] in (201, 204)

                def nginx_put(source: Path = source, url: str = url) -> float:
                    status, seconds, _ = curl("-T", str(source), url)
                    assert status in (201, 204), status
                    return seconds

                def nginx_get(url: str = url) -> float:
                    status, seconds, _ = curl(url)
                    assert status == 200, status
                    return seconds

                sides |= {"nginx upload": nginx_put, "nginx download": nginx_get}
            seconds: dict[str, list[float]] = {side: [] for side in sides}
            count = rounds or default_rounds
            for round_ in range(count):
                for side in rotated(list(sides), round_):
                    seconds[side].append(sides[side]())
            rows += _transfer_rows(size_mib, seconds, count)
    finally:
        server.stop()
        if nginx is not None:
            stop(nginx.process)
    return rows


def _transfer_rows(size_mib: int, seconds: dict[str, list[float]], rounds: int) -> list[Row]:
    """Each figure of ours against the side it is held to, taken round by round (the sides of
    one round ran next to each other in time), as median and spread."""

    def mib_per_s(side: str) -> float:
        return size_mib / median(seconds[side])

    def ratios(ours: str, theirs: str) -> list[float]:
        return [t / o for o, t in zip(seconds[ours], seconds[theirs], strict=True)]

    disk = mib_per_s("disk")
    has_nginx = "nginx upload" in seconds
    rows = []
    against_disk = ratios("upload", "disk")
    target = 0.5 if size_mib >= 50 else None
    note = (
        f"{median(against_disk):.2f}x disk copy+fsync {disk:.0f} MiB/s "
        f"({spread(against_disk)} over {rounds} rounds)"
    )
    if has_nginx:
        note += f"; nginx PUT (no fsync) {mib_per_s('nginx upload'):.0f} MiB/s"
    rows.append(
        Row(
            FAMILY_THROUGHPUT,
            f"upload {size_mib} MiB (embedded server)",
            mib_per_s("upload"),
            "MiB/s",
            f"≥ {target}x disk copy+fsync" if target else "",
            None if target is None else median(against_disk) >= target,
            note,
            {
                "ours": mib_per_s("upload"),
                "nginx": mib_per_s("nginx upload") if has_nginx else 0.0,
                "disk": disk,
                "ratio": median(against_disk),
            },
        )
    )
    if has_nginx:
        against_nginx = ratios("download", "nginx download")
        note = (
            f"{median(against_nginx):.0%} of nginx {mib_per_s('nginx download'):.0f} MiB/s "
            f"({spread(against_nginx, '{:.0%}')} over {rounds} rounds)"
        )
        ok: bool | None = median(against_nginx) >= 0.6
    else:
        note, ok = "nginx missing", None
    rows.append(
        Row(
            FAMILY_THROUGHPUT,
            f"download {size_mib} MiB (embedded server)",
            mib_per_s("download"),
            "MiB/s",
            "≥ 60% of nginx",
            ok,
            note,
            {
                "ours": mib_per_s("download"),
                "nginx": mib_per_s("nginx download") if has_nginx else 0.0,
                "disk": disk,
            },
        )
    )
    return rows


def _memory(work: Path) -> list[Row]:
    from tests.support.http_server import ServerProcess

    server = ServerProcess(
        work / "rss-data", workers=1, **UNLIMITED, IMAGECORE_MAX_UPLOAD_BYTES=str(300 * MIB)
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


def run(quick: bool, rounds: int | None = None) -> list[Row]:
    if shutil.which("curl") is None:
        from bench.common import skipped

        return [skipped(FAMILY_THROUGHPUT, "transfers", "curl is missing (apt-get install curl)")]
    with tempfile.TemporaryDirectory(prefix="bench-transfer-") as temp:
        return _throughput(Path(temp), quick, rounds) + _memory(Path(temp))
