"""`imagecore reconcile`: removes the orphaned bytes of the data dir past the grace period and
reports what it did as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from entrypoints.cli import main


def test_reconcile_removes_orphaned_bytes_and_reports_it_as_json(tmp_path: Path) -> None:
    from adapters.filesystem import FilesystemBlobStore
    from entrypoints.container import BLOB_DIR

    FilesystemBlobStore(tmp_path / BLOB_DIR).put("images/alice/01JD0000000000000000000001", [b"x"])
    runner = CliRunner()
    arguments = ["reconcile", "--data-dir", str(tmp_path)]

    kept = runner.invoke(main, arguments, env={})
    removed = runner.invoke(main, [*arguments, "--grace-seconds", "0"], env={})

    assert kept.exit_code == 0, kept.output
    assert json.loads(kept.stdout) == {
        "deletes_finished": 0,
        "blobs_checked": 0,
        "orphans_removed": 0,
    }, "younger than the default grace period: may be an upload under way"
    assert removed.exit_code == 0, removed.output
    assert json.loads(removed.stdout)["orphans_removed"] == 1
    assert list((tmp_path / BLOB_DIR).rglob("*")) == [
        path for path in (tmp_path / BLOB_DIR).rglob("*") if path.is_dir()
    ]
