"""GET, download, PATCH and DELETE of one image through a real server."""

from __future__ import annotations

import hashlib
import http.client
import json
import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.http.conftest import Api
from tests.http.helpers import assert_error, assert_matches_schema
from tests.images import image_bytes, large_png

UNKNOWN_ID = "01JAAAAAAAAAAAAAAAAAAAAAAA"


def path(image: dict[str, Any], suffix: str = "") -> str:
    return f"/images/{image['image_id']}{suffix}"


# --- GET /images/{id} ---------------------------------------------------------------------------


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


# --- GET /images/{id}/download ------------------------------------------------------------------


def test_download_returns_the_original_bytes_with_their_headers(api: Api, alice: str) -> None:
    data = image_bytes("image/jpeg", 40, 30)
    image = api.uploaded(alice, data=data, filename="Strand im Mai é.jpg")
    answer, response = api.download(alice, image["image_id"])
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["content-length"] == str(len(data))
    assert answer.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert answer.headers["x-content-type-options"] == "nosniff"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''Strand%20im%20Mai%20%C3%A9.jpg" in disposition


def test_download_of_a_large_image_is_complete(api: Api, alice: str) -> None:
    data = large_png(1024 * 1024)
    image = api.uploaded(alice, data=data)
    _, response = api.download(alice, image["image_id"])
    assert hashlib.sha256(response.content).hexdigest() == image["sha256"]


def test_download_honours_if_none_match(api: Api, alice: str) -> None:
    image = api.uploaded(alice)
    etag = f'"{image["sha256"]}"'
    answer, _ = api.download(alice, image["image_id"], **{"If-None-Match": etag})
    assert answer.status_code == 304
    assert answer.headers["etag"] == etag


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=0-9", 0, 9), ("bytes=10-", 10, None), ("bytes=-5", -5, None), ("bytes=3-3", 3, 3),
     ("bytes=5-100000", 5, None)],
)  # fmt: skip
def test_download_honours_a_byte_range_with_206(
    api: Api, alice: str, header: str, start: int, end: int | None
) -> None:
    data = image_bytes("image/png", 20, 20)
    image = api.uploaded(alice, data=data)
    _, response = api.download(alice, image["image_id"], Range=header)
    expected = data[start:] if end is None else data[start : end + 1]
    assert response.status_code == 206
    assert response.content == expected
    first = start if start >= 0 else len(data) + start
    assert (
        response.headers["content-range"]
        == f"bytes {first}-{first + len(expected) - 1}/{len(data)}"
    )


def test_a_range_beyond_the_end_is_416(api: Api, alice: str) -> None:
    image = api.uploaded(alice)
    answer, _ = api.download(alice, image["image_id"], Range=f"bytes={image['size']}-")
    assert_error(answer, 416, "RangeNotSatisfiable")


def test_a_range_with_a_stale_if_range_gets_the_whole_image(api: Api, alice: str) -> None:
    image = api.uploaded(alice)
    _, response = api.download(
        alice, image["image_id"], **{"Range": "bytes=0-3", "If-Range": '"stale"'}
    )
    assert response.status_code == 200
    assert len(response.content) == image["size"]


def test_download_of_another_users_private_image_is_404(api: Api, alice: str, bob: str) -> None:
    image = api.uploaded(alice)
    assert_error(api.client.get(path(image, "/download"), headers=api.auth(bob)), 404, "NotFound")


# --- PATCH /images/{id} -------------------------------------------------------------------------


def test_owner_updates_metadata_and_the_version_moves_on(api: Api, alice: str) -> None:
    image = api.uploaded(alice, title="old", tags="a,b")
    response = api.client.patch(
        path(image),
        headers=api.auth(alice),
        json={"title": "new", "tags": ["B", "c"], "metadata": {"k": 1}, "visibility": "public"},
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert_matches_schema(updated, "Image")
    assert (updated["title"], updated["tags"], updated["metadata"], updated["visibility"]) == (
        "new", ["b", "c"], {"k": 1}, "public")  # fmt: skip
    assert updated["version"] == image["version"] + 1
    assert updated["updated_at"] >= image["updated_at"]
    assert updated["description"] == image["description"]
    assert response.headers["etag"] == f'"v{updated["version"]}"'
    assert api.client.get(path(image), headers=api.auth(alice)).json() == updated


@pytest.mark.parametrize("if_match", ['"v1"', "1", 'W/"v1"', "*"])
def test_update_with_a_current_if_match_succeeds(api: Api, alice: str, if_match: str) -> None:
    image = api.uploaded(alice)
    response = api.client.patch(
        path(image), headers={**api.auth(alice), "If-Match": if_match}, json={"title": "t"}
    )
    assert response.status_code == 200


@pytest.mark.parametrize("if_match", ['"v9"', "7", "garbage", '"abc"'])
def test_update_with_a_stale_or_foreign_if_match_is_412(
    api: Api, alice: str, if_match: str
) -> None:
    image = api.uploaded(alice, title="kept")
    response = api.client.patch(
        path(image), headers={**api.auth(alice), "If-Match": if_match}, json={"title": "lost"}
    )
    assert_error(response, 412, "PreconditionFailed")
    assert api.client.get(path(image), headers=api.auth(alice)).json()["title"] == "kept"


def test_concurrent_updates_with_if_match_let_exactly_one_win(api: Api, alice: str) -> None:
    image = api.uploaded(alice)

    def attempt(n: int) -> int:
        return api.client.patch(
            path(image), headers={**api.auth(alice), "If-Match": '"v1"'}, json={"title": f"t{n}"}
        ).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(attempt, range(8)))
    assert sorted(statuses) == [200] + [412] * 7
    assert api.client.get(path(image), headers=api.auth(alice)).json()["version"] == (
        image["version"] + 1
    )


def test_concurrent_updates_without_if_match_are_all_applied(api: Api, alice: str) -> None:
    image = api.uploaded(alice)

    def attempt(n: int) -> int:
        return api.client.patch(
            path(image), headers=api.auth(alice), json={"title": f"t{n}"}
        ).status_code

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(attempt, range(4)))
    assert statuses.count(200) + statuses.count(409) == 4
    final = api.client.get(path(image), headers=api.auth(alice)).json()
    assert final["version"] == image["version"] + statuses.count(200)


def test_another_user_cannot_update_even_a_public_image(api: Api, alice: str, bob: str) -> None:
    image = api.uploaded(alice, visibility="public", title="mine")
    response = api.client.patch(path(image), headers=api.auth(bob), json={"title": "theirs"})
    assert_error(response, 404, "NotFound")
    assert api.client.get(path(image), headers=api.auth(alice)).json()["title"] == "mine"


@pytest.mark.parametrize(
    "body",
    [{"title": 5}, {"tags": "a,b"}, {"metadata": {"a": [1]}}, {"visibility": "everyone"},
     {"size": 1}, {"user_id": "mallory"}, [], "title", None],
)  # fmt: skip
def test_invalid_updates_are_400_and_change_nothing(api: Api, alice: str, body: object) -> None:
    image = api.uploaded(alice)
    response = api.client.patch(path(image), headers=api.auth(alice), json=body)
    assert_error(response, 400, "InvalidInput")
    assert api.client.get(path(image), headers=api.auth(alice)).json() == image


def test_update_with_a_body_that_is_not_json_is_400(api: Api, alice: str) -> None:
    image = api.uploaded(alice)
    response = api.client.patch(
        path(image), headers={**api.auth(alice), "Content-Type": "application/json"}, content=b"{"
    )
    assert_error(response, 400, "InvalidInput")


def test_update_with_another_content_type_is_415(api: Api, alice: str) -> None:
    image = api.uploaded(alice)
    response = api.client.patch(
        path(image), headers={**api.auth(alice), "Content-Type": "text/plain"}, content=b"{}"
    )
    assert_error(response, 415, "UnsupportedMediaType")


def test_update_with_a_huge_body_is_413(api: Api, alice: str) -> None:
    image = api.uploaded(alice)
    body = b'{"title": "' + b"x" * (128 * 1024) + b'"}'
    response = api.client.patch(
        path(image), headers={**api.auth(alice), "Content-Type": "application/json"}, content=body
    )
    assert_error(response, 413, "PayloadTooLarge")


# --- DELETE /images/{id} ------------------------------------------------------------------------


def test_delete_removes_the_image_everywhere_and_repeating_it_is_204(api: Api, alice: str) -> None:
    tag = f"d{secrets.token_hex(4)}"
    image = api.uploaded(alice, tags=tag, visibility="public")
    assert api.client.delete(path(image), headers=api.auth(alice)).status_code == 204
    assert api.client.delete(path(image), headers=api.auth(alice)).status_code == 204
    assert_error(api.client.get(path(image), headers=api.auth(alice)), 404, "NotFound")
    assert_error(api.client.get(path(image, "/download"), headers=api.auth(alice)), 404, "NotFound")
    assert_error(api.client.patch(path(image), headers=api.auth(alice), json={"title": "x"}), 404,
                 "NotFound")  # fmt: skip
    assert api.list_all(alice, tags=tag) == []
    assert api.list_all(alice, user_id=alice) == []


def test_delete_by_another_user_is_404_and_keeps_the_image(api: Api, alice: str, bob: str) -> None:
    image = api.uploaded(alice, visibility="public")
    assert_error(api.client.delete(path(image), headers=api.auth(bob)), 404, "NotFound")
    assert api.client.get(path(image), headers=api.auth(alice)).status_code == 200


def test_delete_of_an_image_that_never_existed_is_404(api: Api, alice: str) -> None:
    assert_error(
        api.client.delete(f"/images/{UNKNOWN_ID}", headers=api.auth(alice)), 404, "NotFound"
    )


def test_concurrent_deletes_and_updates_never_resurrect_an_image(api: Api, alice: str) -> None:
    image = api.uploaded(alice)

    def act(n: int) -> int:
        if n % 2:
            return api.client.delete(path(image), headers=api.auth(alice)).status_code
        return api.client.patch(
            path(image), headers=api.auth(alice), json={"title": f"t{n}"}
        ).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(act, range(12)))
    assert set(statuses) <= {200, 204, 404, 409}
    assert_error(api.client.get(path(image), headers=api.auth(alice)), 404, "NotFound")


def test_an_invalid_body_is_400_whatever_the_if_match(api: Api, alice: str) -> None:
    image = api.uploaded(alice)
    response = api.client.patch(
        path(image),
        headers={**api.auth(alice), "If-Match": "garbage", "Content-Type": "application/json"},
        content=b"",
    )
    assert_error(response, 400, "InvalidInput")
