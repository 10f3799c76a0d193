"""Direct uploads to the embedded server's own link: a slot (POST /uploads), then the file posted
to its URL, which becomes the image; the link refuses forged fields, other types and more than
it allowed. A slot asked for with the file's sha256 is the caller's image of those bytes, if there
is one, and otherwise takes only those bytes. (On aws the link is an S3 presigned POST:
tests/aws/test_lambda_worker.py.)"""

from __future__ import annotations

import hashlib

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


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_slot_asked_with_the_hash_of_the_callers_image_is_that_image_and_no_slot(
    api: Api, alice: str, bob: str
) -> None:
    data = image_bytes(width=21, height=11)
    had = api.uploaded(alice, data=data, title="had")

    response = api.client.post(
        "/uploads",
        headers=api.auth(alice),
        json={"content_type": "image/png", "sha256": sha256_of(data).upper(), "title": "new"},
    )

    assert response.status_code == 200, response.text
    assert_matches_schema(response.json(), "Image")
    assert response.json() == had
    assert response.headers["content-location"] == f"/images/{had['image_id']}"
    assert response.headers["etag"] == f'"v{had["version"]}"'
    assert [image["image_id"] for image in api.list_all(alice, user_id=alice)] == [had["image_id"]]
    # Another user's image of the same bytes is not theirs: they get a slot.
    slot(api, bob, sha256=sha256_of(data))


def test_a_slot_asked_with_a_malformed_hash_is_refused(api: Api, alice: str) -> None:
    for sha256 in ("ab" * 31, "g" * 64, 12):
        response = api.client.post(
            "/uploads",
            headers=api.auth(alice),
            json={"content_type": "image/png", "sha256": sha256},
        )
        assert_error(response, 400, "InvalidInput")


def test_a_file_without_the_slots_hash_is_refused_and_nothing_kept(api: Api, alice: str) -> None:
    embedded_only(api)
    expected = image_bytes(width=22, height=12)
    given = slot(api, alice, sha256=sha256_of(expected))

    body = assert_error(post_to_slot(given, image_bytes(width=23, height=12)), 400, "InvalidInput")

    assert sha256_of(expected) in body["message"]
    assert api.client.get(str(given["image_url"]), headers=api.auth(alice)).status_code == 404
    assert_error(post_to_slot(given, expected), 404, "NotFound")  # the slot is closed
    assert api.list_all(alice, user_id=alice) == []


def test_two_slots_filled_with_the_same_bytes_make_one_image(api: Api, alice: str) -> None:
    embedded_only(api)
    data = image_bytes(width=24, height=12)
    first_slot = slot(api, alice, sha256=sha256_of(data), title="first")
    second_slot = slot(api, alice, sha256=sha256_of(data), title="second")

    first = post_to_slot(first_slot, data)
    second = post_to_slot(second_slot, data)

    assert first.status_code == 201, first.text
    assert first.json()["sha256"] == sha256_of(data)
    assert second.status_code == 200, second.text
    assert_matches_schema(second.json(), "Image")
    assert second.json()["image_id"] == first_slot["upload_id"]
    assert second.headers["content-location"] == f"/images/{first_slot['upload_id']}"
    assert [image["title"] for image in api.list_all(alice, user_id=alice)] == ["first"]
    again = api.client.post(
        "/uploads",
        headers=api.auth(alice),
        json={"content_type": "image/png", "sha256": sha256_of(data)},
    )
    assert again.status_code == 200, again.text
    assert again.json()["image_id"] == first_slot["upload_id"]
