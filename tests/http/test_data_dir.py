"""The embedded default keeps everything, and only, in its data dir."""

from __future__ import annotations

import contextlib
import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from adapters.disk_reserve import RESERVE_FILE
from adapters.secret_file import SECRET_FILE
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
    server = ServerProcess(tmp_path / "data").start()
    server.stop()
    secret = tmp_path / "data" / "secret.key"
    assert secret.stat().st_mode & 0o077 == 0


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    """This process's umask, and so that of the server and commands it starts."""
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.parametrize("mask", [0o022, 0o000], ids=["umask-022", "umask-000"])
def test_everything_the_server_keeps_is_private_to_its_user_whatever_the_umask(
    tmp_path: Path, mask: int
) -> None:
    data_dir = tmp_path / "data"
    server = ServerProcess(data_dir)
    with umask(mask):
        server.start()
    try:
        headers = {"Authorization": f"Bearer {server.token('alice')}"}
        created = httpx.post(
            f"{server.url}/images", headers=headers, files={"file": ("a.png", image_bytes())}
        )
        assert created.status_code == 201, created.text
        _wait_for_thumbnail(server, created.json()["image_id"], headers)
        # While the server runs, so that SQLite's -wal and -shm files are there too.
        modes = {
            str(path.relative_to(data_dir)): path.lstat().st_mode
            for path in [data_dir, *data_dir.rglob("*")]
        }
    finally:
        server.stop()
    kept = {
        "imagecore.sqlite3",
        "imagecore.sqlite3-wal",
        "imagecore.sqlite3-shm",
        "imagecore.sqlite3-revision",
        SECRET_FILE,
        RESERVE_FILE,
        "tmp",
        "blobs",
        "workers/rate-limit",
        "workers/uploads",
        "workers/leases",
    }
    assert kept <= set(modes), sorted(modes)
    blob_files = [
        name for name, mode in modes.items() if name.startswith("blobs/") and stat.S_ISREG(mode)
    ]
    assert len(blob_files) == 1 + 2 * 3, "the original, two renditions in three formats"
    private = {name: 0o700 if stat.S_ISDIR(mode) else 0o600 for name, mode in modes.items()}
    assert {name: stat.S_IMODE(mode) for name, mode in modes.items()} == private


def _wait_for_thumbnail(server: ServerProcess, image_id: str, headers: dict[str, str]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        image = httpx.get(f"{server.url}/images/{image_id}", headers=headers).json()
        if image["thumbnail_status"] != "pending":
            return
        time.sleep(0.02)


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
