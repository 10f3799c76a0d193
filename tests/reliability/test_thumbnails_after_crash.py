"""The embedded server killed with SIGKILL right after it acknowledged a burst of uploads: once
restarted on the same data dir, it makes every thumbnail they asked for. Their jobs waited in
its database, committed with the images, not in the memory of the processes that died."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.support.big_images import uniform_png
from tests.support.http_server import ServerProcess, kill_server

UPLOADS = 40
SIDE = 3000
"""Pixels on each side of the uploads: a few hundred KB each, quick to send, but 9 megapixels
to decode, so the thumbnails fall behind the uploads and the kill finds most of them queued."""
CLIENTS = 4
DEADLINE_SECONDS = 180  # how long the test waits for the thumbnails; never a measurement


def upload(http: httpx.Client, number: int) -> str:
    picture = uniform_png(SIDE, SIDE, colour=(number, 255 - number, 128))
    response = http.post("/images", files={"file": (f"{number}.png", picture, "image/png")})
    assert response.status_code == 201, response.text
    image_id: str = response.json()["image_id"]
    return image_id


def thumbnail_statuses(http: httpx.Client) -> dict[str, str]:
    statuses: dict[str, str] = {}
    cursor = None
    while True:
        params = {"limit": "100"} if cursor is None else {"limit": "100", "cursor": cursor}
        page = http.get("/images", params=params).json()
        statuses |= {image["image_id"]: image["thumbnail_status"] for image in page["images"]}
        cursor = page["next_cursor"]
        if cursor is None:
            return statuses


def test_every_thumbnail_asked_for_before_a_sigkill_is_made_after_the_restart(
    tmp_path: Path,
) -> None:
    server = ServerProcess(
        tmp_path / "data",
        workers=2,
        IMAGECORE_BACKEND="filesystem",
        IMAGECORE_RATE_LIMIT_BURST="1000000",
        IMAGECORE_RATE_LIMIT_PER_SECOND="1000000",
        # One at a time, so that the thumbnails fall well behind the uploads; the one running
        # at the kill is taken again after the restart, its process being gone.
        IMAGECORE_JOB_WORKERS="1",
    ).start()
    headers = {"Authorization": f"Bearer {server.token('alice')}"}
    try:
        with (
            httpx.Client(base_url=server.url, headers=headers, timeout=60) as http,
            ThreadPoolExecutor(CLIENTS) as clients,
        ):
            uploaded = set(clients.map(lambda number: upload(http, number), range(UPLOADS)))
        kill_server(server)

        server.start()
        deadline = time.monotonic() + DEADLINE_SECONDS
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:
            statuses = thumbnail_statuses(http)
            while set(statuses.values()) != {"ready"} and time.monotonic() < deadline:
                time.sleep(0.2)
                statuses = thumbnail_statuses(http)
    finally:
        server.stop()

    assert statuses.keys() == uploaded
    not_ready = {image_id: status for image_id, status in statuses.items() if status != "ready"}
    assert not_ready == {}, f"{len(not_ready)} of {UPLOADS} thumbnails never made"
