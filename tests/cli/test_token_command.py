"""`imagecore token`: a token the server accepts, signed with the secret `imagecore serve` made in
the data dir when it first started (then kept), or the configured one. It never makes a data dir
or a secret itself: run in the wrong folder, it would print a token no server accepts. A user id
that is none is a usage error."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from entrypoints.cli import main
from entrypoints.http.auth import TokenAuthority
from imagecore.errors import Unauthenticated


class _NotServing:
    def __init__(self, *_: object, **__: object) -> None:
        pass

    def serve(self) -> None:
        pass


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve` does all it does before serving, then returns instead of serving."""
    monkeypatch.setattr("granian.Granian", _NotServing)


def serve(data_dir: Path) -> None:
    result = CliRunner().invoke(main, ["serve", "--port", "0", "--data-dir", str(data_dir)], env={})
    assert result.exit_code == 0, result.output


def token(user: str, data_dir: Path, **env: str) -> Result:
    return CliRunner().invoke(main, ["token", user, "--data-dir", str(data_dir)], env=env)


def test_token_prints_a_token_the_server_accepts(tmp_path: Path, served: None) -> None:
    serve(tmp_path / "data")
    result = token("alice", tmp_path / "data")
    assert result.exit_code == 0, result.output
    secret = (tmp_path / "data" / "secret.key").read_text().encode()
    assert TokenAuthority(secret).verify(result.output.strip()) == "alice"
    with pytest.raises(Unauthenticated):
        TokenAuthority(b"x" * 64).verify(result.output.strip())


def test_token_for_an_invalid_user_id_is_a_usage_error(tmp_path: Path, served: None) -> None:
    serve(tmp_path)
    result = token("../root", tmp_path)
    assert result.exit_code == 2
    assert "user id" in result.output


def test_the_secret_is_made_once_and_then_kept(tmp_path: Path, served: None) -> None:
    serve(tmp_path)
    first = (tmp_path / "secret.key").read_text()
    serve(tmp_path)
    assert (tmp_path / "secret.key").read_text() == first
    assert TokenAuthority(first.encode()).verify(token("bob", tmp_path).output.strip()) == "bob"


def test_token_without_a_data_dir_names_the_path_and_makes_none(tmp_path: Path) -> None:
    missing = tmp_path / "imagecore-data"
    result = token("alice", missing)
    assert result.exit_code == 1
    assert f"there is no data dir {missing}" in result.output
    assert "imagecore serve" in result.output
    assert "Traceback" not in result.output
    assert not missing.exists()


def test_token_in_a_data_dir_without_a_secret_names_it_and_makes_none(tmp_path: Path) -> None:
    result = token("alice", tmp_path)
    assert result.exit_code == 1
    assert f"the data dir {tmp_path} has no token secret ({tmp_path / 'secret.key'})" in (
        result.output
    )
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_configured_secret_is_used_without_a_data_dir(tmp_path: Path) -> None:
    secret = "c" * 48
    result = token("alice", tmp_path / "nowhere", IMAGECORE_TOKEN_SECRET=secret)
    assert TokenAuthority(secret.encode()).verify(result.output.strip()) == "alice"
    assert not (tmp_path / "nowhere").exists()
