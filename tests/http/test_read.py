"""GET /images/{id} through a real server, on each backend: the owner reads a private image,
anyone a public one, everyone else gets the 404 of a missing one; an ETag answers 304."""

from __future__ import annotations

import http.client
import json

import pytest

from tests.support.api_assertions import assert_error, assert_matches_schema
from tests.support.api_client import UNKNOWN_ID, Api, path


def test_the_owner_reads_a_private_image(api: Api, alice: str) -> None:
    image = api.uploaded(alice)
    response = api.client.get(path(image), headers=api.auth(alice))
    assert response.status_code == 200
    assert response.json() == image
    assert_matches_schema(response.json(), "Image")
    assert response.headers["etag"] == f'"v{image["version"]}"'


def test_another_users_private_image_is_404_like_a_missing_one(
    api: Api, alice: str, bob: str
) -> None:
    image = api.uploaded(alice)
    hidden = assert_error(api.client.get(path(image), headers=api.auth(bob)), 404, "NotFound")
    missing = api.client.get(f"/images/{UNKNOWN_ID}", headers=api.auth(bob)).json()
    assert hidden["message"] == missing["message"]


def test_another_users_public_image_can_be_read(api: Api, alice: str, bob: str) -> None:
    image = api.uploaded(alice, visibility="public")
    assert api.client.get(path(image), headers=api.auth(bob)).json() == image


@pytest.mark.parametrize(
    "image_id", ["nope", "..", "%2e%2e", "01JAAAAAAAAAAAAAAAAAAAAAA!", "a" * 300]
)
def test_malformed_ids_are_404(api: Api, alice: str, image_id: str) -> None:
    # http.client sends the path as written: httpx would turn /images/.. into / before sending.
    connection = http.client.HTTPConnection("127.0.0.1", api.server.port, timeout=30)
    try:
        connection.request("GET", f"/images/{image_id}", headers=api.auth(alice))
        response = connection.getresponse()
        body = json.loads(response.read())
    finally:
        connection.close()
    assert response.status == 404, body
    assert body["error"] == "NotFound"
    assert body["request_id"] == response.headers["x-request-id"]


def test_if_none_match_with_the_current_etag_is_304(api: Api, alice: str) -> None:
    image = api.uploaded(alice)
    response = api.client.get(
        path(image), headers={**api.auth(alice), "If-None-Match": f'"v{image["version"]}"'}
    )
    assert response.status_code == 304
    assert response.content == b""
    stale = api.client.get(path(image), headers={**api.auth(alice), "If-None-Match": '"v0"'})
    assert stale.status_code == 200
