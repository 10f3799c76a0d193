"""Upload sessions at /upload-sessions: on aws a file goes straight to S3 (a moto server here) in
parts PUT to presigned URLs, resumes from the parts S3 lists, and once completed becomes the
image by the worker (run here by hand, as moto runs no Lambda: the S3 event it would get). The
embedded servers answer 400 there, pointing to tus at /files/."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api_assertions import assert_error, assert_matches_schema
from tests.support.api_client import Api
from tests.support.big_images import padded_png
from tests.support.sample_images import image_bytes

MiB = 1024 * 1024
SIZE = 17 * MiB


@pytest.fixture
def aws_api(api: Api) -> Api:
    if api.server.environ.get("IMAGECORE_BACKEND") != "aws":
        pytest.skip("the embedded servers take resumable uploads by tus (test_tus_uploads)")
    return api


@pytest.fixture(scope="module")
def big_png() -> bytes:
    return padded_png(SIZE)


def b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def open_session(api: Api, user: str, data: bytes, **fields: object) -> dict[str, Any]:
    response = api.client.post(
        "/upload-sessions",
        headers=api.auth(user),
        json={"filename": "big.png", "size": len(data), **fields},
    )
    assert response.status_code == 201, response.text
    session = response.json()
    assert_matches_schema(session, "UploadSession")
    assert response.headers["Location"] == f"/upload-sessions/{session['upload_id']}"
    return dict(session)


def part_of(data: bytes, session: dict[str, Any], number: int) -> bytes:
    start = (number - 1) * session["part_size"]
    return data[start : start + session["part_size"]]


def part_urls(
    api: Api, user: str, session: dict[str, Any], data: bytes, numbers: list[int]
) -> dict[str, Any]:
    response = api.client.post(
        f"/upload-sessions/{session['upload_id']}/part-urls",
        headers=api.auth(user),
        json={
            "parts": [
                {"number": n, "sha256": b64_sha256(part_of(data, session, n))} for n in numbers
            ]
        },
    )
    assert response.status_code == 200, response.text
    assert_matches_schema(response.json(), "PartUrls")
    return dict(response.json())


def send_parts(
    api: Api, user: str, session: dict[str, Any], data: bytes, numbers: list[int]
) -> None:
    for given in part_urls(api, user, session, data, numbers)["urls"]:
        sent = httpx.put(
            given["url"],
            content=part_of(data, session, given["number"]),
            headers=given["headers"],
            timeout=60,
        )
        assert sent.status_code == 200, sent.text
        assert sent.headers["ETag"]


def state(api: Api, user: str, session: dict[str, Any]) -> dict[str, Any]:
    response = api.client.get(f"/upload-sessions/{session['upload_id']}", headers=api.auth(user))
    assert response.status_code == 200, response.text
    assert_matches_schema(response.json(), "UploadSessionState")
    return dict(response.json())


def run_worker(api: Api, upload_id: str, owner: str, size: int) -> None:
    """What the worker Lambda does with S3's event of the completed file."""
    from entrypoints.aws_lambda.queue_worker import Worker
    from entrypoints.container import build_container
    from entrypoints.settings import Settings
    from imagecore.blob_keys import upload_key
    from tests.support.fake_aws import REGION
    from tests.support.lambda_events import s3_object_created

    environ = api.server.environ
    container = build_container(
        Settings(
            backend="aws",
            table=environ["IMAGECORE_TABLE"],
            bucket=environ["IMAGECORE_BUCKET"],
            aws_endpoint_url=environ["AWS_ENDPOINT_URL"],
            aws_region=REGION,
            token_secret="worker-of-the-upload-session-tests",
        )
    )
    worker = Worker(container.images(), environ["IMAGECORE_BUCKET"])
    record = s3_object_created(environ["IMAGECORE_BUCKET"], upload_key(owner, upload_id), size)
    worker.handle({"Records": [record]})
    # Its thumbnail job runs in this process (no queue is set): the copy must read back too.
    assert container.local_jobs().join(timeout=30)
    made = container.repository().get(upload_id)
    assert made is not None
    assert made.thumbnail_status.value == "ready"


def test_a_file_sent_in_parts_to_s3_resumes_from_the_parts_listed_and_becomes_the_image(
    aws_api: Api, alice: str, big_png: bytes
) -> None:
    api = aws_api
    session = open_session(api, alice, big_png, title="big one", tags=["x"])
    assert (session["size"], session["part_size"], session["part_count"]) == (SIZE, 8 * MiB, 3)

    send_parts(api, alice, session, big_png, [1])  # and the connection drops
    resumed = state(api, alice, session)
    assert [(p["number"], p["size"]) for p in resumed["parts"]] == [(1, 8 * MiB)]
    assert (resumed["received_bytes"], resumed["complete"]) == (8 * MiB, False)

    send_parts(api, alice, session, big_png, [2, 3])
    completed = api.client.post(
        f"/upload-sessions/{session['upload_id']}/complete", headers=api.auth(alice)
    )
    assert completed.status_code == 202, completed.text
    assert completed.json() == {
        "upload_id": session["upload_id"],
        "image_url": f"/images/{session['upload_id']}",
    }
    assert state(api, alice, session)["complete"] is True

    run_worker(api, session["upload_id"], alice, SIZE)

    image = api.client.get(session["image_url"], headers=api.auth(alice))
    assert image.status_code == 200, image.text
    assert image.json()["sha256"] == hashlib.sha256(big_png).hexdigest()
    assert (image.json()["size"], image.json()["title"]) == (SIZE, "big one")
    assert state(api, alice, session)["complete"] is True
    # S3 copied the file to the image's key (the worker read it once, to check it).
    download = api.client.get(f"{session['image_url']}/download", headers=api.auth(alice))
    assert download.status_code == 307
    stored = httpx.get(download.headers["Location"], timeout=60)
    assert hashlib.sha256(stored.content).hexdigest() == hashlib.sha256(big_png).hexdigest()


def test_completing_with_parts_missing_is_a_conflict_naming_them(aws_api: Api, alice: str) -> None:
    data = b"\x89PNG" + bytes(20 * MiB)
    session = open_session(aws_api, alice, data)
    send_parts(aws_api, alice, session, data, [2])

    response = aws_api.client.post(
        f"/upload-sessions/{session['upload_id']}/complete", headers=aws_api.auth(alice)
    )

    body = assert_error(response, 409, "Conflict")
    assert "parts 1, 3 are missing" in body["message"]
    cancelled = aws_api.client.delete(
        f"/upload-sessions/{session['upload_id']}", headers=aws_api.auth(alice)
    )
    assert cancelled.status_code == 204
    assert_error(
        aws_api.client.get(f"/upload-sessions/{session['upload_id']}", headers=aws_api.auth(alice)),
        410,
        "Gone",
    )


def test_each_part_url_signs_the_parts_checksum_so_s3_refuses_other_bytes(
    aws_api: Api, alice: str
) -> None:
    # moto server verifies neither signatures nor checksums (it takes a part with another
    # checksum): S3 does, as the checksum header is signed into the URL.
    data = image_bytes("image/png", 4, 3)
    session = open_session(aws_api, alice, data)
    (given,) = part_urls(aws_api, alice, session, data, [1])["urls"]
    assert given["headers"] == {"x-amz-checksum-sha256": b64_sha256(data)}
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(given["url"]).query)
    assert "x-amz-checksum-sha256" in query["X-Amz-SignedHeaders"][0].split(";")
    assert "content-length" in query["X-Amz-SignedHeaders"][0].split(";")


def test_a_file_the_caller_has_is_the_answer_and_no_session_is_made(
    aws_api: Api, alice: str
) -> None:
    data = image_bytes("image/png", 5, 4)
    image = aws_api.uploaded(alice, data=data)

    response = aws_api.client.post(
        "/upload-sessions",
        headers=aws_api.auth(alice),
        json={"size": len(data), "sha256": hashlib.sha256(data).hexdigest()},
    )

    assert response.status_code == 200, response.text
    assert response.json()["image_id"] == image["image_id"]
    assert response.headers["Content-Location"] == f"/images/{image['image_id']}"


def test_other_users_sessions_are_not_found(aws_api: Api, alice: str, bob: str) -> None:
    data = image_bytes("image/png", 4, 3)
    session = open_session(aws_api, alice, data)
    where = f"/upload-sessions/{session['upload_id']}"
    for response in (
        aws_api.client.get(where, headers=aws_api.auth(bob)),
        aws_api.client.post(f"{where}/complete", headers=aws_api.auth(bob)),
        aws_api.client.delete(where, headers=aws_api.auth(bob)),
        aws_api.client.post(
            f"{where}/part-urls",
            headers=aws_api.auth(bob),
            json={"parts": [{"number": 1, "sha256": b64_sha256(data)}]},
        ),
    ):
        assert_error(response, 404, "NotFound")
    assert state(aws_api, alice, session)["parts"] == []


def test_the_embedded_servers_point_to_tus(api: Api, alice: str) -> None:
    if api.server.environ.get("IMAGECORE_BACKEND") == "aws":
        pytest.skip("on aws the sessions are S3 multipart uploads")
    some = "/upload-sessions/01JD0000000000000000000001"
    for response in (
        api.client.post("/upload-sessions", headers=api.auth(alice), json={"size": 10}),
        api.client.get(some, headers=api.auth(alice)),
        api.client.delete(some, headers=api.auth(alice)),
        api.client.post(f"{some}/complete", headers=api.auth(alice)),
        api.client.post(f"{some}/part-urls", headers=api.auth(alice), content=b"not json"),
    ):
        body = assert_error(response, 400, "InvalidInput")
        assert "tus at /files/" in body["message"]


def test_the_clients_session_route_sends_a_file_in_parts_and_gets_its_image(
    aws_api: Api, alice: str, big_png: bytes, tmp_path: Path
) -> None:
    """`imagecore upload`'s way on AWS, against this server: the client and the API agree."""
    from entrypoints.client.api import ImagecoreClient, UploadFields
    from entrypoints.client.resumable import ResumeState, SessionRoute
    from entrypoints.client.uploads import LocalFile

    path = tmp_path / "big.png"
    path.write_bytes(big_png)
    client = ImagecoreClient(aws_api.server.url, aws_api.token(alice))
    route = SessionRoute(
        client, UploadFields(title="by the client"), ResumeState(tmp_path / "s"), 30
    )
    file = LocalFile.read(path)
    with worker_making_the_image(aws_api, alice):
        sent = route.send(file, None)

    assert sent.created
    assert sent.image["sha256"] == hashlib.sha256(big_png).hexdigest()
    assert sent.image["title"] == "by the client"


@contextlib.contextmanager
def worker_making_the_image(api: Api, user: str) -> Iterator[None]:
    """The worker, which moto server does not run, making the image of the user's session once
    its file has landed, while the block runs."""
    done = threading.Event()

    def worker() -> None:
        while not done.is_set():
            for session in client_sessions(api, user):
                run_worker(api, session, user, SIZE)
                return
            time.sleep(0.1)

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(10)


def client_sessions(api: Api, user: str) -> list[str]:
    """The ids of the user's completed sessions whose file waits for the worker."""
    import boto3

    environ = api.server.environ
    s3 = boto3.client("s3", endpoint_url=environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
    listing = s3.list_objects_v2(Bucket=environ["IMAGECORE_BUCKET"], Prefix=f"uploads/{user}/")
    return [item["Key"].rsplit("/", 1)[1] for item in listing.get("Contents", [])]


def test_the_client_stopped_part_way_sends_only_the_missing_parts_when_run_again(
    aws_api: Api, alice: str, big_png: bytes, tmp_path: Path
) -> None:
    """Ctrl-C after the first part; the next run lists the parts S3 holds and sends the rest."""
    from entrypoints.client.api import ImagecoreClient, UploadFields
    from entrypoints.client.resumable import ResumeState, SessionRoute, UploadStopped
    from entrypoints.client.uploads import LocalFile

    path = tmp_path / "big.png"
    path.write_bytes(big_png)
    file = LocalFile.read(path)
    state = ResumeState(tmp_path / "uploads.json")
    first_run: list[int] = []
    with ImagecoreClient(aws_api.server.url, aws_api.token(alice)) as client:
        route = SessionRoute(client, UploadFields(), state, 30)
        with pytest.raises(UploadStopped):
            route.send(file, first_run.append, stopping=lambda: sum(first_run) > 0)
    assert sum(first_run) == 8 * MiB  # one part of three

    second_run: list[int] = []
    held: list[int] = []
    with ImagecoreClient(aws_api.server.url, aws_api.token(alice)) as client:
        route = SessionRoute(client, UploadFields(), state, 30)
        with worker_making_the_image(aws_api, alice):
            sent = route.send(file, second_run.append, held.append)

    assert held == [8 * MiB]
    assert sum(second_run) == SIZE - 8 * MiB  # only the two parts S3 lacked
    assert sent.image["sha256"] == hashlib.sha256(big_png).hexdigest()
