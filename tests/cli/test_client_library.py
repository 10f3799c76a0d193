"""`imagecore upload` with a real photo library against a real `imagecore serve`: the server's
default rate limit, files above its upload limit, runs done again, and runs that cannot
succeed ending at once."""

from __future__ import annotations

import io
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from PIL import Image

from entrypoints.cli import main
from entrypoints.client import commands
from entrypoints.client.api import ImagecoreClient, UploadFields
from entrypoints.client.retry import RetryPolicy
from entrypoints.client.uploads import Uploader
from entrypoints.settings import Settings
from tests.support.api_client import Api
from tests.support.backend_server import running_server
from tests.support.http_server import ServerProcess, free_port, log_lines_written_so_far
from tests.support.sample_images import large_png


def tiny_png(path: Path, number: int) -> Path:
    """An 8x8 PNG of a colour of its own: each file of a library is a different image."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (number % 256, number // 256, 99)).save(buffer, "PNG")
    path.write_bytes(buffer.getvalue())
    return path


def library(root: Path, count: int) -> Path:
    for number in range(count):
        tiny_png(root / f"album-{number % 3}" / f"photo-{number:03d}.png", number)
    return root


def upload(server: ServerProcess, token: str, *args: str) -> Result:
    env = {"IMAGECORE_URL": server.url, "IMAGECORE_TOKEN": token}
    return CliRunner().invoke(main, ["upload", *args], env=env)


def access_log(server: ServerProcess) -> Counter[tuple[str, str, int]]:
    """(method, path with ids blanked, status) of every request the server answered."""
    seen: Counter[tuple[str, str, int]] = Counter()
    for line in log_lines_written_so_far(server):
        if line.get("logger") == "imagecore.access":
            path = "/".join("ID" if len(part) == 26 else part for part in line["path"].split("/"))
            seen[line["method"], path, line["status"]] += 1
    return seen


def access_log_with(
    server: ServerProcess, key: tuple[str, str, int], count: int
) -> Counter[tuple[str, str, int]]:
    """The access log once it holds ``count`` lines of ``key``: a request's line is written
    just after its answer is sent, so the client may have the answer first (10 s at most)."""
    deadline = time.monotonic() + 10
    seen = access_log(server)
    while seen[key] < count and time.monotonic() < deadline:
        time.sleep(0.05)
        seen = access_log(server)
    return seen


@pytest.fixture(scope="module")
def default_limits(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with the default rate limit (the tests' servers raise it), set explicitly so
    that nothing in the environment changes it."""
    defaults = Settings.from_env({})
    root = tmp_path_factory.mktemp("client-library")
    process = ServerProcess(
        root / "data",
        IMAGECORE_BACKEND="filesystem",
        IMAGECORE_RATE_LIMIT_BURST=str(defaults.rate_limit_burst),
        IMAGECORE_RATE_LIMIT_PER_SECOND=str(defaults.rate_limit_per_second),
    ).start()
    yield process
    process.stop()


def test_a_300_file_library_uploaded_twice_at_the_default_rate_limit_is_there_once(
    default_limits: ServerProcess, tmp_path: Path
) -> None:
    api = Api(default_limits)
    user = f"dora-{secrets.token_hex(4)}"
    photos = library(tmp_path / "photos", 300)

    started = time.monotonic()
    first = upload(default_limits, api.token(user), "-r", str(photos), "-j", "8")
    first_seconds = time.monotonic() - started
    started = time.monotonic()
    second = upload(default_limits, api.token(user), "-r", str(photos), "-j", "8")
    second_seconds = time.monotonic() - started
    print(f"300 files: first run {first_seconds:.1f} s, second run {second_seconds:.1f} s")

    assert first.exit_code == 0, first.stderr[-2000:]
    assert second.exit_code == 0, second.stderr[-2000:]
    images = api.list_all(user, user_id=user, limit=100)
    assert len(images) == 300
    assert len({image["sha256"] for image in images}) == 300
    # Every file is named on stdout with its image, both times, and the same image.
    assert len(first.stdout.splitlines()) == len(second.stdout.splitlines()) == 300
    assert sorted(first.stdout.splitlines()) == sorted(second.stdout.splitlines())
    assert "300 uploaded, 0 already there, 0 failed of 300 files" in first.stderr
    assert "0 uploaded, 300 already there, 0 failed of 300 files" in second.stderr
    # The server's limit was met and waited out, not turned into failures.
    assert access_log(default_limits)["POST", "/images", 429] > 0
    api.client.close()


def test_a_file_sent_again_is_answered_with_the_image_the_server_has(
    default_limits: ServerProcess, tmp_path: Path
) -> None:
    """Without the list of images read first, the file's hash alone spares the upload."""
    api = Api(default_limits)
    user = f"ed-{secrets.token_hex(4)}"
    path = tiny_png(tmp_path / "again.png", 7001)
    with ImagecoreClient(default_limits.url, api.token(user)) as client:
        uploader = Uploader(client, UploadFields())
        first = uploader.upload(path)
        second = Uploader(client, UploadFields()).upload(path)

    assert first.created
    assert not second.created
    assert second.image["image_id"] == first.image["image_id"]
    assert len(api.list_all(user, user_id=user)) == 1
    api.client.close()


@pytest.fixture(scope="module")
def small_limit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("client-small-limit")
    with running_server("filesystem", root, IMAGECORE_MAX_UPLOAD_BYTES=str(64 * 1024)) as server:
        yield server


def test_a_file_above_the_upload_limit_goes_through_a_direct_upload_link(
    small_limit: ServerProcess, tmp_path: Path
) -> None:
    api = Api(small_limit)
    user = f"fay-{secrets.token_hex(4)}"
    big = tmp_path / "big.png"
    big.write_bytes(large_png(200 * 1024))
    small = tiny_png(tmp_path / "small.png", 1)
    before = access_log(small_limit)

    result = upload(small_limit, api.token(user), str(big), str(small), "--title", "Trip")

    assert result.exit_code == 0, result.output
    images = {image["filename"]: image for image in api.list_all(user, user_id=user)}
    assert set(images) == {"big.png", "small.png"}
    assert images["big.png"]["size"] == big.stat().st_size
    assert images["big.png"]["title"] == "Trip"
    downloaded, _ = api.download(user, images["big.png"]["image_id"])
    assert downloaded.content == big.read_bytes()
    log = access_log(small_limit) - before
    assert log["POST", "/uploads", 201] == 1
    assert log["POST", "/uploads/ID", 201] == 1
    # The slot was asked with the file's hash: nothing of this upload was an error but the
    # 413 that sent it to the slot.
    assert [key for key in log if key[2] >= 400] == [("POST", "/images", 413)]

    # Sent again, with no list of images to go by, the big file is found by its hash alone:
    # the slot's request is answered with the image, and no byte is sent.
    with ImagecoreClient(small_limit.url, api.token(user)) as client:
        again = Uploader(client, UploadFields(), direct_above=64 * 1024).upload(big)
    assert not again.created
    assert again.image["image_id"] == images["big.png"]["image_id"]
    answered = ("POST", "/uploads", 200)
    log = access_log_with(small_limit, answered, before[answered] + 1) - before
    assert (log["POST", "/uploads", 201], log["POST", "/uploads", 200]) == (1, 1)
    assert log["POST", "/uploads/ID", 201] == 1
    assert [key for key in log if key[2] >= 400] == [("POST", "/images", 413)]
    api.client.close()


def test_direct_above_sends_smaller_files_through_the_link_too(
    small_limit: ServerProcess, tmp_path: Path
) -> None:
    api = Api(small_limit)
    user = f"gus-{secrets.token_hex(4)}"
    photo = tiny_png(tmp_path / "photo.png", 2)
    before = access_log(small_limit)["POST", "/uploads/ID", 201]

    result = upload(small_limit, api.token(user), str(photo), "--direct-above", "10")

    assert result.exit_code == 0, result.output
    assert access_log(small_limit)["POST", "/uploads/ID", 201] == before + 1
    assert [image["filename"] for image in api.list_all(user, user_id=user)] == ["photo.png"]
    bad = upload(small_limit, api.token(user), str(photo), "--direct-above", "lots")
    assert bad.exit_code == 2
    assert "--direct-above" in bad.stderr
    api.client.close()


def test_an_unreachable_server_ends_the_upload_with_one_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commands, "RETRY", RetryPolicy(backoff=0.01, max_backoff=0.02))
    photos = library(tmp_path / "photos", 40)
    url = f"http://127.0.0.1:{free_port()}"

    result = CliRunner().invoke(
        main, ["upload", "-r", str(photos), "-j", "8", "--url", url, "--token", "t"]
    )

    assert result.exit_code == 1
    assert result.stderr.count("cannot connect") == 1
    assert f"cannot connect to the imagecore server at {url} (5 tries)" in result.stderr
    assert len(result.stderr.splitlines()) <= 2
    assert result.stdout == ""


def test_a_field_refused_for_every_file_stops_the_run_naming_the_flag(
    small_limit: ServerProcess, tmp_path: Path
) -> None:
    api = Api(small_limit)
    user = f"hal-{secrets.token_hex(4)}"
    photos = library(tmp_path / "photos", 40)

    result = upload(
        small_limit, api.token(user), "-r", str(photos), "-j", "2", "--title", "x" * 300
    )

    assert result.exit_code == 1
    assert "error: --title " in result.stderr
    assert "stopped early" in result.stderr
    assert "files not tried" in result.stderr
    # The error is given once at the end, not once per file.
    summary = result.stderr.split("error: --title", 1)[1]
    assert summary.count("--title") == 0
    assert "not tried of 40 files" in result.stderr
    # A line per file that failed before the run stopped: the first 3 and those under way.
    failed_lines = [line for line in result.stderr.splitlines() if "] failed  " in line]
    assert 3 <= len(failed_lines) <= 4
    assert all(": 400 --title " in line for line in failed_lines)
    assert api.list_all(user, user_id=user) == []
    api.client.close()


def test_a_token_the_server_refuses_ends_the_upload_before_any_file(
    small_limit: ServerProcess, tmp_path: Path
) -> None:
    photos = library(tmp_path / "photos", 10)

    result = upload(small_limit, "not-a-token", "-r", str(photos))

    assert result.exit_code == 1
    assert result.stderr.count("error: ") == 1
    assert "(Unauthenticated, request " in result.stderr
    assert "imagecore token USER" in result.stderr
    assert result.stdout == ""
