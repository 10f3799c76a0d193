"""Starting a blob's writeback early is a head start for its fsync, never a failure of its own."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from adapters import early_writeback
from adapters.early_writeback import start_writeback


@pytest.mark.skipif(sys.platform != "linux", reason="sync_file_range is Linux's")
def test_on_linux_the_writeback_is_started_through_sync_file_range() -> None:
    assert early_writeback._CALL is not None


def test_starting_the_writeback_keeps_the_bytes_and_raises_for_nothing(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    with path.open("wb") as file:
        file.write(b"a" * 100_000)
        file.flush()
        start_writeback(file.fileno(), 0, 100_000)
        start_writeback(file.fileno(), 100_000, 0)
    start_writeback(-1, 0, 10)  # no file at all: the fsync, not this, reports errors
    assert path.read_bytes() == b"a" * 100_000
