"""The command line and the settings, as a shell user meets them."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from entrypoints.auth import TokenAuthority
from entrypoints.cli import main
from entrypoints.settings import Settings, SettingsError
from imagecore.errors import Unauthenticated


def test_the_defaults_need_no_configuration() -> None:
    settings = Settings.from_env({})
    assert settings.backend == "filesystem"
    assert settings.data_dir == Path("imagecore-data")
    assert settings.max_upload_bytes == 50 * 1024 * 1024
    assert settings.url_ttl_seconds == 900
    assert settings.token_secret is None


def test_settings_come_from_the_environment_and_flags_win() -> None:
    env = {
        "IMAGECORE_BACKEND": "memory",
        "IMAGECORE_DATA_DIR": "/srv/images",
        "IMAGECORE_MAX_UPLOAD_BYTES": "1000",
        "IMAGECORE_URL_TTL_SECONDS": "60",
        "IMAGECORE_TOKEN_SECRET": "s" * 40,
    }
    settings = Settings.from_env(env, data_dir=Path("/elsewhere"), backend=None)
    assert settings.backend == "memory"
    assert settings.data_dir == Path("/elsewhere")
    assert settings.max_upload_bytes == 1000
    assert settings.url_ttl_seconds == 60
    assert settings.token_secret == "s" * 40
    assert "s" * 40 not in repr(settings)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"IMAGECORE_BACKEND": "postgres"}, "IMAGECORE_BACKEND"),
        ({"IMAGECORE_BACKEND": "aws"}, "IMAGECORE_BACKEND"),
        ({"IMAGECORE_MAX_UPLOAD_BYTES": "lots"}, "IMAGECORE_MAX_UPLOAD_BYTES"),
        ({"IMAGECORE_MAX_UPLOAD_BYTES": "0"}, "IMAGECORE_MAX_UPLOAD_BYTES"),
        ({"IMAGECORE_URL_TTL_SECONDS": "-5"}, "IMAGECORE_URL_TTL_SECONDS"),
        ({"IMAGECORE_TOKEN_SECRET": "short"}, "IMAGECORE_TOKEN_SECRET"),
    ],
)
def test_a_wrong_setting_is_named_in_the_error(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(env)


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
