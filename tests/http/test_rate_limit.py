"""The per-user rate limit of a real server, on each backend (``limited``: a burst of BURST, then
one request a second): past the burst a user gets 429 with Retry-After while others go on, every
endpoint counts, and a request without a valid token is refused before it is counted."""

from __future__ import annotations

import time

from tests.support.api_assertions import assert_error
from tests.support.api_client import Api
from tests.support.backend_server import BURST


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
