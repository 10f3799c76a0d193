"""Big files sent resumably by the client (tus, against a real `imagecore serve`): a run stopped
part-way goes on, when run again, from where the server stands, sending only the rest; a dropped
connection costs one piece; an upload the server no longer holds starts anew."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from entrypoints.cli import main
from entrypoints.client.api import ImagecoreClient, UploadFields
from entrypoints.client.resumable import TUS_CHUNK_BYTES, ResumeState, UploadStopped
from entrypoints.client.uploads import Uploader
from tests.support.api_client import Api
from tests.support.backend_server import running_server
from tests.support.big_images import padded_png
from tests.support.http_server import ServerProcess

MiB = 1024 * 1024
SIZE = 20 * MiB  # three pieces: 8 + 8 + 4 MiB


class Patches(httpx.BaseTransport):
    """Passes requests on, counting the bytes every PATCH carries; ``fail_at`` (the number of a
    PATCH) makes that PATCH fail as ``failure`` does instead, once."""

    def __init__(self, fail_at: int | None = None, failure: BaseException | None = None) -> None:
        self._next = httpx.HTTPTransport()
        self.fail_at = fail_at
        self.failure = failure
        self.patches = 0
        self.patched_bytes = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PATCH":
            self.patches += 1
            if self.patches == self.fail_at and self.failure is not None:
                failure, self.failure = self.failure, None
                raise failure
            self.patched_bytes += int(request.headers["content-length"])
        return self._next.handle_request(request)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server("filesystem", tmp_path_factory.mktemp("client-resumable")) as process:
        yield process


@pytest.fixture
def user() -> str:
    return f"rhea-{secrets.token_hex(4)}"


@pytest.fixture
def big(tmp_path: Path) -> Path:
    path = tmp_path / "panorama.png"
    path.write_bytes(padded_png(SIZE))
    return path


def uploader(
    server: ServerProcess, token: str, state: Path, transport: httpx.BaseTransport
) -> Uploader:
    client = ImagecoreClient(server.url, token, transport=transport)
    return Uploader(
        client, UploadFields(title="Dawn"), resumable_above=MiB, state=ResumeState(state)
    )


def test_a_run_stopped_part_way_goes_on_from_where_the_server_stands(
    server: ServerProcess, user: str, big: Path, tmp_path: Path
) -> None:
    api = Api(server)
    state = tmp_path / "state" / "uploads.json"
    stopped = Patches(fail_at=2, failure=KeyboardInterrupt())  # Ctrl-C during the 2nd piece
    with pytest.raises(KeyboardInterrupt):
        uploader(server, api.token(user), state, stopped).upload(big)
    assert stopped.patched_bytes == TUS_CHUNK_BYTES
    assert api.list_all(user, user_id=user) == []

    again = Patches()
    told_resumed: list[int] = []
    sent_counted: list[int] = []
    uploaded = uploader(server, api.token(user), state, again).upload(
        big, sent_counted.append, told_resumed.append
    )

    assert uploaded.created
    assert again.patched_bytes == SIZE - TUS_CHUNK_BYTES  # only what the server lacked
    assert told_resumed == [TUS_CHUNK_BYTES]
    assert sum(sent_counted) == SIZE - TUS_CHUNK_BYTES
    image = api.client.get(f"/images/{uploaded.image['image_id']}", headers=api.auth(user)).json()
    assert image["sha256"] == hashlib.sha256(big.read_bytes()).hexdigest()
    assert (image["filename"], image["title"], image["size"]) == ("panorama.png", "Dawn", SIZE)
    assert ResumeState(state).get(ResumeState.key(server.url, user, uploaded.file)) is None
    api.client.close()


def test_a_dropped_connection_costs_one_piece_and_the_run_goes_on(
    server: ServerProcess, user: str, big: Path, tmp_path: Path
) -> None:
    api = Api(server)
    dropped = Patches(fail_at=2, failure=httpx.RemoteProtocolError("connection reset"))
    uploaded = uploader(server, api.token(user), tmp_path / "uploads.json", dropped).upload(big)

    assert uploaded.created
    assert dropped.patched_bytes == SIZE  # the failed piece counted nothing: it never went
    assert uploaded.image["sha256"] == hashlib.sha256(big.read_bytes()).hexdigest()
    api.client.close()


def test_an_upload_the_server_no_longer_holds_starts_anew(
    server: ServerProcess, user: str, big: Path, tmp_path: Path
) -> None:
    api = Api(server)
    state = tmp_path / "uploads.json"
    with pytest.raises(KeyboardInterrupt):
        uploader(server, api.token(user), state, Patches(2, KeyboardInterrupt())).upload(big)
    [url] = json.loads(state.read_text()).values()
    ended = api.client.delete(url, headers={**api.auth(user), "Tus-Resumable": "1.0.0"})
    assert ended.status_code == 204

    again = Patches()
    uploaded = uploader(server, api.token(user), state, again).upload(big)
    assert uploaded.created
    assert again.patched_bytes == SIZE
    assert [image["image_id"] for image in api.list_all(user, user_id=user)] == [
        uploaded.image["image_id"]
    ]
    api.client.close()


def test_the_command_sends_big_files_resumably_and_says_so(
    server: ServerProcess, user: str, big: Path, tmp_path: Path
) -> None:
    api = Api(server)
    env = {
        "IMAGECORE_URL": server.url,
        "IMAGECORE_TOKEN": api.token(user),
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    result = CliRunner().invoke(main, ["upload", "--resumable-above", "1M", str(big)], env=env)
    assert result.exit_code == 0, result.output
    [image] = api.list_all(user, user_id=user)
    assert result.stdout.split() == [image["image_id"], str(big)]
    assert "1 uploaded" in result.stderr
    assert (tmp_path / "state" / "imagecore" / "uploads.json").read_text().strip() == "{}"
    api.client.close()


def test_a_stopping_run_ends_a_big_upload_after_the_piece_on_its_way(
    server: ServerProcess, user: str, big: Path, tmp_path: Path
) -> None:
    """Ctrl-C: the files under way are not sent to their end first; the next run goes on."""
    api = Api(server)
    state = tmp_path / "uploads.json"
    patches = Patches()
    with pytest.raises(UploadStopped, match="run again"):
        uploader(server, api.token(user), state, patches).upload(
            big, stopping=lambda: patches.patches >= 1
        )
    assert patches.patched_bytes == TUS_CHUNK_BYTES
    again = Patches()
    uploader(server, api.token(user), state, again).upload(big)
    assert again.patched_bytes == SIZE - TUS_CHUNK_BYTES
    api.client.close()
