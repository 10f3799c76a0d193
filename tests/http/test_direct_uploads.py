"""Direct uploads to the embedded server's own link: a slot (POST /uploads), then the file posted
to its URL, which becomes the image; the link refuses forged fields, other types and more than
it allowed. (On aws the link is an S3 presigned POST: tests/aws/test_lambda_worker.py.)"""

from __future__ import annotations

import httpx
import pytest

from tests.support.api_assertions import assert_error, assert_matches_schema
from tests.support.api_client import Api
from tests.support.sample_images import image_bytes


def embedded_only(api: Api) -> None:
    if api.server.environ.get("IMAGECORE_BACKEND") == "aws":
        pytest.skip("on the aws backend the link is an S3 presigned POST (test_lambda_worker)")


def slot(api: Api, user: str, **details: object) -> dict[str, object]:
    response = api.client.post(
        "/uploads", headers=api.auth(user), json={"content_type": "image/png", **details}
    )
    assert response.status_code == 201, response.text
    assert_matches_schema(response.json(), "UploadSlot")
    return dict(response.json())


def post_to_slot(
    given: dict[str, object], data: bytes, content_type: str = "image/png", **fields: str
) -> httpx.Response:
    return httpx.post(
        str(given["url"]),
        data={**given["fields"], "Content-Type": content_type, **fields},  # type: ignore[dict-item]
        files={"file": ("big.png", data, content_type)},
        timeout=30,
    )


def test_a_direct_upload_to_the_servers_link_becomes_the_image(api: Api, alice: str) -> None:
    embedded_only(api)
    given = slot(api, alice, title="direct", tags=["x"])
    data = image_bytes(width=20, height=10)

    response = post_to_slot(given, data)

    assert response.status_code == 201, response.text
    image = response.json()
    assert (image["image_id"], image["title"], image["tags"]) == (
        given["upload_id"],
        "direct",
        ["x"],
    )
    assert api.client.get(str(given["image_url"]), headers=api.auth(alice)).status_code == 200
    assert_error(post_to_slot(given, data), 409, "Conflict")


def test_a_direct_upload_link_refuses_forged_fields_wrong_types_and_what_it_never_allowed(
    api: Api, alice: str
) -> None:
    embedded_only(api)
    given = slot(api, alice)
    assert_error(post_to_slot(given, image_bytes(), signature="0" * 64), 401, "Unauthenticated")
    assert_error(post_to_slot(given, b"<html></html>", "text/html"), 415, "UnsupportedMediaType")
    assert_error(post_to_slot(given, b"<html></html>"), 415, "UnsupportedMediaType")
    huge = api.client.post(
        "/uploads", headers=api.auth(alice), json={"content_type": "image/png", "size": 2**40}
    )
    assert_error(huge, 413, "PayloadTooLarge")
    assert api.list_all(alice, user_id=alice) == []
