"""`imagecore reconcile`: removes the orphaned bytes of the data dir past the grace period,
queues again the thumbnails whose job was lost, and reports what it did as JSON."""

from __future__ import annotations

import contextlib
import json
import sqlite3
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
        "jobs_requeued": 0,
    }, "younger than the default grace period: may be an upload under way"
    assert removed.exit_code == 0, removed.output
    assert json.loads(removed.stdout)["orphans_removed"] == 1
    assert list((tmp_path / BLOB_DIR).rglob("*")) == [
        path for path in (tmp_path / BLOB_DIR).rglob("*") if path.is_dir()
    ]


def test_reconcile_queues_again_a_thumbnail_whose_job_was_lost(tmp_path: Path) -> None:
    from adapters.sqlite import SqliteImageRepository
    from entrypoints.container import SQLITE_FILE
    from tests.support.doubles import make_image

    repository = SqliteImageRepository(tmp_path / SQLITE_FILE)
    repository.add(make_image())  # its thumbnail pending, its job queued with it...
    with repository._write() as connection:
        connection.execute("DELETE FROM jobs")  # ...and lost (a final attempt that died)
    repository.close()
    runner = CliRunner()
    arguments = ["reconcile", "--data-dir", str(tmp_path), "--grace-seconds", "0"]

    first = runner.invoke(main, arguments, env={})
    second = runner.invoke(main, arguments, env={})

    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["jobs_requeued"] == 1
    with contextlib.closing(sqlite3.connect(tmp_path / SQLITE_FILE)) as database:
        assert database.execute("SELECT kind, image_id FROM jobs").fetchall() == [
            ("thumbnail", make_image().image_id)
        ]
    assert second.exit_code == 0, second.output
    with contextlib.closing(sqlite3.connect(tmp_path / SQLITE_FILE)) as database:
        assert database.execute("SELECT count(*) FROM jobs").fetchone() == (1,), (
            "a job the queue holds is kept once"
        )
