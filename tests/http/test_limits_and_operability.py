"""The server's guards and what an operator sees: the per-user rate limit, slow and oversized
requests, security headers, JSON logs with request ids and no secrets, and /health.

Most of these run against a server of their own with a small rate limit and a one-second client
timeout, on each backend.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.aws import moto_server
from tests.http.conftest import BACKENDS, Api, running_server
from tests.http.helpers import assert_error
from tests.http.server import ServerProcess
from tests.images import image_bytes

BURST = 5


@pytest.fixture(scope="module", params=BACKENDS)
def limited(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    root = tmp_path_factory.mktemp(f"limited-{request.param}")
    with running_server(
        request.param,
        root,
        IMAGECORE_RATE_LIMIT_PER_SECOND="1",
        IMAGECORE_RATE_LIMIT_BURST=str(BURST),
        IMAGECORE_CLIENT_TIMEOUT_SECONDS="1",
    ) as server:
        api = Api(server)
        # A new connection per request: this server closes a connection idle for a second (the
        # client timeout), and a request sent on it at that moment would be lost in the race.
        api.client.close()
        api.client = httpx.Client(
            base_url=server.url, timeout=30, limits=httpx.Limits(max_keepalive_connections=0)
        )
        yield api
        api.client.close()


def raw_exchange(server: ServerProcess, request: bytes, wait: float = 15) -> bytes:
    """What the server answers to ``request`` sent as is on a new connection, until it closes
    the connection or ``wait`` seconds pass."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=wait) as connection:
        connection.sendall(request)
        answer = b""
        try:
            while chunk := connection.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer and _complete(answer):
                    break
        except TimeoutError:
            pass
        return answer


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return True


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def json_body(answer: bytes) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(answer.partition(b"\r\n\r\n")[2])
    return body


# --- the rate limit ---------------------------------------------------------------------------


def test_a_user_past_the_burst_gets_429_with_retry_after_and_others_are_unaffected(
    limited: Api, alice: str, bob: str
) -> None:
    statuses = [limited.list(alice).status_code for _ in range(BURST)]
    assert statuses == [200] * BURST
    refused = limited.list(alice)
    assert_error(refused, 429, "TooManyRequests")
    retry_after = int(refused.headers["retry-after"])
    assert retry_after >= 1
    assert limited.list(bob).status_code == 200

    time.sleep(retry_after)
    assert limited.list(alice).status_code == 200


def test_the_limit_counts_every_endpoint_of_a_user_and_a_refused_write_changes_nothing(
    limited: Api, alice: str
) -> None:
    for _ in range(BURST):
        limited.list(alice)
    refused = limited.upload(alice, title="too soon")
    assert_error(refused, 429, "TooManyRequests")
    time.sleep(int(refused.headers["retry-after"]) + 1)
    assert limited.list(alice).json()["images"] == []


def test_requests_without_a_valid_token_are_refused_before_they_are_counted(
    limited: Api, alice: str
) -> None:
    for _ in range(BURST * 2):
        answer = limited.client.get("/images", headers={"Authorization": "Bearer nonsense"})
        assert_error(answer, 401, "Unauthenticated")
    assert limited.list(alice).status_code == 200


# --- slow and oversized requests ----------------------------------------------------------------


def test_a_client_that_stops_sending_an_upload_gets_408_and_nothing_is_stored(
    limited: Api, alice: str
) -> None:
    time.sleep(1)  # a token for alice, whatever ran before
    data = image_bytes("image/png", 64, 64)
    head = (
        f"POST /images?title=stalled HTTP/1.1\r\nHost: test\r\n"
        f"Authorization: Bearer {limited.token(alice)}\r\nContent-Type: image/png\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode()
    answer = raw_exchange(limited.server, head + data[:20])
    assert status_of(answer) == 408, answer
    assert json_body(answer)["error"] == "RequestTimeout"
    time.sleep(1)
    assert limited.list(alice).json()["images"] == []


def test_a_client_that_stops_sending_a_json_body_gets_408(limited: Api, alice: str) -> None:
    time.sleep(1)
    head = (
        f"POST /uploads HTTP/1.1\r\nHost: test\r\n"
        f"Authorization: Bearer {limited.token(alice)}\r\nContent-Type: application/json\r\n"
        f"Content-Length: 100\r\n\r\n"
    ).encode()
    answer = raw_exchange(limited.server, head + b'{"content_type": ')
    assert status_of(answer) == 408, answer
    assert json_body(answer)["error"] == "RequestTimeout"


def test_a_client_that_never_finishes_its_headers_is_cut_off(limited: Api) -> None:
    began = time.monotonic()
    answer = raw_exchange(limited.server, b"GET /health HTTP/1.1\r\nHost: test\r\nX-Slow: 1\r\n")
    assert b"200 OK" not in answer
    assert time.monotonic() - began < 10, "the connection was held open"


def test_headers_past_the_apps_limit_get_431_in_the_error_format(limited: Api) -> None:
    answer = raw_exchange(
        limited.server,
        b"GET /health HTTP/1.1\r\nHost: test\r\nX-Huge: " + b"a" * 40_000 + b"\r\n\r\n",
    )
    assert status_of(answer) == 431, answer[:200]
    assert json_body(answer)["error"] == "HeadersTooLarge"


def test_headers_within_the_limit_are_served(limited: Api) -> None:
    answer = raw_exchange(
        limited.server,
        b"GET /health HTTP/1.1\r\nHost: test\r\nX-Big: " + b"a" * 30_000 + b"\r\n\r\n",
    )
    assert status_of(answer) == 200, answer[:200]


@pytest.mark.parametrize(
    "headers",
    [
        b"X-Huge: " + b"a" * 600_000 + b"\r\n",
        b"".join(b"X-Many-%d: 1\r\n" % n for n in range(200)),
    ],
    ids=["past the read buffer", "too many headers"],
)
def test_heads_the_server_cannot_hold_get_its_431(limited: Api, headers: bytes) -> None:
    answer = raw_exchange(limited.server, b"GET /health HTTP/1.1\r\nHost: test\r\n" + headers)
    assert status_of(answer) == 431, answer[:200]


def test_an_answer_given_before_the_body_was_read_closes_the_connection(
    api: Api, alice: str
) -> None:
    refused = raw_exchange(
        api.server,
        b"POST /images HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer nonsense\r\n"
        b"Content-Type: image/png\r\nContent-Length: 100\r\n\r\n0123456789",
    )
    assert status_of(refused) == 401
    assert b"\r\nconnection: close\r\n" in refused.lower()

    accepted = api.upload(alice)
    assert accepted.status_code == 201
    assert "close" not in accepted.headers.get("connection", "")


# --- security headers ---------------------------------------------------------------------------


def assert_security_headers(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-request-id"]


def test_every_kind_of_response_carries_the_security_headers(api: Api, alice: str) -> None:
    image = api.uploaded(alice, filename='evil"\r\nname<script>.png')
    responses = [
        api.client.get("/health"),
        api.client.get("/openapi.json"),
        api.client.get("/docs"),
        api.list(alice),
        api.client.get(f"/images/{image['image_id']}", headers=api.auth(alice)),
        api.client.get("/images/nope", headers=api.auth(alice)),
        api.client.get("/images"),
        api.client.put("/images"),
        api.client.get("/no/such/path"),
        api.client.post("/images", headers=api.auth(alice), content=b"x"),
    ]
    for response in responses:
        assert_security_headers(response)
    for response in responses[:2] + responses[3:]:
        assert response.headers["content-security-policy"].startswith("default-src 'none'")

    first, download = api.download(alice, image["image_id"])
    assert_security_headers(first)
    if first is download:  # served by us, not by a presigned S3 URL
        assert "sandbox" in download.headers["content-security-policy"]
        assert re.fullmatch(
            r"""attachment; filename="[ !#-\[\]-~]+"; filename\*=UTF-8''[A-Za-z0-9%._~-]+""",
            download.headers["content-disposition"],
        ), download.headers["content-disposition"]


def test_the_docs_page_may_run_only_its_own_scripts(api: Api) -> None:
    policy = api.client.get("/docs").headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-eval" not in policy
    assert "script-src 'self' 'unsafe-inline'" not in policy


# --- logs ---------------------------------------------------------------------------------------


def log_lines(server: ServerProcess) -> list[dict[str, Any]]:
    return [json.loads(line) for line in server.log_path.read_text().splitlines() if line]


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

    time.sleep(0.5)  # the access line is written once the response is sent
    lines = log_lines(limited.server)  # every line parses as JSON, or this fails
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


# --- health -------------------------------------------------------------------------------------


def test_health_reports_each_store(api: Api) -> None:
    response = api.client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"metadata": "ok", "blobs": "ok"}}
    assert response.headers["cache-control"] == "no-store"


def test_health_is_503_naming_the_store_that_fails_without_revealing_why(
    tmp_path: Path,
) -> None:
    with running_server("aws", tmp_path) as server:
        bucket = server.environ["IMAGECORE_BUCKET"]
        s3 = moto_server().clients().s3
        s3.delete_bucket(Bucket=bucket)
        try:
            response = httpx.get(f"{server.url}/health", timeout=30)
        finally:
            s3.create_bucket(Bucket=bucket)  # for the fixture's own cleanup
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "failing"
        assert body["checks"]["metadata"] == "ok"
        assert body["checks"]["blobs"] != "ok"
        assert bucket not in response.text
        failure = [
            line
            for line in log_lines(server)
            if line["request_id"] == response.headers["x-request-id"]
            and line["logger"] == "imagecore.health"
        ]
        assert failure
        assert failure[0]["level"] == "ERROR"
