"""`imagecore serve` refusing to start, with the reason: a bad setting, a data dir it cannot use,
a table or bucket that does not exist."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from entrypoints.cli import main
from tests.support.fake_aws import aws_environment, fresh_resources, moto_server


def test_serve_with_a_bad_setting_exits_with_the_reason(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["serve", "--data-dir", str(tmp_path)], env={"IMAGECORE_MAX_UPLOAD_BYTES": "huge"}
    )
    assert result.exit_code == 2
    assert "IMAGECORE_MAX_UPLOAD_BYTES" in result.output


def test_serve_with_an_unusable_data_dir_names_it(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = CliRunner().invoke(main, ["serve", "--data-dir", str(blocker / "data")], env={})
    assert result.exit_code == 1
    assert str(blocker / "data") in result.output


@pytest.mark.parametrize("missing", ["table", "bucket"])
def test_serve_with_a_missing_table_or_bucket_names_it_before_serving(
    tmp_path: Path, missing: str
) -> None:
    with fresh_resources(moto_server().clients()) as (table, bucket):
        names = {"IMAGECORE_TABLE": table, "IMAGECORE_BUCKET": bucket}
        names[f"IMAGECORE_{missing.upper()}"] = "not-there"
        result = CliRunner().invoke(
            main,
            ["serve", "--backend", "aws", "--data-dir", str(tmp_path)],
            env=aws_environment(**names),
        )
    assert result.exit_code == 1
    assert "not-there" in result.output
    assert "does not exist" in result.output
    assert "Traceback" not in result.output
