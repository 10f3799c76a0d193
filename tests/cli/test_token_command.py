"""`imagecore token`: a token the server accepts, signed with the secret of the data dir (made once,
then kept) or the configured one; a user id that is none is a usage error."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from entrypoints.cli import main
from entrypoints.http.auth import TokenAuthority
from imagecore.errors import Unauthenticated


def test_token_prints_a_token_the_server_accepts(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["token", "alice", "--data-dir", str(tmp_path)], env={})
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    secret = (tmp_path / "secret.key").read_text().encode()
    assert TokenAuthority(secret).verify(token) == "alice"
    with pytest.raises(Unauthenticated):
        TokenAuthority(b"x" * 64).verify(token)


def test_token_for_an_invalid_user_id_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["token", "../root", "--data-dir", str(tmp_path)], env={})
    assert result.exit_code == 2
    assert "user id" in result.output


def test_the_secret_is_made_once_and_then_kept(tmp_path: Path) -> None:
    runner = CliRunner()
    runner.invoke(main, ["token", "alice", "--data-dir", str(tmp_path)], env={})
    first = (tmp_path / "secret.key").read_text()
    runner.invoke(main, ["token", "bob", "--data-dir", str(tmp_path)], env={})
    assert (tmp_path / "secret.key").read_text() == first


def test_a_configured_secret_is_used_instead_of_the_data_dir(tmp_path: Path) -> None:
    secret = "c" * 48
    result = CliRunner().invoke(
        main,
        ["token", "alice", "--data-dir", str(tmp_path)],
        env={"IMAGECORE_TOKEN_SECRET": secret},
    )
    assert TokenAuthority(secret.encode()).verify(result.output.strip()) == "alice"
    assert not (tmp_path / "secret.key").exists()
