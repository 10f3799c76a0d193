"""The pixel bomb against a real `imagecore serve` on loopback: the server's peak memory and the
time of one 100-megapixel PNG's thumbnail, and how long another user's small upload waits for
its thumbnail behind 20 such PNGs that a first user uploaded just before.

    .venv/bin/python -m bench.thumbnail_server                      # this checkout's code
    git worktree add /tmp/before main                                # (once) the code before
    .venv/bin/python -m bench.thumbnail_server --server-src /tmp/before/src

``--server-src`` runs the server from another checkout's ``src`` (put first on PYTHONPATH), with
this environment's packages; everything else (the images, the client, the measurement) is
this checkout's. The PNG is the hardening issue's bomb: 10000 x 10000 of one colour, ~300 KB.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import UNLIMITED, peak_rss_kib, process_tree, small_jpeg

BOMBS = 20
TARGET_WAIT_SECONDS = 5.0
TARGET_GROWTH_MIB = 256


class Client:
    def __init__(self, url: str, tokens: dict[str, str]) -> None:
        self.http = httpx.Client(base_url=url, timeout=120)
        self.tokens = tokens

    def upload(self, user: str, data: bytes, content_type: str) -> str:
        response = self.http.post(
            "/images",
            content=data,
            headers={"Authorization": f"Bearer {self.tokens[user]}", "Content-Type": content_type},
        )
        assert response.status_code == 201, response.text
        image_id: str = response.json()["image_id"]
        return image_id

    def settled(self, user: str, image_id: str, timeout: float = 600) -> str:
        """The thumbnail's status once it is no longer pending."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.http.get(
                f"/images/{image_id}", headers={"Authorization": f"Bearer {self.tokens[user]}"}
            )
            status: str = response.json()["thumbnail_status"]
            if status != "pending":
                return status
            time.sleep(0.02)
        raise TimeoutError(f"the thumbnail of {image_id} was still pending after {timeout} s")


def measure(server_src: str | None, work: Path) -> dict[str, float | str]:
    from tests.support.big_images import uniform_png
    from tests.support.http_server import ServerProcess

    environ = dict(UNLIMITED)
    if server_src:
        environ["PYTHONPATH"] = server_src
    server = ServerProcess(work / "data", **environ).start()
    try:
        client = Client(server.url, {user: server.token(user) for user in ("warm", "alice", "bob")})
        bomb = uniform_png(10_000, 10_000)
        photo = small_jpeg()
        client.settled("warm", client.upload("warm", photo, "image/jpeg"))
        assert server.process is not None
        processes = process_tree(server.process.pid)
        before = {pid: peak_rss_kib(pid) for pid in processes}

        started = time.monotonic()
        one = client.upload("alice", bomb, "image/png")
        one_status = client.settled("alice", one)
        one_seconds = time.monotonic() - started
        growth = max(peak_rss_kib(pid) - before[pid] for pid in processes) / 1024

        started = time.monotonic()
        bombs = [client.upload("alice", bomb, "image/png") for _ in range(BOMBS)]
        uploaded = time.monotonic() - started
        asked = time.monotonic()
        bobs = client.upload("bob", photo, "image/jpeg")
        bob_status = client.settled("bob", bobs)
        bob_wait = time.monotonic() - asked
        statuses = [client.settled("alice", image_id) for image_id in bombs]
        all_done = time.monotonic() - started
        growth_all = max(peak_rss_kib(pid) - before[pid] for pid in processes) / 1024
    finally:
        server.stop()
    return {
        "one bomb: thumbnail seconds (upload to settled)": one_seconds,
        "one bomb: thumbnail status": one_status,
        "one bomb: server peak RSS growth MiB": growth,
        f"{BOMBS} bombs: seconds to upload": uploaded,
        "bob's small JPEG: seconds from upload to thumbnail": bob_wait,
        "bob's thumbnail status": bob_status,
        f"{BOMBS} bombs: seconds until all settled": all_done,
        f"{BOMBS} bombs: statuses": ", ".join(sorted(set(statuses))),
        f"{BOMBS} bombs: server peak RSS growth MiB": growth_all,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--server-src", help="run the server from this src directory")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    runs = []
    for round_number in range(1, args.rounds + 1):
        print(f"round {round_number} of {args.rounds} ...", flush=True)
        with tempfile.TemporaryDirectory(prefix="bench-thumbnail-server-") as temp:
            runs.append(measure(args.server_src, Path(temp)))
    print()
    print(
        f"server from {args.server_src or 'this checkout'}; {args.rounds} rounds: median (min-max)"
    )
    print()
    print("| measurement | value |")
    print("|---|---|")
    for name in runs[0]:
        values = [run[name] for run in runs]
        if isinstance(values[0], str):
            shown = " / ".join(str(value) for value in values)
        else:
            numbers = [float(value) for value in values]
            shown = f"{statistics.median(numbers):.2f} ({min(numbers):.2f}-{max(numbers):.2f})"
        print(f"| {name} | {shown} |")
    print()
    print(
        f"targets: peak RSS growth of one bomb < {TARGET_GROWTH_MIB} MiB; "
        f"bob's wait < {TARGET_WAIT_SECONDS:.0f} s"
    )


if __name__ == "__main__":
    main()
