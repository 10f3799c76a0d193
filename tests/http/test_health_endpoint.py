"""GET /health: it needs no token, reports each store, and when one fails answers 503 naming the
store but not why, and logs the reason."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.api_client import Api
from tests.support.backend_server import running_server
from tests.support.fake_aws import moto_server
from tests.support.http_server import log_lines


def test_health_needs_no_token(api: Api) -> None:
    response = api.client.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"metadata": "ok", "blobs": "ok", "space": "ok"},
    }
    assert response.headers["x-request-id"]


def test_health_reports_each_store(api: Api) -> None:
    response = api.client.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"metadata": "ok", "blobs": "ok", "space": "ok"},
    }
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
