"""GET /images: filters, pagination and visibility through a real server."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from tests.support.api_assertions import assert_error, assert_matches_schema
from tests.support.api_client import Api
from tests.support.sample_images import image_bytes


def ids(images: list[dict[str, Any]]) -> list[str]:
    return [image["image_id"] for image in images]


@pytest.fixture
def gallery(api: Api, alice: str, bob: str) -> dict[str, dict[str, Any]]:
    """Alice's and Bob's images under a tag of their own, so other tests' images stay out."""
    tag = f"g{secrets.token_hex(4)}"
    specs = {
        "a_private_png": (alice, "image/png", "Sunset over sea", f"{tag},sea", "private"),
        "a_public_jpeg": (alice, "image/jpeg", "sunrise", f"{tag},sea,sky", "public"),
        "a_public_gif": (alice, "image/gif", "Été à Paris", f"{tag},city", "public"),
        "b_private_webp": (bob, "image/webp", "Sunny day", f"{tag},sky", "private"),
        "b_public_png": (bob, "image/png", "Moon", f"{tag},sky,sea", "public"),
    }
    made = {"tag": {"name": tag}}
    for name, (user, content_type, title, tags, visibility) in specs.items():
        made[name] = api.uploaded(
            user, data=image_bytes(content_type), title=title, tags=tags, visibility=visibility
        )
    return made


def test_a_caller_sees_their_own_images_and_everyones_public_ones_only(
    api: Api, alice: str, bob: str, gallery: dict[str, dict[str, Any]]
) -> None:
    tag = gallery["tag"]["name"]
    seen_by_alice = set(ids(api.list_all(alice, tags=tag)))
    seen_by_bob = set(ids(api.list_all(bob, tags=tag)))
    g = {name: image.get("image_id") for name, image in gallery.items()}
    assert seen_by_alice == {g["a_private_png"], g["a_public_jpeg"], g["a_public_gif"],
                             g["b_public_png"]}  # fmt: skip
    assert seen_by_bob == {g["b_private_webp"], g["b_public_png"], g["a_public_jpeg"],
                           g["a_public_gif"]}  # fmt: skip


def test_list_page_shape_matches_the_documented_schema(
    api: Api, alice: str, gallery: dict[str, dict[str, Any]]
) -> None:
    response = api.list(alice, tags=gallery["tag"]["name"], limit=2)
    assert response.status_code == 200
    page = response.json()
    assert_matches_schema(page, "ImagePage")
    assert page["count"] == 2
    assert page["next_cursor"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"user_id": "{bob}"}, ["b_public_png"]),
        ({"user_id": "{alice}"}, ["a_private_png", "a_public_jpeg", "a_public_gif"]),
        ({"extra_tags": "sea"}, ["a_private_png", "a_public_jpeg", "b_public_png"]),
        ({"extra_tags": "SKY , sea"}, ["a_public_jpeg", "b_public_png"]),
        ({"content_type": "image/png"}, ["a_private_png", "b_public_png"]),
        ({"title": "sun"}, ["a_private_png", "a_public_jpeg"]),
        ({"title": "éTÉ"}, ["a_public_gif"]),
        ({"title": "nothing like it"}, []),
    ],
)
def test_each_filter_narrows_the_list(
    api: Api,
    alice: str,
    bob: str,
    gallery: dict[str, dict[str, Any]],
    params: dict[str, str],
    expected: list[str],
) -> None:
    tag = gallery["tag"]["name"]
    query = {key: value.format(alice=alice, bob=bob) for key, value in params.items()}
    extra = query.pop("extra_tags", "")
    query["tags"] = f"{tag},{extra}" if extra else tag
    found = ids(api.list_all(alice, **query))
    assert sorted(found) == sorted(gallery[name]["image_id"] for name in expected)


def test_lists_are_newest_first_by_default_and_oldest_first_on_request(
    api: Api, alice: str, gallery: dict[str, dict[str, Any]]
) -> None:
    tag = gallery["tag"]["name"]
    newest_first = api.list_all(alice, tags=tag)
    oldest_first = api.list_all(alice, tags=tag, order="asc")
    assert ids(oldest_first) == list(reversed(ids(newest_first)))
    stamps = [(image["created_at"], image["image_id"]) for image in newest_first]
    assert stamps == sorted(stamps, reverse=True)


def test_date_range_is_inclusive_on_created_at(
    api: Api, alice: str, gallery: dict[str, dict[str, Any]]
) -> None:
    tag = gallery["tag"]["name"]
    first = gallery["a_public_jpeg"]["created_at"]
    last = gallery["a_public_gif"]["created_at"]
    found = ids(api.list_all(alice, tags=tag, start_date=first, end_date=last))
    assert sorted(found) == sorted([gallery["a_public_jpeg"]["image_id"],
                                    gallery["a_public_gif"]["image_id"]])  # fmt: skip
    day = first[:10]
    whole_day = ids(api.list_all(alice, tags=tag, start_date=day, end_date=day))
    assert gallery["a_public_jpeg"]["image_id"] in whole_day


def test_paging_with_every_page_size_returns_each_image_once_in_order(
    api: Api, alice: str, gallery: dict[str, dict[str, Any]]
) -> None:
    tag = gallery["tag"]["name"]
    everything = ids(api.list_all(alice, tags=tag, limit=100))
    for size in (1, 2, 3):
        assert ids(api.list_all(alice, tags=tag, limit=size)) == everything


def test_next_cursor_is_null_on_the_last_page(
    api: Api, alice: str, gallery: dict[str, Any]
) -> None:
    page = api.list(alice, tags=gallery["tag"]["name"], limit=4).json()
    assert page["count"] == 4
    assert page["next_cursor"] is None


def test_a_cursor_used_by_another_caller_is_400(
    api: Api, alice: str, bob: str, gallery: dict[str, Any]
) -> None:
    tag = gallery["tag"]["name"]
    cursor = api.list(alice, tags=tag, limit=1).json()["next_cursor"]
    assert_error(api.list(bob, tags=tag, limit=1, cursor=cursor), 400, "InvalidCursor")


def test_a_cursor_used_with_other_filters_is_400(
    api: Api, alice: str, gallery: dict[str, Any]
) -> None:
    tag = gallery["tag"]["name"]
    cursor = api.list(alice, tags=tag, limit=1).json()["next_cursor"]
    assert_error(api.list(alice, tags=tag, order="asc", cursor=cursor), 400, "InvalidCursor")
    assert api.list(alice, tags=tag, limit=3, cursor=cursor).status_code == 200


@pytest.mark.parametrize(
    "cursor", ["garbage", "a.b", "x" * 5000, "é", "eyJ2IjoxfQ.AAAA", "..", "%00"]
)
def test_forged_cursors_are_400(api: Api, alice: str, cursor: str) -> None:
    assert_error(api.list(alice, cursor=cursor), 400, "InvalidCursor")


def test_a_tampered_cursor_is_400(api: Api, alice: str, gallery: dict[str, Any]) -> None:
    tag = gallery["tag"]["name"]
    cursor = api.list(alice, tags=tag, limit=1).json()["next_cursor"]
    flipped = cursor[:5] + ("A" if cursor[5] != "A" else "B") + cursor[6:]
    assert_error(api.list(alice, tags=tag, limit=1, cursor=flipped), 400, "InvalidCursor")


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"}, {"limit": "101"}, {"limit": "ten"}, {"order": "sideways"},
        {"content_type": "image/tiff"}, {"start_date": "yesterday"},
        {"start_date": "2026-02-01", "end_date": "2026-01-01"}, {"user_id": "../etc"},
        {"tag": "misspelt"},
    ],
)  # fmt: skip
def test_invalid_list_parameters_are_400(api: Api, alice: str, params: dict[str, str]) -> None:
    assert_error(api.list(alice, **params), 400, "InvalidInput")


def test_list_without_a_token_is_401(api: Api) -> None:
    assert_error(api.client.get("/images"), 401, "Unauthenticated")


def test_empty_parameters_count_as_absent(api: Api, alice: str, gallery: dict[str, Any]) -> None:
    tag = gallery["tag"]["name"]
    expected = ids(api.list_all(alice, tags=tag))
    found = api.list(alice, tags=tag, cursor="", start_date="", title="", limit="")
    assert found.status_code == 200, found.text
    assert ids(found.json()["images"]) == expected
