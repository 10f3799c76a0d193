"""`serve`, `token` and `reconcile` refuse a data dir or token secret that someone else could
have changed, and a secret that is no secret, with a message naming the path and no traceback.
Tests run as root here, so "another user" is a file given to another uid with os.chown."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from adapters.secret_file import SECRET_FILE
from entrypoints.cli import main
from entrypoints.http.auth import TokenAuthority

COMMANDS = {
    "serve": ["serve", "--port", "0"],
    "token": ["token", "alice"],
    "reconcile": ["reconcile"],
}
ANOTHER_USER = 4242
GOOD_SECRET = b"0123456789abcdef" * 4


@pytest.fixture(autouse=True)
def never_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    """A `serve` that did not refuse fails here instead of serving forever."""

    class Refused(AssertionError):
        pass

    def serving(*_: object, **__: object) -> None:
        raise Refused("serve went on to serve instead of refusing")

    monkeypatch.setattr("granian.Granian", serving)


def run(command: str, data_dir: Path) -> Result:
    """The command's result; a command that hangs (reading a FIFO, say) fails the test."""
    results: list[Result] = []
    arguments = [*COMMANDS[command], "--data-dir", str(data_dir)]
    worker = threading.Thread(
        target=lambda: results.append(CliRunner().invoke(main, arguments, env={})), daemon=True
    )
    worker.start()
    worker.join(timeout=30)
    assert results, f"imagecore {command} still runs after 30 seconds"
    return results[0]


def assert_refused(result: Result, path: Path) -> None:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # not a crash
    assert "Traceback" not in result.output
    assert str(path) in result.output


def with_secret(content: bytes = GOOD_SECRET, mode: int = 0o600) -> Callable[[Path], Path]:
    def make(data_dir: Path) -> Path:
        secret = data_dir / SECRET_FILE
        secret.write_bytes(content)
        secret.chmod(mode)
        return secret

    return make


def given_to_another_user(path: Path) -> Path:
    os.chown(path, ANOTHER_USER, ANOTHER_USER)
    return path


def secret_given_to_another_user(data_dir: Path) -> Path:
    return given_to_another_user(with_secret()(data_dir))


def secret_as_a_directory(data_dir: Path) -> Path:
    (data_dir / SECRET_FILE).mkdir()
    return data_dir / SECRET_FILE


def secret_as_a_dangling_link(data_dir: Path) -> Path:
    (data_dir / SECRET_FILE).symlink_to(data_dir / "nowhere")
    return data_dir / SECRET_FILE


def secret_as_a_fifo(data_dir: Path) -> Path:
    os.mkfifo(data_dir / SECRET_FILE, 0o600)
    return data_dir / SECRET_FILE


BAD_SECRETS: dict[str, Callable[[Path], Path]] = {
    "empty": with_secret(b""),
    "only whitespace": with_secret(b" \n\t\n"),
    "not UTF-8": with_secret(b"\xff\xfe" * 24),
    "too short": with_secret(b"0123456789abcdef"),
    "too long": with_secret(b"a" * 5000),
    "writable by group": with_secret(mode=0o620),
    "writable by others": with_secret(mode=0o602),
    "readable by others": with_secret(mode=0o604),
    "owned by another user": secret_given_to_another_user,
    "a directory": secret_as_a_directory,
    "a dangling link": secret_as_a_dangling_link,
    "a FIFO": secret_as_a_fifo,
}

BAD_DATA_DIRS: dict[str, Callable[[Path], Path]] = {
    "writable by group": lambda data_dir: _chmod(data_dir, 0o770),
    "writable by others": lambda data_dir: _chmod(data_dir, 0o707),
    "world-writable and sticky, as /tmp": lambda data_dir: _chmod(data_dir, 0o1777),
    "owned by another user": given_to_another_user,
}


def _chmod(path: Path, mode: int) -> Path:
    path.chmod(mode)
    return path


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", list(BAD_DATA_DIRS))
def test_a_data_dir_someone_else_could_change_is_refused(
    tmp_path: Path, command: str, case: str
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    BAD_DATA_DIRS[case](data_dir)

    result = run(command, data_dir)

    assert_refused(result, data_dir)
    assert list(data_dir.iterdir()) == [], "nothing is made in a data dir that is not trusted"


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", list(BAD_SECRETS))
def test_a_secret_that_is_not_private_or_not_a_secret_is_refused(
    tmp_path: Path, command: str, case: str
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    secret = BAD_SECRETS[case](data_dir)
    before = secret.lstat()

    result = run(command, data_dir)

    assert_refused(result, secret)
    after = secret.lstat()
    assert (after.st_mode, after.st_uid, after.st_size) == (
        before.st_mode,
        before.st_uid,
        before.st_size,
    ), "a refused secret is left as it was, for its owner to look at"


def test_a_secret_written_with_a_final_newline_is_taken_without_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    with_secret(GOOD_SECRET + b"\n")(data_dir)

    result = run("token", data_dir)

    assert result.exit_code == 0, result.output
    assert TokenAuthority(GOOD_SECRET).verify(result.output.strip()) == "alice"


def test_a_data_dir_others_could_only_read_is_made_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with_secret()(data_dir)
    data_dir.chmod(0o755)

    result = run("token", data_dir)

    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
