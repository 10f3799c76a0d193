"""`imagecore terraform-env`: Terraform's outputs written as an env file a shell can source, and
what went wrong when there are none to write."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from entrypoints.cli import main


def fake_terraform(directory: Path, stdout: str, exit_code: int = 0) -> Path:
    """A stand-in `terraform` that prints ``stdout`` for `output -json imagecore_environment`."""
    script = directory / "terraform"
    script.write_text(
        "#!/bin/sh\n"
        '[ "$2 $3 $4" = "output -json imagecore_environment" ] || exit 9\n'
        f"cat <<'END'\n{stdout}\nEND\nexit {exit_code}\n"
    )
    script.chmod(0o755)
    return script


def test_terraform_env_writes_the_outputs_as_a_sourceable_env_file(tmp_path: Path) -> None:
    outputs = {"IMAGECORE_TABLE": "images", "IMAGECORE_BUCKET": "b-1", "ODD": "it's $HOME"}
    terraform = fake_terraform(tmp_path, json.dumps(outputs))
    env_file = tmp_path / ".env"

    result = CliRunner().invoke(
        main,
        ["terraform-env", "--dir", str(tmp_path), "--terraform", str(terraform),
         "--output", str(env_file)],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    sourced = subprocess.run(
        ["sh", "-c", f"set -a; . {env_file}; env"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert {f"{name}={value}" for name, value in outputs.items()} <= set(sourced)


@pytest.mark.parametrize(
    ("stdout", "exit_code", "message"),
    [
        ("No outputs found", 1, "was it applied there?"),
        ('["not", "a", "map"]', 0, "not a map of strings"),
        ("{", 0, "is not JSON"),
    ],
)
def test_terraform_env_explains_what_went_wrong(
    tmp_path: Path, stdout: str, exit_code: int, message: str
) -> None:
    terraform = fake_terraform(tmp_path, stdout, exit_code)
    result = CliRunner().invoke(
        main, ["terraform-env", "--dir", str(tmp_path), "--terraform", str(terraform)]
    )
    assert result.exit_code == 1
    assert message in result.output


def test_terraform_env_writes_a_file_only_its_owner_can_read(tmp_path: Path) -> None:
    terraform = fake_terraform(tmp_path, json.dumps({"IMAGECORE_TABLE": "images"}))
    env_file = tmp_path / ".env"
    env_file.write_text("IMAGECORE_TOKEN_SECRET=added-by-hand\n")
    env_file.chmod(0o644)  # as an editor or `touch` would have made it

    result = CliRunner().invoke(
        main,
        ["terraform-env", "--dir", str(tmp_path), "--terraform", str(terraform),
         "--output", str(env_file)],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert env_file.read_text() == "IMAGECORE_TABLE=images\n"


def test_the_env_file_the_docs_write_is_ignored_by_git() -> None:
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(
        [
            "git",
            "-C",
            str(root),
            "check-ignore",
            "--no-index",
            ".env",
            "terraform/local.auto.tfvars",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ignored.stdout.split() == [".env", "terraform/local.auto.tfvars"]
