"""`imagecore upload`, `ls`, `get`, `download` and `rm` against a real `imagecore serve`."""

from __future__ import annotations

import json
import os
import secrets
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from entrypoints.cli import main
from entrypoints.client import commands
from entrypoints.client.api import ClientError, ImagecoreClient
from entrypoints.client.files import (
    DestinationExists,
    filename_in,
    safe_filename,
    save,
    sniff_content_type,
)
from entrypoints.client.retry import RetryPolicy
from tests.support.api_client import Api
from tests.support.backend_server import running_server
from tests.support.heif_images import avif_bytes, heic_bytes
from tests.support.http_server import ServerProcess, free_port
from tests.support.sample_images import image_bytes


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server("filesystem", tmp_path_factory.mktemp("client-cli")) as process:
        yield process


@pytest.fixture(scope="module")
def api(server: ServerProcess) -> Iterator[Api]:
    client = Api(server)
    yield client
    client.client.close()


@pytest.fixture
def user() -> str:
    return f"carol-{secrets.token_hex(4)}"


def run(api: Api, user: str | None, *args: str, token: str | None = None) -> Result:
    environ = {"IMAGECORE_URL": api.server.url, "IMAGECORE_TOKEN": token or ""}
    if user is not None and token is None:
        environ["IMAGECORE_TOKEN"] = api.token(user)
    return CliRunner().invoke(main, list(args), env=environ)


def uploaded_ids(result: Result) -> dict[str, str]:
    """Path -> image id, from upload's `ID  PATH` lines."""
    pairs = (line.split("  ", 1) for line in result.stdout.splitlines())
    return {path: image_id for image_id, path in pairs}


def write_image(path: Path, content_type: str = "image/png", width: int = 8) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image_bytes(content_type, width=width))
    return path


# -- upload --------------------------------------------------------------------------------


def test_upload_sends_named_files_and_the_image_files_of_folders_with_their_fields(
    api: Api, user: str, tmp_path: Path
) -> None:
    album = tmp_path / "album"
    top = write_image(album / "a.png")
    nested = write_image(album / "trip" / "b.JPG", "image/jpeg")
    (album / "trip" / "notes.txt").write_text("not an image")
    named = write_image(tmp_path / "loose.gif", "image/gif")

    result = run(
        api,
        user,
        "upload",
        str(named),
        str(album),
        "--recursive",
        "--tag",
        "beach",
        "--tag",
        "sunset",
        "--metadata",
        '{"camera": "X100"}',
        "--title",
        "Holiday",
        "--description",
        "A week away",
        "--visibility",
        "public",
    )

    assert result.exit_code == 0, result.output
    ids = uploaded_ids(result)
    assert set(ids) == {str(top), str(nested), str(named)}
    for image_id in ids.values():
        image = api.client.get(f"/images/{image_id}", headers=api.auth(user)).json()
        assert image["tags"] == ["beach", "sunset"]
        assert image["metadata"]["camera"] == "X100"
        assert (image["title"], image["description"]) == ("Holiday", "A week away")
        assert image["visibility"] == "public"


def test_a_file_the_server_refuses_fails_alone_and_is_summarised(
    api: Api, user: str, tmp_path: Path
) -> None:
    good = [write_image(tmp_path / f"good{index}.png") for index in range(3)]
    bad = tmp_path / "bad.png"
    bad.write_text("plain text with an image's name")

    result = run(api, user, "upload", *map(str, [*good, bad]))

    assert result.exit_code == 1
    assert set(uploaded_ids(result)) == set(map(str, good))
    assert "1 of 4 uploads failed" in result.stderr
    summary = next(line for line in result.stderr.splitlines() if str(bad) in line)
    assert ": 415 " in summary
    assert "(UnsupportedMediaType, request " in summary


def test_uploads_run_on_as_many_threads_as_jobs_asks(
    api: Api, user: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Six different images: the same bytes would be sent once.
    files = [str(write_image(tmp_path / f"{index}.png", width=8 + index)) for index in range(6)]
    upload = ImagecoreClient.post_image
    in_flight = peak = 0
    lock = threading.Lock()

    def counted(self: ImagecoreClient, *args: Any) -> Any:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            time.sleep(0.2)  # long enough that the pool's threads overlap
            return upload(self, *args)
        finally:
            with lock:
                in_flight -= 1

    monkeypatch.setattr(ImagecoreClient, "post_image", counted)

    result = run(api, user, "upload", "--jobs", "3", *files)

    assert result.exit_code == 0, result.output
    assert len(uploaded_ids(result)) == 6
    assert peak == 3


def test_a_folder_without_recursive_or_bad_metadata_is_a_usage_error(
    api: Api, user: str, tmp_path: Path
) -> None:
    write_image(tmp_path / "a.png")
    folder = run(api, user, "upload", str(tmp_path))
    assert folder.exit_code == 2
    assert "--recursive" in folder.stderr
    metadata = run(api, user, "upload", str(tmp_path / "a.png"), "--metadata", "[1]")
    assert metadata.exit_code == 2
    assert "JSON object" in metadata.stderr


# -- ls and get ----------------------------------------------------------------------------


@pytest.fixture
def five_images(api: Api, user: str) -> list[dict[str, Any]]:
    """Five images of ``user``, oldest first: three PNGs tagged red, two JPEGs tagged blue,
    each with its thumbnail job settled, so that what a test reads of them stays put."""
    images = []
    for index in range(5):
        kind, tag = ("image/png", "red") if index < 3 else ("image/jpeg", "blue")
        images.append(
            api.uploaded(
                user,
                data=image_bytes(kind, width=8 + index),
                filename=f"{index}.img",
                title=f"{tag} {index}",
                tags=tag,
            )
        )
    return images


def test_ls_shows_one_page_as_a_table(
    api: Api, user: str, five_images: list[dict[str, Any]]
) -> None:
    result = run(api, user, "ls", "--user-id", user, "--limit", "2")

    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split() == [
        "ID", "CREATED", "SIZE", "WxH", "VISIBILITY", "OWNER", "FILE", "TITLE"
    ]  # fmt: skip
    newest = five_images[-1]
    assert [row.split()[0] for row in rows] == [newest["image_id"], five_images[-2]["image_id"]]
    assert f"{newest['width']}x{newest['height']}" in rows[0]
    assert rows[0].endswith("blue 4")
    columns = {
        name: rows[0][header.index(name) :].split()[0]
        for name in ("VISIBILITY", "OWNER", "FILE", "TITLE")
    }
    assert columns == {"VISIBILITY": "private", "OWNER": user, "FILE": "4.img", "TITLE": "blue"}
    assert "--all" in result.stderr


def test_ls_all_follows_every_page_and_filters(
    api: Api, user: str, five_images: list[dict[str, Any]]
) -> None:
    def listed(*args: str) -> list[str]:
        result = run(api, user, "ls", "--user-id", user, "--json", *args)
        assert result.exit_code == 0, result.output
        return [json.loads(line)["image_id"] for line in result.stdout.splitlines()]

    ids = [image["image_id"] for image in five_images]
    assert listed("--all", "--limit", "2", "--order", "asc") == ids
    assert listed("--all", "--limit", "2") == ids[::-1]
    assert listed("--all", "--tag", "red", "--order", "asc") == ids[:3]
    assert listed("--content-type", "image/jpeg", "--order", "asc") == ids[3:]
    assert listed("--title", "BLUE 4") == ids[4:]
    assert listed("--since", "2999-01-01") == []
    assert listed("--until", "2000-01-01") == []


def test_get_prints_the_resource_as_json(
    api: Api, user: str, five_images: list[dict[str, Any]]
) -> None:
    image_id = five_images[0]["image_id"]
    expected = api.client.get(f"/images/{image_id}", headers=api.auth(user)).json()

    pretty = run(api, user, "get", image_id)
    compact = run(api, user, "get", image_id, "--json")

    assert pretty.exit_code == compact.exit_code == 0
    assert json.loads(pretty.stdout) == json.loads(compact.stdout) == expected
    assert pretty.stdout.startswith("{\n  ")
    assert len(compact.stdout.splitlines()) == 1


# -- download ------------------------------------------------------------------------------


def test_upload_finds_heic_and_avif_photos_in_folders(api: Api, user: str, tmp_path: Path) -> None:
    album = tmp_path / "phone"
    album.mkdir()
    (album / "IMG_0001.HEIC").write_bytes(heic_bytes(40, 30))
    (album / "IMG_0002.avif").write_bytes(avif_bytes(40, 30))

    result = run(api, user, "upload", str(album), "--recursive")

    assert result.exit_code == 0, result.output
    ids = uploaded_ids(result)
    types = {
        Path(path).name: api.client.get(f"/images/{image_id}", headers=api.auth(user)).json()[
            "content_type"
        ]
        for path, image_id in ids.items()
    }
    assert types == {"IMG_0001.HEIC": "image/heic", "IMG_0002.avif": "image/avif"}


@pytest.mark.parametrize(
    ("make", "content_type"), [(heic_bytes, "image/heic"), (avif_bytes, "image/avif")]
)
def test_the_client_tells_heic_and_avif_apart_by_their_brand(
    make: Callable[..., bytes], content_type: str
) -> None:
    assert sniff_content_type(make(8, 6)[:16]) == content_type
    assert sniff_content_type(b"\x00\x00\x00\x18ftypisom\x00\x00\x00\x00") is None


def test_download_writes_the_original_bytes_to_a_file_or_into_a_folder(
    api: Api, user: str, tmp_path: Path
) -> None:
    original = image_bytes("image/webp", width=20)
    image_id = api.upload(user, data=original, filename="sunset.webp").json()["image_id"]

    to_file = run(api, user, "download", image_id, "-o", str(tmp_path / "copy.webp"))
    assert to_file.exit_code == 0, to_file.output
    assert (tmp_path / "copy.webp").read_bytes() == original

    folder = tmp_path / "downloads"
    into_folder = run(api, user, "download", image_id, "-o", f"{folder}/")
    assert into_folder.exit_code == 0, into_folder.output
    assert (folder / "sunset.webp").read_bytes() == original
    assert into_folder.stdout == f"{image_id}  {folder / 'sunset.webp'}\n"

    second = api.upload(user, data=image_bytes("image/gif"), filename="dawn.gif").json()
    several = run(api, user, "download", image_id, second["image_id"], "-o", str(tmp_path / "both"))
    assert several.exit_code == 0, several.output
    assert sorted(path.name for path in (tmp_path / "both").iterdir()) == [
        "dawn.gif",
        "sunset.webp",
    ]


def test_download_never_overwrites_a_file_without_force(
    api: Api, user: str, tmp_path: Path
) -> None:
    original = image_bytes("image/png", width=30)
    image_id = api.upload(user, data=original, filename="keep.png").json()["image_id"]
    (tmp_path / "keep.png").write_bytes(b"mine")

    refused = run(api, user, "download", image_id, "-o", str(tmp_path))
    assert refused.exit_code == 1
    assert "--force" in refused.stderr
    assert (tmp_path / "keep.png").read_bytes() == b"mine"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["keep.png"]  # no leftovers

    forced = run(api, user, "download", image_id, "-o", str(tmp_path), "--force")
    assert forced.exit_code == 0, forced.output
    assert (tmp_path / "keep.png").read_bytes() == original


def test_a_hostile_file_name_stays_inside_the_folder(api: Api, user: str, tmp_path: Path) -> None:
    folder = tmp_path / "inside"
    folder.mkdir()
    image_id = api.upload(user, filename="../../escape.png").json()["image_id"]

    result = run(api, user, "download", image_id, "-o", str(folder))

    assert result.exit_code == 0, result.output
    assert [path.name for path in tmp_path.rglob("*") if path.is_file()] == ["escape.png"]
    assert (folder / "escape.png").is_file()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("/absolute/photo.png", "photo.png"),
        ("..", "fallback.png"),
        (".bashrc", "bashrc"),
        ("red\x1b[31m.png", "red[31m.png"),
        ("", "fallback.png"),
        (None, "fallback.png"),
        ("é" * 200 + ".png", "é" * 125 + ".png"),
    ],
)
def test_safe_filename_keeps_one_harmless_component(name: str | None, expected: str) -> None:
    assert safe_filename(name, "fallback.png") == expected


def test_a_redirected_download_does_not_carry_the_token_and_its_name_is_made_safe(
    tmp_path: Path,
) -> None:
    seen: list[httpx.Request] = []

    def serve(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "api.test":
            return httpx.Response(307, headers={"Location": "https://blobs.test/signed?x=1"})
        disposition = "attachment; filename=\"x\"; filename*=UTF-8''..%2F..%2Fevil.png"
        return httpx.Response(200, content=b"bytes", headers={"Content-Disposition": disposition})

    client = ImagecoreClient("https://api.test", "secret", transport=httpx.MockTransport(serve))
    with client, client.download("01ABC") as response:
        target = filename_in(tmp_path, response, "01ABC")
        save(response.iter_bytes(), target, overwrite=False)

    assert [request.url.host for request in seen] == ["api.test", "blobs.test"]
    assert seen[0].headers["authorization"] == "Bearer secret"
    assert "authorization" not in seen[1].headers
    assert target == tmp_path / "evil.png"
    assert target.read_bytes() == b"bytes"
    with pytest.raises(DestinationExists):
        save(iter([b"other"]), target, overwrite=False)


# -- edit, thumbnail, stdout, --mine, umask, flag names -----------------------------------


def test_edit_changes_the_fields_asked_and_keeps_the_rest(api: Api, user: str) -> None:
    image = api.uploaded(user, title="Old", tags="beach,dusk", description="kept")

    result = run(
        api,
        user,
        "edit",
        image["image_id"],
        "--title",
        "New",
        "--add-tag",
        "Sunset",
        "--remove-tag",
        "BEACH",
        "--metadata",
        '{"camera": "X100"}',
        "--visibility",
        "public",
        "--json",
    )

    assert result.exit_code == 0, result.output
    edited = json.loads(result.stdout)
    assert edited == api.client.get(f"/images/{image['image_id']}", headers=api.auth(user)).json()
    assert edited["title"] == "New"
    assert edited["description"] == "kept"
    assert edited["tags"] == ["dusk", "sunset"]
    assert edited["metadata"] == {"camera": "X100"}
    assert edited["visibility"] == "public"
    assert edited["version"] == image["version"] + 1


def test_edit_of_a_version_no_longer_current_is_a_clear_conflict(api: Api, user: str) -> None:
    image = api.uploaded(user, title="Mine")
    first = run(api, user, "edit", image["image_id"], "--title", "Theirs")
    assert first.exit_code == 0, first.output

    stale = run(
        api,
        user,
        "edit",
        image["image_id"],
        "--title",
        "Lost",
        "--if-version",
        str(image["version"]),
    )

    assert stale.exit_code == 1
    assert f"is no longer at version {image['version']}" in stale.stderr
    assert f"(it is at version {image['version'] + 1})" in stale.stderr
    assert "nothing was changed" in stale.stderr
    now = api.client.get(f"/images/{image['image_id']}", headers=api.auth(user)).json()
    assert now["title"] == "Theirs"


def test_edit_needs_something_to_change_and_names_its_flags_in_errors(api: Api, user: str) -> None:
    image_id = api.upload(user).json()["image_id"]
    nothing = run(api, user, "edit", image_id)
    assert nothing.exit_code == 2
    assert "nothing to change" in nothing.stderr
    both = run(api, user, "edit", image_id, "--add-tag", "a", "--remove-tag", "A")
    assert both.exit_code == 2
    too_long = run(api, user, "edit", image_id, "--title", "t" * 201)
    assert too_long.exit_code == 1
    assert too_long.stderr.startswith("error: --title ")


def test_thumbnail_writes_the_thumbnail_to_a_file_or_stdout(
    api: Api, user: str, tmp_path: Path
) -> None:
    image = api.uploaded(user, data=image_bytes("image/png", width=300, height=200))
    assert image["thumbnail_status"] == "ready"
    served = api.client.get(f"/images/{image['image_id']}/thumbnail", headers=api.auth(user))

    to_file = run(api, user, "thumbnail", image["image_id"], "-o", str(tmp_path / "t.webp"))
    to_stdout = run(api, user, "thumbnail", image["image_id"], "-o", "-")

    assert to_file.exit_code == to_stdout.exit_code == 0, to_file.output + to_stdout.output
    assert (tmp_path / "t.webp").read_bytes() == served.content
    assert to_stdout.stdout_bytes == served.content
    assert max(Image.open(tmp_path / "t.webp").size) == 256


def test_thumbnail_of_an_image_that_is_gone_fails(api: Api, user: str) -> None:
    image_id = api.upload(user).json()["image_id"]
    api.client.delete(f"/images/{image_id}", headers=api.auth(user))

    result = run(api, user, "thumbnail", image_id)

    assert result.exit_code == 1
    assert f"error: {image_id}: no such image (NotFound" in result.stderr


def test_download_to_stdout_writes_only_the_bytes(api: Api, user: str, tmp_path: Path) -> None:
    original = image_bytes("image/gif", width=12)
    image_id = api.upload(user, data=original, filename="anim.gif").json()["image_id"]

    result = run(api, user, "download", image_id, "-o", "-")

    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == original
    assert not Path("-").exists()
    several = run(api, user, "download", image_id, image_id, "-o", "-")
    assert several.exit_code == 2
    assert "one id" in several.stderr


def test_ls_mine_shows_only_the_callers_images_with_owner_and_file_name(
    api: Api, user: str
) -> None:
    other = f"{user}-friend"
    theirs = api.upload(other, filename="theirs.png", visibility="public").json()
    mine = api.upload(user, data=image_bytes(width=9), filename="mine.png").json()

    everyone = run(api, user, "ls", "--json", "--limit", "100")
    only_mine = run(api, user, "ls", "--mine")

    assert everyone.exit_code == only_mine.exit_code == 0, everyone.output + only_mine.output
    assert theirs["image_id"] in everyone.stdout
    header, *rows = only_mine.stdout.splitlines()
    assert [row.split()[0] for row in rows] == [mine["image_id"]]
    assert rows[0][header.index("OWNER") :].split()[0] == user
    assert rows[0][header.index("FILE") :].split()[0] == "mine.png"
    twice = run(api, user, "ls", "--mine", "--user-id", other)
    assert twice.exit_code == 2


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_downloaded_files_are_created_as_the_umask_says(
    api: Api, user: str, tmp_path: Path, umask: int, mode: int
) -> None:
    image_id = api.upload(user, data=image_bytes(width=umask + 10)).json()["image_id"]
    previous = os.umask(umask)
    try:
        result = run(api, user, "download", image_id, "-o", str(tmp_path / "copy.png"))
    finally:
        os.umask(previous)

    assert result.exit_code == 0, result.output
    assert stat.S_IMODE((tmp_path / "copy.png").stat().st_mode) == mode


@pytest.mark.parametrize(
    ("args", "flag", "api_name"),
    [
        (["--since", "junk"], "--since", "start_date"),
        (["--until", "junk"], "--until", "end_date"),
        (["--content-type", "text/plain"], "--content-type", "content_type"),
    ],
)
def test_ls_errors_name_the_flags_typed(
    api: Api, user: str, args: list[str], flag: str, api_name: str
) -> None:
    result = run(api, user, "ls", *args)

    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {flag} ")
    assert api_name not in result.stderr


# -- rm and errors -------------------------------------------------------------------------


def test_rm_of_an_image_deleted_before_is_a_failure(api: Api, user: str) -> None:
    image_id = api.upload(user, data=image_bytes(width=41)).json()["image_id"]
    first = run(api, user, "rm", image_id)
    assert first.exit_code == 0, first.output

    again = run(api, user, "rm", image_id)

    assert again.exit_code == 1
    assert again.stdout == ""
    assert f"error: {image_id}: no such image (NotFound, request " in again.stderr


def test_rm_deletes_and_a_missing_id_is_a_failure(api: Api, user: str) -> None:
    image_id = api.upload(user).json()["image_id"]
    missing = "01ARZ3NDEKTSV4RRFFQ69G5FAV"

    result = run(api, user, "rm", missing, image_id)

    assert result.exit_code == 1
    assert result.stdout == f"{image_id}  deleted\n"
    assert f"error: {missing}: " in result.stderr
    assert "(NotFound, request " in result.stderr
    assert api.client.get(f"/images/{image_id}", headers=api.auth(user)).status_code == 404


def test_a_bad_token_is_explained_with_a_hint(api: Api) -> None:
    for result in (
        run(api, None, "ls", token="not-a-token"),
        run(api, None, "get", "01ARZ3NDEKTSV4RRFFQ69G5FAV"),
    ):
        assert result.exit_code == 1
        assert result.stdout == ""
        assert result.stderr.startswith("error: ")
        assert "(Unauthenticated, request " in result.stderr
        assert "IMAGECORE_TOKEN" in result.stderr
        assert "imagecore token USER" in result.stderr


def test_a_server_that_is_down_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commands, "RETRY", RetryPolicy(backoff=0.01, max_backoff=0.02))
    url = f"http://127.0.0.1:{free_port()}"
    image = write_image(tmp_path / "a.png")
    for args in (["ls"], ["upload", str(image)], ["rm", "01ARZ3NDEKTSV4RRFFQ69G5FAV"]):
        result = CliRunner().invoke(main, [*args, "--url", url, "--token", "t"])
        assert result.exit_code == 1, result.output
        assert f"cannot connect to the imagecore server at {url} (5 tries)" in result.stderr
        assert result.stderr.count("cannot connect") == 1


def test_errors_without_a_server_body_still_read_well() -> None:
    error = ClientError("Bad Gateway", status=502, code="HTTP 502")
    assert str(error) == "Bad Gateway (HTTP 502)"
