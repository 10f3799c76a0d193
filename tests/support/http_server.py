"""`imagecore serve` run as a user runs it: the installed console script, in its own process,
and the JSON lines it logs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def imagecore_command() -> str:
    return str(Path(sys.executable).with_name("imagecore"))


class ServerProcess:
    def __init__(
        self,
        data_dir: Path,
        command_prefix: Sequence[str] = (),
        workers: int = 1,
        **environ: str,
    ) -> None:
        """``command_prefix`` runs the server's commands elsewhere: in a namespace, say. One
        worker unless the test is about more: a test's expectations of timing and limits are
        simplest to reason about in one process."""
        self.workers = workers
        self.data_dir = data_dir
        self.command_prefix = tuple(command_prefix)
        self.environ = environ
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        self.port = free_port()
        env = {**os.environ, **self.environ}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                *self.command_prefix,
                imagecore_command(),
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                "--workers",
                str(self.workers),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"server did not start: {self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def token(self, user: str, *extra: str) -> str:
        result = subprocess.run(
            [
                *self.command_prefix,
                imagecore_command(),
                "token",
                user,
                "--data-dir",
                str(self.data_dir),
                *extra,
            ],
            env={**os.environ, **self.environ},
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout.strip()


def kill_server(server: ServerProcess) -> None:
    """SIGKILL the whole process group: the server and its workers, with no chance to clean up."""
    assert server.process is not None
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=30)
    server.process = None


def log_lines(server: ServerProcess) -> list[dict[str, Any]]:
    """Every line the server logged so far, each parsed as the JSON object it must be."""
    return [json.loads(line) for line in server.log_path.read_text().splitlines() if line]


def log_lines_written_so_far(server: ServerProcess) -> list[dict[str, Any]]:
    """Every line the server logged so far, once the access lines of the requests it answered
    before this call are written too: a server writes them behind, a tenth of a second's at a
    time. Waits (10 s at most) for the access line of a request made now, which a worker
    writes after those of the requests it answered before; for a server of one worker."""
    assert server.workers == 1, "another worker's lines may still be waiting"
    marker = httpx.get(f"{server.url}/health", timeout=30).headers["x-request-id"]
    deadline = time.monotonic() + 10
    while True:
        lines = log_lines(server)
        if any(line.get("request_id") == marker for line in lines):
            return lines
        assert time.monotonic() < deadline, "the access line of a request is written"
        time.sleep(0.02)
