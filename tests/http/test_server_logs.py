"""What a real server logs: one JSON object a line, with the request id and the caller, and never
a token or the secret."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.api_client import Api
from tests.support.http_server import log_lines


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
