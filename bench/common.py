"""What every benchmark shares: the result row, ports, processes, tools and test images."""

from __future__ import annotations

import io
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MIB = 1024 * 1024

# The embedded server limits each user to 20 requests/s; a load test measures the server, not it.
UNLIMITED = {
    "IMAGECORE_RATE_LIMIT_PER_SECOND": "100000000",
    "IMAGECORE_RATE_LIMIT_BURST": "100000000",
    "IMAGECORE_BACKEND": "filesystem",
}


@dataclass
class Row:
    """One line of the results table."""

    family: str  # "1 HTTP reads", "2 list scaling", ...
    name: str
    value: float | None
    unit: str
    target: str = ""
    ok: bool | None = None  # None: no target, or not measured
    note: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        if self.value is None:
            return "skipped"
        return {True: "met", False: "MISSED", None: ""}[self.ok]


def skipped(family: str, name: str, why: str) -> Row:
    return Row(family, name, None, "", note=why)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {seconds:.0f} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a process started with start_new_session=True, and its children."""
    if process.poll() is None:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident set size so far (VmHWM), in KiB; 0 if it has none."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def process_tree(root: int) -> list[int]:
    """The process and its descendants (the server and its granian workers)."""
    found = [root]
    for child in Path(f"/proc/{root}/task/{root}/children").read_text().split():
        found += process_tree(int(child))
    return found


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def spread(samples: list[float], number: str = "{:.2f}") -> str:
    """The range of ``samples``, as "min-max" in the ``number`` format."""
    return f"{number.format(min(samples))}-{number.format(max(samples))}"


def rotated(sides: list[str], round_: int) -> list[str]:
    """The order the sides of a comparison are measured in, in round ``round_``: each side
    goes first in turn, so none is always measured after (or beside the leftovers of) another."""
    shift = round_ % len(sides)
    return sides[shift:] + sides[:shift]


def ensure_tool(name: str, package: str) -> str | None:
    """The tool's path, installing Debian's package when missing and root; None if missing."""
    found = shutil.which(name) or (
        f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
    )
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        print(f"  {name} is missing (apt-get install {package} as root); its rows are skipped")
        return None
    print(f"  installing {package} with apt-get ...")
    subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", package], check=False, capture_output=True)
    return shutil.which(name) or (
        f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
    )


def small_jpeg() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


def jpeg_file(path: Path, size: int) -> Path:
    """A real JPEG followed by random padding up to ``size`` bytes (decoders stop at its end)."""
    head = small_jpeg()
    with path.open("wb") as out:
        out.write(head)
        left = size - len(head)
        block = os.urandom(MIB)
        while left > 0:
            left -= out.write(block[: min(MIB, left)])
    return path


def photo_like(width: int, height: int) -> Any:
    """A pyvips image of smooth gradients under noise: it compresses like a photograph, not
    like a bomb."""
    import pyvips  # only the benches that make images need libvips

    xy = pyvips.Image.xyz(width, height)
    x, y = xy[0], xy[1]
    red = x * (255 / width)
    green = y * (255 / height)
    blue = ((x + y) * (255 / (width + height)) - 128).abs() * 2
    noise = pyvips.Image.gaussnoise(width, height, sigma=12, mean=0)
    return (red.bandjoin([green, blue]) + noise).cast("uchar")
