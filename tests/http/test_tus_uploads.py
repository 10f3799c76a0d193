"""Resumable uploads by tus 1.0 at /files/, with the tus project's own Python client (tuspy) as
the proof that a standard client works unchanged, on every backend whose server keeps partial
bytes (memory, filesystem); on aws the bytes never pass through the API, so /files/ is not
there."""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

import httpx
import pytest
from tusclient import client as tus
from tusclient.exceptions import TusCommunicationError

from tests.support.api_client import Api
from tests.support.big_images import padded_png

MiB = 1024 * 1024
LONG = b"x" * 999  # a title over the limit
OFFSET = {"Content-Type": "application/offset+octet-stream"}
CHUNK = 5 * MiB
TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture
def tus_api(api: Api) -> Api:
    if api.server.environ.get("IMAGECORE_BACKEND") == "aws":
        pytest.skip("on aws the bytes go to S3 by multipart upload: the API speaks no tus")
    return api


def uploader(api: Api, user: str, data: bytes, **options: Any) -> Any:
    import io

    client = tus.TusClient(f"{api.server.url}/files/", headers=api.auth(user))
    return client.uploader(file_stream=io.BytesIO(data), chunk_size=CHUNK, **options)


def test_a_stopped_upload_resumes_from_its_url_sending_only_the_rest(
    tus_api: Api, alice: str
) -> None:
    data = padded_png(17 * MiB)
    first = uploader(
        tus_api, alice, data, metadata={"filename": "big.png", "title": "Resumed", "tags": "a,b"}
    )
    first.upload_chunk()
    first.upload_chunk()  # then the client stops: the connection drops, the laptop closes
    assert first.offset == 2 * CHUNK

    second = uploader(tus_api, alice, data, url=first.url)
    assert second.offset == 2 * CHUNK  # learnt from the server (HEAD), not from the first
    sent = []
    while second.offset < len(data):
        before = second.offset
        second.upload_chunk()
        sent.append(second.offset - before)
    assert sum(sent) == len(data) - 2 * CHUNK  # only the remaining 7 MiB went
    location = second.request.response_headers["image-location"]

    image = tus_api.client.get(location, headers=tus_api.auth(alice)).json()
    assert image["sha256"] == hashlib.sha256(data).hexdigest()
    assert image["size"] == len(data)
    assert (image["filename"], image["title"], image["tags"]) == ("big.png", "Resumed", ["a", "b"])
    listed = [found["image_id"] for found in tus_api.list_all(alice)]
    assert image["image_id"] in listed
    _, download = tus_api.download(alice, image["image_id"])
    assert hashlib.sha256(download.content).digest() == hashlib.sha256(data).digest()

    # A HEAD after the end (a client that lost the last answer) names the image too.
    head = tus_api.client.head(first.url, headers={**tus_api.auth(alice), **TUS})
    assert head.headers["upload-offset"] == str(len(data))
    assert head.headers["image-location"] == location


def test_checksums_are_verified_and_a_mismatch_keeps_nothing(tus_api: Api, alice: str) -> None:
    data = padded_png(2 * MiB)
    checked = uploader(tus_api, alice, data, upload_checksum=True)
    checked.upload_chunk()  # tuspy sends its sha1 of each chunk
    assert checked.offset == len(data)

    created = tus_api.client.post(
        "/files/", headers={**tus_api.auth(alice), **TUS, "Upload-Length": str(len(data))}
    )
    assert created.status_code == 201, created.text
    url = created.headers["location"]
    piece = data[:MiB]
    wrong = base64.b64encode(hashlib.sha256(b"other bytes").digest()).decode()
    patched = tus_api.client.patch(
        url,
        content=piece,
        headers={
            **tus_api.auth(alice),
            **TUS,
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": "0",
            "Upload-Checksum": f"sha256 {wrong}",
        },
    )
    assert patched.status_code == 460
    assert patched.json()["error"] == "ChecksumMismatch"
    head = tus_api.client.head(url, headers={**tus_api.auth(alice), **TUS})
    assert head.headers["upload-offset"] == "0"
    right = base64.b64encode(hashlib.sha256(piece).digest()).decode()
    patched = tus_api.client.patch(
        url,
        content=piece,
        headers={
            **tus_api.auth(alice),
            **TUS,
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": "0",
            "Upload-Checksum": f"sha256 {right}",
        },
    )
    assert patched.status_code == 204
    assert patched.headers["upload-offset"] == str(MiB)


def test_termination_drops_the_upload(tus_api: Api, alice: str) -> None:
    data = padded_png(6 * MiB)
    stopped = uploader(tus_api, alice, data)
    stopped.upload_chunk()
    headers = {**tus_api.auth(alice), **TUS}
    assert tus_api.client.delete(stopped.url, headers=headers).status_code == 204
    assert tus_api.client.head(stopped.url, headers=headers).status_code == 410
    with pytest.raises(TusCommunicationError):  # the client learns it is gone, from its HEAD
        uploader(tus_api, alice, data, url=stopped.url).upload_chunk()
    assert tus_api.list_all(alice, user_id=alice) == []


def test_only_the_owner_sees_or_sends_to_an_upload(tus_api: Api, alice: str, bob: str) -> None:
    data = padded_png(MiB)
    started = tus_api.client.post(
        "/files/", headers={**tus_api.auth(alice), **TUS, "Upload-Length": str(len(data))}
    )
    url = started.headers["location"]
    bobs = {**tus_api.auth(bob), **TUS}
    assert tus_api.client.head(url, headers=bobs).status_code == 404
    patched = tus_api.client.patch(
        url,
        content=data,
        headers={**bobs, **OFFSET, "Upload-Offset": "0"},
    )
    assert patched.status_code == 404
    assert tus_api.client.delete(url, headers=bobs).status_code == 404
    assert tus_api.client.head(url, headers={**tus_api.auth(alice), **TUS}).status_code == 200
    assert tus_api.client.head(url, headers=TUS).status_code == 401


def test_a_file_that_is_no_image_is_refused_once_its_head_is_in(tus_api: Api, alice: str) -> None:
    headers = {**tus_api.auth(alice), **TUS}
    created = tus_api.client.post(
        "/files/",
        headers={
            **headers,
            "Upload-Length": str(3 * MiB),
            "Content-Type": "application/offset+octet-stream",
        },
        content=b"%PDF-1.7 " + os.urandom(2 * MiB),
    )
    assert created.status_code == 415, created.text
    assert created.json()["error"] == "UnsupportedMediaType"
    assert tus_api.list_all(alice, user_id=alice) == []


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ({"Upload-Length": "abc"}, 400),
        ({}, 400),  # no Upload-Length
        ({"Upload-Length": str(10**15)}, 413),
        ({"Upload-Length": "10", "Upload-Metadata": "colour cmVk"}, 400),
        ({"Upload-Length": "10", "Upload-Metadata": "title !!!"}, 400),
        (
            {
                "Upload-Length": "10",
                "Upload-Metadata": f"title {base64.b64encode(b'x' * 999).decode()}",
            },
            400,
        ),
    ],
)
def test_bad_creations_are_refused_with_the_error_format(
    tus_api: Api, alice: str, extra: dict[str, str], status: int
) -> None:
    answer = tus_api.client.post("/files/", headers={**tus_api.auth(alice), **TUS, **extra})
    assert answer.status_code == status, answer.text
    assert set(answer.json()) == {"error", "message", "request_id"}
    assert answer.headers["tus-resumable"] == "1.0.0"


def test_the_server_says_what_it_speaks(tus_api: Api) -> None:
    options = tus_api.client.options("/files/")
    assert options.status_code == 204
    assert options.headers["tus-version"] == "1.0.0"
    assert set(options.headers["tus-extension"].split(",")) >= {
        "creation",
        "creation-with-upload",
        "termination",
        "expiration",
        "checksum",
    }
    assert "sha256" in options.headers["tus-checksum-algorithm"].split(",")
    other_version = tus_api.client.post("/files/", headers={"Tus-Resumable": "0.2.2"})
    assert other_version.status_code == 412
    assert other_version.headers["tus-version"] == "1.0.0"


def test_a_wrong_offset_is_a_conflict_and_changes_nothing(tus_api: Api, alice: str) -> None:
    headers = {**tus_api.auth(alice), **TUS}
    data = padded_png(2 * MiB)
    created = tus_api.client.post(
        "/files/",
        headers={
            **headers,
            "Upload-Length": str(len(data)),
            "Content-Type": "application/offset+octet-stream",
        },
        content=data[:MiB],
    )
    assert created.status_code == 201
    assert created.headers["upload-offset"] == str(MiB)
    assert "upload-expires" in created.headers
    patched = tus_api.client.patch(
        created.headers["location"],
        content=data[:MiB],
        headers={
            **headers,
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": "0",
        },
    )
    assert patched.status_code == 409
    too_much = tus_api.client.patch(
        created.headers["location"],
        content=data[MiB:] + b"more",
        headers={
            **headers,
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": str(MiB),
        },
    )
    assert too_much.status_code == 413
    head = tus_api.client.head(created.headers["location"], headers=headers)
    assert head.headers["upload-offset"] == str(MiB)


def test_aws_has_no_tus_endpoint(api: Api, alice: str) -> None:
    if api.server.environ.get("IMAGECORE_BACKEND") != "aws":
        pytest.skip("only the aws backend keeps no partial bytes")
    answer = api.client.post("/files/", headers={**api.auth(alice), **TUS, "Upload-Length": "10"})
    assert answer.status_code == 404
    assert isinstance(answer, httpx.Response)
