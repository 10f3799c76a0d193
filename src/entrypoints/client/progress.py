"""What `imagecore upload` shows while it works, and the summary it ends with.

On a terminal, one status line on stderr, redrawn as bytes go out (a big file moves it too):
files done, bytes done of all, the rate and the time left. Anywhere else (a log, a pipe), one
plain line per file as it finishes. Either way the counts end in one summary line.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TextIO

import attrs

UPLOADED = "uploaded"
ALREADY_THERE = "already there"
FAILED = "failed"
NOT_TRIED = "not tried"


def human_bytes(size: float) -> str:
    amount = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(amount) < 1024 or unit == "GiB":
            return f"{int(amount)} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


@attrs.define
class Tally:
    """The counts a summary reports."""

    files: int
    total_bytes: int
    uploaded: int = 0
    already_there: int = 0
    failed: int = 0
    not_tried: int = 0
    sent_bytes: int = 0
    resumed_bytes: int = 0
    """Bytes of files sent resumably that the server held from an earlier run: not sent again."""
    skipped_bytes: int = 0
    """The sizes of files not sent (there already, failed, not tried): done as far as the time
    left is concerned."""

    @property
    def finished(self) -> int:
        return self.uploaded + self.already_there + self.failed + self.not_tried


class Progress:
    """Counts bytes and files from any thread, and shows them on ``stream``: redrawn in place
    when ``live`` (a terminal), else a line per file."""

    def __init__(
        self,
        files: int,
        total_bytes: int,
        stream: TextIO,
        *,
        live: bool,
        clock: Callable[[], float] = time.monotonic,
        redraw_interval: float = 0.1,
    ) -> None:
        self.tally = Tally(files, total_bytes)
        self._stream = stream
        self._live = live
        self._clock = clock
        self._interval = redraw_interval
        self._started = clock()
        self._drawn_at: float | None = None
        self._drawn = False
        self._lock = threading.Lock()

    @property
    def elapsed(self) -> float:
        return self._clock() - self._started

    def sent(self, amount: int) -> None:
        """``amount`` bytes of a file went out (or, negative, a failed try's are taken back)."""
        with self._lock:
            self.tally.sent_bytes += amount
            if self._live:
                now = self._clock()
                if self._drawn_at is None or now - self._drawn_at >= self._interval:
                    self._draw(now)

    def resumed(self, amount: int) -> None:
        """``amount`` bytes of a file the server held already, from an earlier run."""
        with self._lock:
            self.tally.resumed_bytes += amount
            self.tally.skipped_bytes += amount

    def finished(
        self,
        path: str,
        size: int,
        outcome: str,
        detail: str = "",
        stdout_line: Callable[[], None] | None = None,
    ) -> None:
        """A file is done with: ``outcome`` is one of UPLOADED, ALREADY_THERE, FAILED,
        NOT_TRIED. ``stdout_line`` prints the file's line of the command's output, kept clear
        of the status line."""
        with self._lock:
            tally = self.tally
            if outcome == UPLOADED:
                tally.uploaded += 1
            else:
                tally.skipped_bytes += size
                if outcome == ALREADY_THERE:
                    tally.already_there += 1
                elif outcome == FAILED:
                    tally.failed += 1
                else:
                    tally.not_tried += 1
            if self._live:
                self._clear()
            if stdout_line is not None:
                stdout_line()
            if self._live:
                self._draw(self._clock())
            elif outcome != NOT_TRIED:
                shown = f"{outcome}  {path}"
                if detail:
                    shown += f": {detail}"
                elif outcome == UPLOADED:
                    shown += f"  ({human_bytes(size)})"
                self._stream.write(f"[{tally.finished}/{tally.files}] {shown}\n")
                self._stream.flush()

    def status_line(self, now: float) -> str:
        tally = self.tally
        elapsed = max(now - self._started, 1e-9)
        rate = tally.sent_bytes / elapsed
        done = tally.sent_bytes + tally.skipped_bytes
        left = max(tally.total_bytes - done, 0)
        eta = _duration(left / rate) if rate > 0 else "-:--"
        return (
            f"{tally.finished}/{tally.files} files  "
            f"{human_bytes(done)} of {human_bytes(tally.total_bytes)}  "
            f"{human_bytes(rate)}/s  ETA {eta}"
        )

    def summary(self) -> str:
        tally = self.tally
        elapsed = self.elapsed
        parts = [
            f"{tally.uploaded} uploaded",
            f"{tally.already_there} already there",
            f"{tally.failed} failed",
        ]
        if tally.not_tried:
            parts.append(f"{tally.not_tried} not tried")
        rate = tally.sent_bytes / elapsed if elapsed > 0 else 0.0
        return (
            f"{', '.join(parts)} of {tally.files} files; "
            f"{human_bytes(tally.sent_bytes)} sent in {elapsed:.1f} s ({human_bytes(rate)}/s)"
            + (
                f"; {human_bytes(tally.resumed_bytes)} the server held from an earlier run"
                if tally.resumed_bytes
                else ""
            )
        )

    def close(self) -> None:
        with self._lock:
            if self._live:
                self._clear()

    def _draw(self, now: float) -> None:
        self._stream.write("\r\x1b[K" + self.status_line(now))
        self._stream.flush()
        self._drawn_at = now
        self._drawn = True

    def _clear(self) -> None:
        if self._drawn:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._drawn = False
