"""Many clients at once, through a real server on each backend: no update is lost, no list is
wrong. (Races on one image's If-Match and delete are in test_update and test_delete.)"""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.support.api_client import Api


def test_read_modify_write_loops_with_if_match_lose_no_update(api: Api, alice: str) -> None:
    image = api.uploaded(alice)
    path = f"/images/{image['image_id']}"
    writers = 6

    def add_tag(n: int) -> int:
        """Add one tag the way a careful client does: read, change, write if unchanged."""
        conflicts = 0
        while True:
            current = api.client.get(path, headers=api.auth(alice))
            assert current.status_code == 200, current.text
            tags = [*current.json()["tags"], f"writer-{n}"]
            answer = api.client.patch(
                path,
                headers={**api.auth(alice), "If-Match": current.headers["etag"]},
                json={"tags": tags},
            )
            if answer.status_code == 200:
                return conflicts
            assert answer.status_code == 412, answer.text
            conflicts += 1

    with ThreadPoolExecutor(max_workers=writers) as pool:
        list(pool.map(add_tag, range(writers)))
    final = api.client.get(path, headers=api.auth(alice)).json()
    assert sorted(final["tags"]) == sorted(f"writer-{n}" for n in range(writers))


def test_concurrent_uploads_by_many_users_keep_every_list_exact(api: Api) -> None:
    tag = f"crowd-{secrets.token_hex(4)}"
    users = [f"user{n}-{secrets.token_hex(3)}" for n in range(8)]
    per_user = 5

    def upload(job: tuple[str, int]) -> dict[str, Any]:
        user, n = job
        visibility = "public" if n % 2 else "private"
        response = api.upload(user, title=f"{user} {n}", tags=tag, visibility=visibility)
        assert response.status_code == 201, response.text
        resource: dict[str, Any] = response.json()
        return resource

    jobs = [(user, n) for n in range(per_user) for user in users]
    with ThreadPoolExecutor(max_workers=8) as pool:
        uploaded = list(pool.map(upload, jobs))
    assert len({image["image_id"] for image in uploaded}) == len(jobs)

    public = {image["image_id"] for image in uploaded if image["visibility"] == "public"}
    for user in users:
        own = {image["image_id"] for image in uploaded if image["user_id"] == user}
        assert len(own) == per_user
        mine = api.list_all(user, user_id=user, tags=tag, limit=2)
        assert sorted(image["image_id"] for image in mine) == sorted(own)
        seen = api.list_all(user, tags=tag, limit=7)
        seen_ids = [image["image_id"] for image in seen]
        assert len(seen_ids) == len(set(seen_ids)), "an image was listed twice"
        assert set(seen_ids) == own | public
        order = [(image["created_at"], image["image_id"]) for image in seen]
        assert order == sorted(order, reverse=True)
