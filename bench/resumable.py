"""Row 7: a 1 GiB resumable upload (tus, the client library's own pieces and checksums) to the
embedded server, held to a disk copy of the file with fsync, the sides in turns for a few
rounds; and the server's peak memory while it takes the upload.

The upload is timed from its creation to the answer naming the image: every piece's checksum
checked and fsynced, then the whole checked as any upload is and stored durably."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import (
    MIB,
    UNLIMITED,
    Row,
    jpeg_file,
    median,
    peak_rss_kib,
    process_tree,
    rotated,
    spread,
)
from bench.transfer import _disk_copy, settled

FAMILY = "7 resumable"
SIZE_MIB = 1024


def _ours(url: str, token: str, source: Path, state: Path) -> Callable[[], float]:
    from entrypoints.client.api import ImagecoreClient, UploadFields
    from entrypoints.client.resumable import ResumeState, TusRoute
    from entrypoints.client.uploads import LocalFile

    file = LocalFile.read(source)

    def upload() -> float:
        with ImagecoreClient(url, token) as client:
            route = TusRoute(client, UploadFields(), ResumeState(state))
            started = time.perf_counter()
            sent = route.send(file, None)
            seconds = time.perf_counter() - started
            settled(url, f"Authorization: Bearer {token}", sent.image["image_id"])
            client.delete(sent.image["image_id"])  # the next round's bytes are new again
        return seconds

    return upload


def run(quick: bool, rounds: int | None = None) -> list[Row]:
    from tests.support.http_server import ServerProcess

    size_mib = 256 if quick else SIZE_MIB
    count = rounds or (1 if quick else 3)
    with tempfile.TemporaryDirectory(prefix="bench-resumable-") as temp:
        work = Path(temp)
        server = ServerProcess(work / "data", workers=1, **UNLIMITED).start()
        try:
            token = server.token("bench")
            source = jpeg_file(work / "big.jpg", size_mib * MIB)
            sides: dict[str, Callable[[], float]] = {
                "disk": lambda: _disk_copy(source, work / "copy"),
                "upload": _ours(server.url, token, source, work / "uploads.json"),
            }
            assert server.process is not None
            processes = process_tree(server.process.pid)
            before = {pid: peak_rss_kib(pid) for pid in processes}
            seconds: dict[str, list[float]] = {side: [] for side in sides}
            for round_ in range(count):
                for side in rotated(list(sides), round_):
                    seconds[side].append(sides[side]())
            growth = max(peak_rss_kib(pid) - before[pid] for pid in processes) / 1024
        finally:
            server.stop()
    ratios = [d / u for u, d in zip(seconds["upload"], seconds["disk"], strict=True)]
    ours = size_mib / median(seconds["upload"])
    disk = size_mib / median(seconds["disk"])
    return [
        Row(
            FAMILY,
            f"resumable upload {size_mib} MiB (tus, 8 MiB pieces, embedded server)",
            ours,
            "MiB/s",
            "",
            None,
            f"{median(ratios):.2f}x disk copy+fsync {disk:.0f} MiB/s "
            f"({spread(ratios)} over {count} rounds)",
            {"ours": ours, "disk": disk, "ratio": median(ratios)},
        ),
        Row(
            FAMILY,
            f"peak RSS growth, {size_mib} MiB resumable upload",
            growth,
            "MiB",
            "< 64 MiB",
            growth < 64,
            f"VmHWM of {len(processes)} server processes",
        ),
    ]
