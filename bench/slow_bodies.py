"""Row 6: how `imagecore serve` answers everyone else while 200 clients trickle their bodies.

Half the trickling clients post to upload links with no credential, half are uploads of 100
users (one each); each sends a byte every 10 s. Meanwhile one client asks, in turn, for
``/health``, an image (``GET /images/{id}``) and a change of it (``PATCH``), and the latency of
each is recorded: the p99 of each is the figure, against a target of 1 s. The same requests
without the trickling clients are the baseline.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench.common import (
    BIN,
    UNLIMITED,
    Row,
    free_port,
    percentile,
    small_jpeg,
    stop,
    wait_for,
)

FAMILY = "6 slow bodies"
TRICKLERS = 200
TARGET_SECONDS = 1.0
REQUEST_TIMEOUT = 10.0
"""A request that takes longer counts as this long: it is a miss either way."""


def _serve(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        # One worker, as the row has always been measured: capacity is counted per process.
        [
            str(BIN / "imagecore"),
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--workers",
            "1",
        ],
        env={**os.environ, **UNLIMITED},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    wait_for(f"{url}/health")
    return process, url


def _token(data_dir: Path, user: str) -> str:
    done = subprocess.run(
        [str(BIN / "imagecore"), "token", user, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def _heads(data_dir: Path) -> list[bytes]:
    heads = []
    for _ in range(TRICKLERS // 2):
        upload_id = "01J" + "".join(secrets.choice("ABCDEFGHJKMNPQRSTVWXYZ") for _ in range(23))
        heads.append(
            f"POST /uploads/{upload_id} HTTP/1.1\r\nHost: bench\r\n".encode()
            + b"Content-Type: multipart/form-data; boundary=b0undary\r\n"
            + b"Content-Length: 10000000\r\n\r\n--b0undary\r\n"
        )
    for user in range(TRICKLERS // 2):
        token = _token(data_dir, f"trickler-{user}")
        heads.append(
            b"POST /images HTTP/1.1\r\nHost: bench\r\nContent-Type: image/png\r\n"
            + f"Authorization: Bearer {token}\r\n".encode()
            + b"Content-Length: 10000000\r\n\r\n\x89PNG"
        )
    return heads


@contextlib.contextmanager
def _trickling(url: str, heads: list[bytes]) -> Iterator[None]:
    port = int(url.rsplit(":", 1)[1])
    connections = []
    for head in heads:
        connection = socket.create_connection(("127.0.0.1", port), timeout=5)
        connection.sendall(head)
        connections.append(connection)
    done = threading.Event()

    def trickle() -> None:
        while not done.wait(10):
            for connection in connections:
                with contextlib.suppress(OSError):
                    connection.sendall(b"x")

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    time.sleep(1)  # every body is now waiting in the server
    try:
        yield
    finally:
        done.set()
        for connection in connections:
            connection.close()


def _latencies(url: str, token: str, image_id: str, rounds: int) -> dict[str, list[float]]:
    auth = {"Authorization": f"Bearer {token}"}
    seconds: dict[str, list[float]] = {"health": [], "get": [], "patch": []}
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT) as client:
        requests = {
            "health": lambda n: client.get("/health"),
            "get": lambda n: client.get(f"/images/{image_id}", headers=auth),
            "patch": lambda n: client.patch(
                f"/images/{image_id}", headers=auth, json={"title": f"round {n}"}
            ),
        }
        for n in range(rounds):
            for name, send in requests.items():
                began = time.perf_counter()
                try:
                    send(n).raise_for_status()
                    seconds[name].append(time.perf_counter() - began)
                except httpx.HTTPError:
                    seconds[name].append(REQUEST_TIMEOUT)
    return seconds


def run(quick: bool) -> list[Row]:
    rounds = 100 if quick else 300
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch) / "data"
        process, url = _serve(data_dir)
        try:
            token = _token(data_dir, "reader")
            created = httpx.post(
                f"{url}/images",
                headers={"Authorization": f"Bearer {token}"},
                files={"file": ("a.jpg", small_jpeg(), "image/jpeg")},
                timeout=30,
            )
            created.raise_for_status()
            image_id = created.json()["image_id"]
            baseline = _latencies(url, token, image_id, rounds)
            with _trickling(url, _heads(data_dir)):
                loaded = _latencies(url, token, image_id, rounds)
        finally:
            stop(process)
    for name in ("health", "get", "patch"):
        p99 = percentile(loaded[name], 0.99)
        rows.append(
            Row(
                FAMILY,
                f"{name} p99 with {TRICKLERS} trickling bodies",
                p99 * 1000,
                "ms",
                target=f"< {TARGET_SECONDS * 1000:.0f} ms",
                ok=p99 < TARGET_SECONDS,
                note=(
                    f"p50 {percentile(loaded[name], 0.5) * 1000:.1f} ms; without them p99 "
                    f"{percentile(baseline[name], 0.99) * 1000:.1f} ms; {rounds} requests"
                ),
            )
        )
    return rows
