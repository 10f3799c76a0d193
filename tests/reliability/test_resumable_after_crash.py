"""A resumable upload whose server is killed (SIGKILL, the whole process group) while a piece is
on its way: restarted on the same data dir, the server holds every byte it acknowledged, the
client resumes from the server's offset, and the file becomes the right image; reconcile then
finds nothing left over."""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.support.big_images import padded_png
from tests.support.http_server import ServerProcess, imagecore_command, kill_server

MiB = 1024 * 1024
SIZE = 20 * MiB
TUS = {"Tus-Resumable": "1.0.0"}
OFFSET = {**TUS, "Content-Type": "application/offset+octet-stream"}


def trickled(data: bytes, sent: threading.Event) -> Iterator[bytes]:
    """The bytes a slow client sends: 256 KiB at a time, with pauses, so the kill lands mid-body."""
    for start in range(0, len(data), 256 * 1024):
        yield data[start : start + 256 * 1024]
        if start >= MiB:
            sent.set()
        time.sleep(0.05)


def test_an_upload_cut_by_a_sigkill_resumes_after_the_restart(tmp_path: Path) -> None:
    data = padded_png(SIZE)
    server = ServerProcess(tmp_path / "data", workers=2, IMAGECORE_BACKEND="filesystem").start()
    headers = {"Authorization": f"Bearer {server.token('alice')}"}
    try:
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:
            created = http.post("/files/", headers={**TUS, "Upload-Length": str(SIZE)})
            url = httpx.URL(created.headers["location"]).path  # the restart takes a new port
            first = http.patch(
                url, content=data[: 8 * MiB], headers={**OFFSET, "Upload-Offset": "0"}
            )
            assert first.status_code == 204
            acknowledged = int(first.headers["upload-offset"])

            sent = threading.Event()
            cut: list[BaseException] = []

            def slow_piece() -> None:
                try:
                    http.patch(
                        url,
                        content=trickled(data[acknowledged : acknowledged + 8 * MiB], sent),
                        headers={**OFFSET, "Upload-Offset": str(acknowledged)},
                    )
                except httpx.HTTPError as error:
                    cut.append(error)

            sender = threading.Thread(target=slow_piece)
            sender.start()
            assert sent.wait(30)
            kill_server(server)
            sender.join(30)
            assert cut, "the kill should have cut the piece off"

        server.start()
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:
            head = http.head(url, headers=TUS)
            assert head.status_code == 200
            held = int(head.headers["upload-offset"])
            # Nothing acknowledged is lost; what arrived of the cut piece may be kept, in order.
            assert acknowledged <= held < SIZE
            rest = http.patch(
                url, content=data[held:], headers={**OFFSET, "Upload-Offset": str(held)}
            )
            assert rest.status_code == 204, rest.text
            image = http.get(rest.headers["image-location"]).json()
            assert image["sha256"] == hashlib.sha256(data).hexdigest()
            assert http.get(f"/images/{image['image_id']}/download").content == data

        command = ["reconcile", "--data-dir", str(server.data_dir), "--grace-seconds", "0"]
        reconcile = subprocess.run(
            [imagecore_command(), *command],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "IMAGECORE_BACKEND": "filesystem"},
        )
        assert reconcile.returncode == 0, reconcile.stderr
        assert [path for path in (server.data_dir / "partial").rglob("*") if path.is_file()] == []
    finally:
        server.stop()
