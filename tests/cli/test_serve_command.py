"""`imagecore serve` refusing to start, with the reason: a bad setting, a data dir it cannot use,
a table or bucket that does not exist, a port something already listens on."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from entrypoints.cli import main
from tests.support.fake_aws import aws_environment, fresh_resources, moto_server
from tests.support.http_server import ServerProcess, imagecore_command


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


def test_a_second_server_on_a_port_in_use_exits_naming_it(tmp_path: Path) -> None:
    first = ServerProcess(tmp_path / "first").start()
    try:
        second = subprocess.run(
            [
                imagecore_command(),
                "serve",
                "--port",
                str(first.port),
                "--data-dir",
                str(tmp_path / "second"),
                "--workers",
                "2",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        first.stop()
    assert second.returncode != 0
    assert f"cannot serve on 127.0.0.1:{first.port}" in second.stderr
    assert "already listens there" in second.stderr
    assert "imagecore serving" not in second.stderr, "no worker started"
    assert not (tmp_path / "second").exists(), "refused before anything was made"


def test_a_port_whose_last_connections_linger_in_time_wait_is_served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = listener.accept()
            accepted.close()  # the server's side closes first: its end waits in TIME_WAIT
            client.recv(1)
    served: list[int] = []

    class Recorded:
        def __init__(self, *_: object, port: int, **__: object) -> None:
            served.append(port)

        def serve(self) -> None:
            pass

    monkeypatch.setattr("granian.Granian", Recorded)
    result = CliRunner().invoke(
        main, ["serve", "--port", str(port), "--data-dir", str(tmp_path)], env={}
    )
    assert result.exit_code == 0, result.output
    assert served == [port]


def test_job_workers_set_on_the_command_line_reach_the_server_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workers build their app from the environment `serve` leaves them, so the flag must
    be there, as IMAGECORE_JOB_WORKERS would have been."""
    seen: list[str | None] = []

    class Recorded:
        def __init__(self, *_: object, **__: object) -> None:
            pass

        def serve(self) -> None:
            seen.append(os.environ.get("IMAGECORE_JOB_WORKERS"))

    monkeypatch.setattr("granian.Granian", Recorded)
    runner = CliRunner()
    given = runner.invoke(
        main,
        ["serve", "--port", "0", "--data-dir", str(tmp_path), "--job-workers", "3"],
        env={"IMAGECORE_JOB_WORKERS": "5"},
    )
    assert given.exit_code == 0, given.output
    refused = runner.invoke(
        main, ["serve", "--port", "0", "--data-dir", str(tmp_path), "--job-workers", "0"]
    )
    assert refused.exit_code == 2
    assert "--job-workers" in refused.output
    assert seen == ["3"], "the flag wins over the environment"


_WITHOUT_AWS_EXTRA = """
import sys

class NoAwsExtra:
    # As on a machine where `pip install .` put no boto3 (the aws extra): its import fails.
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("boto3", "botocore", "mypy_boto3_sqs"):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, NoAwsExtra())
sys.argv = ["imagecore", *sys.argv[1:]]
from entrypoints.cli import main
main()
"""


@pytest.mark.parametrize("command", ["serve", "token", "reconcile", "worker", "upload"])
def test_every_command_loads_without_the_aws_extra(command: str) -> None:
    # The README's install is `pip install .`: no boto3. A command module importing AWS code at
    # the top once broke every command, serve included, on such a machine.
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_AWS_EXTRA, command, "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Usage: imagecore" in result.stdout
