"""DELETE /images/{id} through a real server, on each backend: the image is gone everywhere,
deleting again is 204, only its owner may delete it, and concurrent updates never bring it back."""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor

from tests.support.api_assertions import assert_error
from tests.support.api_client import UNKNOWN_ID, Api, path


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
