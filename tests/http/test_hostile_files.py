"""The corpus of hostile files (tests/support/malicious_files.py) uploaded to a real server, on
each backend: each gets its documented answer, and the server stays healthy."""

from __future__ import annotations

import pytest

from tests.support.api_assertions import assert_error
from tests.support.api_client import Api
from tests.support.malicious_files import ACCEPTED, EMPTY, malicious_corpus


@pytest.mark.parametrize("hostile", malicious_corpus(), ids=lambda hostile: hostile.name)
def test_every_hostile_file_gets_its_answer_and_the_server_stays_healthy(
    api: Api, alice: str, hostile: object
) -> None:
    from tests.support.malicious_files import MaliciousFile

    assert isinstance(hostile, MaliciousFile)
    response = api.upload(alice, hostile.data, filename="x.jpg", client_type="image/jpeg")
    if hostile.expected == ACCEPTED:
        assert response.status_code == 201, response.text
        image = response.json()
        assert (image["content_type"], image["width"], image["height"]) == (
            hostile.content_type,
            hostile.width,
            hostile.height,
        )
    elif hostile.expected == EMPTY:
        assert_error(response, 400, "InvalidInput")
    else:
        assert_error(response, 415, "UnsupportedMediaType")
    assert api.client.get("/health").status_code == 200
