"""The embedded default keeps everything across a restart."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.http.server import ServerProcess
from tests.images import image_bytes


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
        image = created.json()
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
