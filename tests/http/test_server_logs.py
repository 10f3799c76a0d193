"""What a real server logs: one JSON object a line, with the request id and the caller (a
background job's lines with the request that queued it), and never a token or the secret."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import httpx

from tests.support.api_client import Api
from tests.support.big_images import PNG_SIGNATURE, png_chunk
from tests.support.http_server import ServerProcess, log_lines, log_lines_written_so_far


def test_logs_are_json_with_the_request_id_and_never_a_token_or_secret(
    limited: Api, alice: str
) -> None:
    time.sleep(2)
    token = limited.token(alice)
    created = limited.upload(alice, title="logged")
    assert created.status_code == 201, created.text
    missing = limited.client.get("/images/nope", headers=limited.auth(alice))
    forged = limited.client.get("/images", headers={"Authorization": f"Bearer {token}x"})
    ids = {r.headers["x-request-id"] for r in (created, missing, forged)}

    lines = log_lines_written_so_far(limited.server)  # each parses as JSON, or this fails
    text = limited.server.log_path.read_text()
    assert token not in text
    assert token.split(".")[2] not in text
    secret = Path(limited.server.data_dir, "secret.key")
    if secret.exists():
        assert secret.read_text().strip() not in text
    by_request = {
        line["request_id"]: line for line in lines if line["logger"] == "imagecore.access"
    }
    assert ids <= set(by_request)
    created_line = by_request[created.headers["x-request-id"]]
    assert created_line["status"] == 201
    assert created_line["caller"] == alice
    assert created_line["method"] == "POST"
    assert created_line["path"] == "/images"
    assert by_request[forged.headers["x-request-id"]]["caller"] is None
    for line in lines:
        assert {"time", "level", "logger", "message", "request_id"} <= set(line)


def test_a_thumbnail_job_logs_with_the_id_of_the_upload_that_queued_it(tmp_path: Path) -> None:
    """The job may run in another worker process than the upload, long after it: the request
    id travels with the job in the database."""
    undecodable = (
        PNG_SIGNATURE
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0))
        + png_chunk(b"IDAT", b"not a zlib stream")
        + png_chunk(b"IEND", b"")
    )
    server = ServerProcess(
        tmp_path / "data",
        workers=2,
        IMAGECORE_BACKEND="filesystem",
        IMAGECORE_THUMBNAIL_ATTEMPTS="1",
    ).start()
    try:
        headers = {"Authorization": f"Bearer {server.token('alice')}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
            created = http.post("/images", files={"file": ("bad.png", undecodable, "image/png")})
            assert created.status_code == 201, created.text
            image_id = created.json()["image_id"]
            deadline = time.monotonic() + 60
            status = "pending"
            while status == "pending" and time.monotonic() < deadline:
                time.sleep(0.1)
                status = http.get(f"/images/{image_id}").json()["thumbnail_status"]
    finally:
        server.stop()

    assert status == "failed"
    job_lines = [
        line
        for line in log_lines(server)
        if line["logger"] == "imagecore.thumbnails" and image_id in line["message"]
    ]
    assert job_lines, "the failed thumbnail is logged"
    assert {line["request_id"] for line in job_lines} == {created.headers["x-request-id"]}
