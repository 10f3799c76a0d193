"""The embedded default keeps everything, and only, in its data dir."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.http_server import ServerProcess
from tests.support.sample_images import image_bytes


def test_restarting_the_server_keeps_every_image_and_every_token(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data").start()
    try:
        token = server.token("alice")
        headers = {"Authorization": f"Bearer {token}"}
        data = image_bytes("image/webp", 12, 9)
        created = httpx.post(
            f"{server.url}/images", headers=headers, files={"file": ("a.webp", data)},
            data={"title": "kept", "tags": "x,y"},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        image_id = created.json()["image_id"]
        deadline = time.monotonic() + 20  # the thumbnail job settles before the restart
        while True:
            image = httpx.get(f"{server.url}/images/{image_id}", headers=headers).json()
            if image["thumbnail_status"] != "pending" or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert image["thumbnail_status"] == "ready"
    finally:
        server.stop()

    server.start()
    try:
        fetched = httpx.get(f"{server.url}/images/{image['image_id']}", headers=headers)
        assert fetched.status_code == 200
        assert fetched.json() == image
        download = httpx.get(f"{server.url}/images/{image['image_id']}/download", headers=headers)
        assert download.content == data
        listed = httpx.get(f"{server.url}/images", headers=headers, params={"tags": "x"}).json()
        assert [i["image_id"] for i in listed["images"]] == [image["image_id"]]
    finally:
        server.stop()


def test_the_data_dir_holds_the_secret_readable_by_its_owner_only(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data")
    server.token("alice")
    secret = tmp_path / "data" / "secret.key"
    assert secret.stat().st_mode & 0o077 == 0


@pytest.mark.skipif(
    not Path("/proc/self/fd").exists(), reason="needs Linux's /proc to see open files"
)
def test_an_upload_in_flight_streams_into_the_data_dir(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data").start()
    try:
        headers = {"Authorization": f"Bearer {server.token('alice')}"}
        sending = threading.Event()

        def body() -> Iterator[bytes]:
            yield (
                b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
                + image_bytes()
                + b"\0" * (1536 * 1024)  # past what the form parser keeps in memory
            )
            sending.set()
            time.sleep(1.5)
            yield b"\r\n--b--\r\n"

        def upload() -> None:
            httpx.post(
                f"{server.url}/images",
                headers={**headers, "Content-Type": "multipart/form-data; boundary=b"},
                content=body(),
                timeout=30,
            )

        uploader = threading.Thread(target=upload)
        uploader.start()
        sending.wait(10)
        time.sleep(0.5)
        open_files = _open_files_of(server.process.pid)
        uploader.join()
    finally:
        server.stop()
    # The bytes go straight to the blob store's temporary file, inside the data dir; nothing
    # spools them anywhere else first.
    blobs = str(tmp_path / "data" / "blobs")
    in_flight = [path for path in open_files if ".tmp-" in path or "(deleted)" in path]
    assert in_flight, open_files
    assert all(path.startswith(blobs) and ".tmp-" in path for path in in_flight), in_flight


def _open_files_of(pid: int) -> list[str]:
    """Every regular file the process and its children hold open."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(child) for child in children.read_text().split()]
    paths = []
    for process in pids:
        for fd in Path(f"/proc/{process}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = str(fd.readlink())
                if target.startswith("/"):
                    paths.append(target)
    return paths
