"""The embedded server killed with SIGKILL in the middle of its work, again and again.

Client threads upload (multipart and raw bodies, a few KiB to a few MiB, some sent slowly so that
kills land mid-body), patch and delete while the whole server process group is killed at a random
moment. After each kill the server is restarted on the same data dir, an operator's
``imagecore reconcile --grace-seconds 0`` runs, and the data dir is held to what the clients were
told: nothing acknowledged is lost or half there, acknowledged deletes stay gone, no image is
visible without its bytes, no bytes or temporary files are left that nothing holds, and the
SQLite file is intact. A request the kill cut off may have happened or not, but never by half.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import random
import sqlite3
import struct
import subprocess
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from entrypoints.container import WORKERS_DIR
from imagecore.blob_keys import is_under
from tests.support.http_server import ServerProcess, imagecore_command, kill_server
from tests.support.sample_images import image_bytes

SEED = int(os.environ.get("IMAGECORE_CRASH_SEED", "20261122"))
CRASHES = 24
CLIENT_THREADS = 3
KILL_AFTER_SECONDS = (0.05, 0.4)
SMALLEST_UPLOAD = 4 * 1024
LARGEST_UPLOAD = 4 * 1024 * 1024
# The server reads a JPEG's markers up to the scan from the first MiB, so the padding before it
# stays well below that, as in photographs.
LARGEST_JPEG = 512 * 1024
# Each client keeps at most this many images, so that checking them all after every crash
# stays cheap however many rounds run.
MOST_IMAGES_PER_CLIENT = 12
PACED_CHUNK = 64 * 1024
PACED_PAUSE_SECONDS = 0.002
REQUEST_TIMEOUT_SECONDS = 60.0

TEMP_PREFIX = ".tmp-"
SQLITE_FILE = "imagecore.sqlite3"
# What the server keeps in its data dir besides the blob area (SQLite's WAL files come and go;
# the revision file tells every process when the database changed; the disk reserve is the room
# kept for deletes on a full disk).
DATA_DIR_FILES = {
    SQLITE_FILE,
    f"{SQLITE_FILE}-wal",
    f"{SQLITE_FILE}-shm",
    f"{SQLITE_FILE}-revision",
    "secret.key",
    "disk-reserve",
}


# --- images: real PNGs and JPEGs grown to a chosen size with random bytes in a metadata chunk ---


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def padded_png(size: int, rng: random.Random) -> bytes:
    """A PNG of about ``size`` bytes: a private ancillary chunk right after IHDR, which decoders
    skip and which keeps IHDR in the first bytes, where the server reads the dimensions."""
    plain = image_bytes("image/png", rng.randint(4, 64), rng.randint(4, 64))
    after_ihdr = 8 + 25  # signature, then IHDR: length, type, 13 bytes of data, CRC
    padding = _png_chunk(b"paDd", rng.randbytes(max(size - len(plain) - 12, 1)))
    return plain[:after_ihdr] + padding + plain[after_ihdr:]


def padded_jpeg(size: int, rng: random.Random) -> bytes:
    """A JPEG of about ``size`` bytes: APP15 segments of random bytes just before the scan, so
    that the frame header (the dimensions) stays in the first bytes."""
    plain = image_bytes("image/jpeg", rng.randint(4, 64), rng.randint(4, 64))
    position = 2  # after SOI, walk the segments to the start of scan
    while plain[position : position + 2] != b"\xff\xda":
        position += 2 + int.from_bytes(plain[position + 2 : position + 4], "big")
    segments = []
    remaining = max(size - len(plain), 1)
    while remaining > 0:
        data = rng.randbytes(min(remaining, 65_533))
        segments.append(b"\xff\xef" + struct.pack(">H", len(data) + 2) + data)
        remaining -= len(data) + 4
    return plain[:position] + b"".join(segments) + plain[position:]


def random_image(rng: random.Random) -> bytes:
    # log-uniform: mostly small images, and some large enough to be cut off mid-body
    size = int(SMALLEST_UPLOAD * (LARGEST_UPLOAD / SMALLEST_UPLOAD) ** rng.random())
    if size <= LARGEST_JPEG and rng.random() < 0.5:
        return padded_jpeg(size, rng)
    return padded_png(size, rng)


def paced(data: bytes) -> Iterator[bytes]:
    """The bytes as a slow client sends them, so that a kill finds the body half received."""
    for start in range(0, len(data), PACED_CHUNK):
        yield data[start : start + PACED_CHUNK]
        time.sleep(PACED_PAUSE_SECONDS)


# --- what the clients were told ---------------------------------------------------------------


@dataclass
class KnownImage:
    """An image a client was told exists, and the titles it may have after a crash: the last
    acknowledged one, or that of a PATCH the crash cut off."""

    sha256: str
    size: int
    title: str
    unanswered_titles: set[str] = field(default_factory=set)


@dataclass
class Ledger:
    """One client's images. Only its own thread changes them, so their operations are ordered."""

    user: str
    live: dict[str, KnownImage] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    # requests a crash cut off: they may or may not have happened
    unanswered_uploads: dict[str, int] = field(default_factory=dict)  # sha256 -> size
    unanswered_deletes: set[str] = field(default_factory=set)
    uploads_acknowledged: int = 0
    deletes_acknowledged: int = 0
    patches_acknowledged: int = 0


class Client:
    """One thread's stream of uploads, patches and deletes, recording every answer it gets."""

    def __init__(self, ledger: Ledger, http: httpx.Client, rng: random.Random) -> None:
        self.ledger = ledger
        self.http = http
        self.rng = rng
        self.failures: list[str] = []
        self._operations = 0

    def run(self, killed: threading.Event) -> None:
        try:
            while not killed.is_set():
                self._operations += 1
                try:
                    self._one_operation()
                except httpx.TransportError:
                    return  # the server is gone; what was cut off is recorded as unanswered
        except Exception as error:  # reported by the test rather than lost in a thread
            self.failures.append(f"{self.ledger.user}: {error!r}")
        finally:
            self.http.close()

    def _one_operation(self) -> None:
        live = self.ledger.live
        if not live or (len(live) < MOST_IMAGES_PER_CLIENT and self.rng.random() < 0.5):
            self._upload()
        elif self.rng.random() < 0.5:
            self._patch(self.rng.choice(sorted(live)))
        else:
            self._delete(self.rng.choice(sorted(live)))

    def _upload(self) -> None:
        data = random_image(self.rng)
        sha256 = hashlib.sha256(data).hexdigest()
        title = f"{self.ledger.user} upload {self._operations}"
        self.ledger.unanswered_uploads[sha256] = len(data)
        if self.rng.random() < 0.5:
            kind = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
            response = self.http.post(
                "/images",
                params={"title": title},
                headers={"Content-Type": kind},
                content=paced(data) if self.rng.random() < 0.5 else data,
            )
        else:
            response = self.http.post(
                "/images",
                files={"file": ("photo", data, "application/octet-stream")},
                data={"title": title, "tags": "crash,test"},
            )
        if response.status_code != 201:
            self.failures.append(f"upload: {response.status_code} {response.text[:200]}")
            return
        del self.ledger.unanswered_uploads[sha256]
        image = response.json()
        if image["sha256"] != sha256 or image["size"] != len(data):
            self.failures.append(f"upload acknowledged other bytes: {image}")
        self.ledger.live[image["image_id"]] = KnownImage(sha256, len(data), title)
        self.ledger.uploads_acknowledged += 1

    def _patch(self, image_id: str) -> None:
        known = self.ledger.live[image_id]
        title = f"{self.ledger.user} patch {self._operations}"
        known.unanswered_titles.add(title)
        response = self.http.patch(f"/images/{image_id}", json={"title": title})
        if response.status_code != 200:
            self.failures.append(f"patch {image_id}: {response.status_code} {response.text}")
            return
        known.title = title
        known.unanswered_titles.clear()
        self.ledger.patches_acknowledged += 1

    def _delete(self, image_id: str) -> None:
        self.ledger.unanswered_deletes.add(image_id)
        response = self.http.delete(f"/images/{image_id}")
        if response.status_code != 204:
            self.failures.append(f"delete {image_id}: {response.status_code} {response.text}")
            return
        self.ledger.unanswered_deletes.discard(image_id)
        del self.ledger.live[image_id]
        self.ledger.deleted.add(image_id)
        self.ledger.deletes_acknowledged += 1


# --- the crash, the restart and the operator's reconcile ------------------------------------


def reconcile(data_dir: Path) -> dict[str, int]:
    result = subprocess.run(
        [imagecore_command(), "reconcile", "--data-dir", str(data_dir), "--grace-seconds", "0"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    report: dict[str, int] = json.loads(result.stdout)
    return report


def temporary_files(data_dir: Path) -> list[Path]:
    return [path for path in (data_dir / "blobs").rglob(f"{TEMP_PREFIX}*") if path.is_file()]


# --- the checks -------------------------------------------------------------------------------


def listed_images(http: httpx.Client) -> dict[str, dict[str, Any]]:
    """Every image GET /images shows the caller, following every page."""
    images: dict[str, dict[str, Any]] = {}
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        response = http.get("/images", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        for image in page["images"]:
            assert image["image_id"] not in images, "an image listed twice"
            images[image["image_id"]] = image
        cursor = page["next_cursor"]
        if cursor is None:
            return images


def check_bytes_of_every_listed_image(http: httpx.Client, listed: dict[str, Any]) -> None:
    """No image is visible without its bytes, whole: it downloads with its recorded size and
    hash, and a thumbnail said to be ready is there too."""
    for image_id, image in listed.items():
        download = http.get(f"/images/{image_id}/download")
        assert download.status_code == 200, f"{image_id} is listed, its download is {download}"
        assert len(download.content) == image["size"], f"{image_id} has half its bytes"
        assert hashlib.sha256(download.content).hexdigest() == image["sha256"], image_id
        if image["thumbnail_status"] == "ready":
            thumbnail = http.get(f"/images/{image_id}/thumbnail")
            assert thumbnail.status_code == 200, f"{image_id}'s ready thumbnail is {thumbnail}"
            assert thumbnail.content


def settle_ledger(ledger: Ledger, http: httpx.Client) -> set[str]:
    """Check what the server shows against what the client was told, then take the outcome of
    each request the crash cut off as it turned out. Returns the keys of the listed images'
    originals."""
    listed = listed_images(http)
    check_bytes_of_every_listed_image(http, listed)

    for image_id, known in list(ledger.live.items()):
        if image_id not in listed and image_id in ledger.unanswered_deletes:
            del ledger.live[image_id]  # the cut-off delete happened
            ledger.deleted.add(image_id)
            continue
        assert image_id in listed, f"acknowledged upload {image_id} of {ledger.user} is lost"
        image = listed[image_id]
        assert image["sha256"] == known.sha256, f"{image_id} holds other bytes than uploaded"
        assert image["size"] == known.size, image_id
        assert image["title"] in {known.title, *known.unanswered_titles}, (
            f"{image_id} is titled {image['title']!r}; the last acknowledged PATCH set "
            f"{known.title!r}"
        )
        known.title = image["title"]
        known.unanswered_titles.clear()

    for image_id in ledger.deleted:
        assert image_id not in listed, f"deleted image {image_id} is listed again"
    for image_id in ledger.unanswered_deletes & ledger.deleted:
        response = http.get(f"/images/{image_id}")
        assert response.status_code == 404, f"deleted image {image_id} answers {response}"

    sizes_by_hash = ledger.unanswered_uploads
    for image_id, image in listed.items():
        if image_id in ledger.live:
            continue
        # The only images no answer told of are uploads the crash cut off, and then whole.
        assert image["sha256"] in sizes_by_hash, f"{image_id} was never uploaded: {image}"
        assert image["size"] == sizes_by_hash[image["sha256"]], f"{image_id} is half stored"
        ledger.live[image_id] = KnownImage(image["sha256"], image["size"], image["title"])
    ledger.unanswered_uploads.clear()
    ledger.unanswered_deletes.clear()

    return {f"images/{ledger.user}/{image_id}" for image_id in listed}


def check_every_deleted_image_is_gone(ledger: Ledger, http: httpx.Client) -> None:
    for image_id in ledger.deleted:
        for path in (f"/images/{image_id}", f"/images/{image_id}/download"):
            response = http.get(path)
            assert response.status_code == 404, f"deleted {path} answers {response}"


def check_data_dir_holds_nothing_stray(data_dir: Path, originals: set[str]) -> None:
    """Every file in the blob area is the original of a listed image or made from it (under
    its key: blob_keys); no temporary file survives reconcile, and nothing else lies about the
    data dir."""
    for path in (data_dir / "blobs").rglob("*"):
        if not path.is_file():
            continue
        assert not path.name.startswith(TEMP_PREFIX), f"{path} is left from a killed write"
        key = unquote(path.name)
        assert any(is_under(key, original) for original in originals), (
            f"{path} holds bytes no listed image holds"
        )
    workers = data_dir / WORKERS_DIR
    strays = [
        path
        for path in data_dir.rglob("*")
        if path.is_file()
        and path.name not in DATA_DIR_FILES
        and not path.is_relative_to(data_dir / "blobs")
        and not path.is_relative_to(workers)
    ]
    assert strays == [], f"files left in the data dir: {strays}"
    # The workers' shared state is remade at each start; a killed worker's lease may stay
    # until then, but never one of a process that is gone once the server has started again.
    for lease in (workers / "leases").iterdir():
        fd = os.open(lease, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)


def check_sqlite_is_intact_and_settled(data_dir: Path) -> None:
    """The SQLite file passes its integrity check, and reconcile left no delete unfinished: a
    tombstone is invisible through the API, so only the file shows one that lingers."""
    connection = sqlite3.connect(data_dir / SQLITE_FILE)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        unfinished = connection.execute(
            "SELECT image_id FROM images WHERE state = 'deleting'"
        ).fetchall()
        assert unfinished == [], f"deletes reconcile did not finish: {unfinished}"
    finally:
        connection.close()


# --- the test ---------------------------------------------------------------------------------


def user_client(server: ServerProcess, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=REQUEST_TIMEOUT_SECONDS,
    )


def stream_until_killed(
    server: ServerProcess, ledgers: list[Ledger], tokens: dict[str, str], rng: random.Random
) -> None:
    """Every client works against the server until it is killed, a random moment in."""
    killed = threading.Event()
    clients = [
        Client(ledger, user_client(server, tokens[ledger.user]), random.Random(rng.random()))
        for ledger in ledgers
    ]
    threads = [threading.Thread(target=client.run, args=(killed,)) for client in clients]
    for thread in threads:
        thread.start()
    time.sleep(rng.uniform(*KILL_AFTER_SECONDS))
    kill_server(server)
    killed.set()
    for thread in threads:
        thread.join(timeout=REQUEST_TIMEOUT_SECONDS)
        assert not thread.is_alive(), "a client hangs on a killed server"
    failures = [failure for client in clients for failure in client.failures]
    assert failures == [], "the server refused requests before the kill"


def check_after_restart(
    server: ServerProcess, ledgers: list[Ledger], tokens: dict[str, str]
) -> None:
    originals: set[str] = set()
    for ledger in ledgers:
        with user_client(server, tokens[ledger.user]) as http:
            originals |= settle_ledger(ledger, http)
    check_data_dir_holds_nothing_stray(server.data_dir, originals)
    check_sqlite_is_intact_and_settled(server.data_dir)


def test_acknowledged_writes_survive_sigkill_and_reconcile_leaves_nothing_stray(
    tmp_path: Path, record_property: Any
) -> None:
    rng = random.Random(SEED)
    server = ServerProcess(
        tmp_path / "data",
        IMAGECORE_BACKEND="filesystem",
        IMAGECORE_RATE_LIMIT_BURST="1000000",
        IMAGECORE_RATE_LIMIT_PER_SECOND="1000000",
    ).start()
    ledgers = [Ledger(f"crash-client-{n}") for n in range(CLIENT_THREADS)]
    tokens = {ledger.user: server.token(ledger.user) for ledger in ledgers}
    crashes = kills_mid_write = 0
    reconciled = {"deletes_finished": 0, "orphans_removed": 0}
    seconds = {"streaming": 0.0, "restarting": 0.0, "reconciling": 0.0, "checking": 0.0}
    started = time.monotonic()
    try:
        for _ in range(CRASHES):
            phase_started = time.monotonic()

            def phase_done(name: str) -> None:
                nonlocal phase_started
                seconds[name] += time.monotonic() - phase_started
                phase_started = time.monotonic()

            stream_until_killed(server, ledgers, tokens, rng)
            crashes += 1
            kills_mid_write += bool(temporary_files(server.data_dir))
            phase_done("streaming")
            server.start()
            phase_done("restarting")
            report = reconcile(server.data_dir)
            for name in reconciled:
                reconciled[name] += report[name]
            phase_done("reconciling")
            check_after_restart(server, ledgers, tokens)
            phase_done("checking")

        for ledger in ledgers:
            with user_client(server, tokens[ledger.user]) as http:
                check_every_deleted_image_is_gone(ledger, http)
    finally:
        server.stop()

    acknowledged = {
        "uploads": sum(ledger.uploads_acknowledged for ledger in ledgers),
        "patches": sum(ledger.patches_acknowledged for ledger in ledgers),
        "deletes": sum(ledger.deletes_acknowledged for ledger in ledgers),
    }
    record_property("crashes_survived", crashes)
    print(
        f"\nsurvived {crashes} SIGKILL crashes in {time.monotonic() - started:.1f} s"
        f" (seed {SEED}; {', '.join(f'{name} {spent:.1f} s' for name, spent in seconds.items())});"
        f" {kills_mid_write} kills left a write half done; acknowledged {acknowledged};"
        f" reconcile {reconciled}"
    )
    assert crashes == CRASHES
    assert all(acknowledged.values()), "the stream never got some kind of request through"
