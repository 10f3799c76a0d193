"""PATCH /images/{id} through a real server, on each backend: the owner's changes move the version
on, If-Match makes them conditional (of concurrent ones exactly one wins), and a change that
cannot be applied is refused with its status and changes nothing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.api_assertions import assert_error, assert_matches_schema
from tests.support.api_client import Api, path


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


def test_an_invalid_body_is_400_whatever_the_if_match(api: Api, alice: str) -> None:
    image = api.uploaded(alice)
    response = api.client.patch(
        path(image),
        headers={**api.auth(alice), "If-Match": "garbage", "Content-Type": "application/json"},
        content=b"",
    )
    assert_error(response, 400, "InvalidInput")
