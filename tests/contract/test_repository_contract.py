"""What every ImageRepository promises, proven on the repository of each backend in
tests/support/backends.py (the ``repository`` fixture of conftest.py)."""

from __future__ import annotations

import contextlib
import random
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import attrs
import pytest

from adapters.sqlite import (
    _MIGRATIONS,
    _SCHEMA_V1,
    SqliteImageRepository,
    _encode,
    _micros,
    budget_end_statement,
    list_statement,
)
from imagecore.errors import AlreadyExists, DuplicateContent, VersionConflict
from imagecore.model import (
    Image,
    ImageState,
    Position,
    SortOrder,
    ThumbnailStatus,
    Visibility,
)
from imagecore.ports import ImageRepository
from imagecore.query import ListQuery

MakeImage = Callable[..., Image]
MICROSECOND = timedelta(microseconds=1)


def add_all(repository: ImageRepository, images: Iterable[Image]) -> list[Image]:
    stored = list(images)
    for image in stored:
        repository.add(image)
    return stored


def ids(images: Iterable[Image]) -> list[str]:
    return [image.image_id for image in images]


def expected(images: Iterable[Image], query: ListQuery, caller: str) -> list[str]:
    """The model answer: ListQuery.matches, ordered by (created_at, image_id)."""
    matching = [image for image in images if query.matches(image, caller)]
    matching.sort(
        key=lambda image: (image.created_at, image.image_id),
        reverse=query.order is SortOrder.DESC,
    )
    return ids(matching)


def page_through(
    repository: ImageRepository, query: ListQuery, caller: str, limit: int
) -> list[str]:
    """Every image of a list, fetched ``limit`` at a time by keyset pagination, going on from
    the last image of a full page or from where a short page says it read up to."""
    seen: list[str] = []
    after: Position | None = None
    for _ in range(1000):
        found = repository.list(query, caller, after, limit)
        page = found.images
        assert len(page) <= limit
        seen.extend(ids(page))
        if len(page) == limit:
            after = page[-1].position
        elif found.read_up_to is not None:
            assert not page or _not_after(page[-1].position, found.read_up_to, query.order)
            after = found.read_up_to
        else:
            return seen
    raise AssertionError(f"pagination never ended: {seen[:20]}...")


def _not_after(first: Position, second: Position, order: SortOrder) -> bool:
    """Whether ``first`` comes at or before ``second`` in the list order."""
    a, b = (first.created_at, first.image_id), (second.created_at, second.image_id)
    return a >= b if order is SortOrder.DESC else a <= b


def listed(repository: ImageRepository, query: ListQuery, caller: str) -> list[str]:
    return page_through(repository, query, caller, 100)


# Storing and reading back


def test_added_image_reads_back_exactly(repository: ImageRepository) -> None:
    moment = datetime(2026, 11, 22, 10, 30, 15, 123456, tzinfo=UTC)
    image = Image(
        image_id="01JDABCDEFGHJKMNPQRSTVWXYZ",
        user_id="zoë@example.com",
        filename="plage d'été 🌅.jpg",
        content_type="image/webp",
        size=204_800,
        width=1920,
        height=1080,
        sha256="ab" * 32,
        blob_key="images/zoë@example.com/01JDABCDEFGHJKMNPQRSTVWXYZ",
        created_at=moment,
        updated_at=moment + timedelta(days=3, microseconds=1),
        title="Été à Saint-Malo",
        description="line one\nline two\t— «quoted»",
        tags=("sunset", "beach", "été"),
        metadata={
            "camera": "Fujifilm X-T5",
            "iso": 400,
            "aperture": 2.8,
            "whole_float": 1.0,
            "flash": False,
            "edited": True,
            "gps": None,
            "big": 2**53 + 1,
            "légende": "ünïcödé ✓",
        },
        visibility=Visibility.PUBLIC,
        version=7,
        thumbnail_status=ThumbnailStatus.READY,
        state=ImageState.ACTIVE,
        claims_content=True,
    )
    repository.add(image)

    stored = repository.get(image.image_id)

    assert stored is not None
    assert stored == image
    assert stored.created_at.microsecond == 123456
    assert stored.created_at.utcoffset() == timedelta(0)
    assert stored.tags == ("sunset", "beach", "été")
    assert {key: type(value) for key, value in stored.metadata.items()} == {
        key: type(value) for key, value in image.metadata.items()
    }


def test_get_of_unknown_id_returns_none(repository: ImageRepository) -> None:
    assert repository.get("01JD0000000000000000000000") is None


def test_get_returns_images_in_every_state(
    repository: ImageRepository, make_image: MakeImage
) -> None:
    images = add_all(repository, (make_image(state=state) for state in ImageState))
    assert [repository.get(image.image_id) for image in images] == images


def test_unsettled_are_exactly_the_images_being_deleted_or_uploaded(
    repository: ImageRepository, make_image: MakeImage
) -> None:
    unsettled = [make_image(state=ImageState.DELETING, tags=("beach",)) for _ in range(3)]
    unsettled += [make_image(state=ImageState.UPLOADING, tags=("sea",)) for _ in range(2)]
    others = [make_image(state=state) for state in (ImageState.ACTIVE, ImageState.DELETED)]
    add_all(repository, [*unsettled, *others])

    found = list(repository.unsettled())

    key = lambda image: image.image_id  # noqa: E731
    assert sorted(found, key=key) == sorted(unsettled, key=key)


def test_pending_thumbnails_are_the_active_images_made_before_the_instant_still_waiting_for_one(
    repository: ImageRepository, make_image: MakeImage
) -> None:
    pending = [
        make_image(tags=("beach",)),
        make_image(user_id="bob", visibility=Visibility.PUBLIC),
    ]
    others = [
        make_image(thumbnail_status=ThumbnailStatus.READY),
        make_image(thumbnail_status=ThumbnailStatus.FAILED),
        *(make_image(state=state) for state in ImageState if state is not ImageState.ACTIVE),
    ]
    add_all(repository, [*pending, *others])
    newest = make_image()
    repository.add(newest)
    settled = make_image()
    repository.add(settled)
    repository.replace(settled.with_thumbnail(ThumbnailStatus.READY), settled.version)

    found = list(repository.pending_thumbnails(newest.created_at))

    key = lambda image: image.image_id  # noqa: E731
    assert sorted(found, key=key) == sorted(pending, key=key), "made strictly before the instant"
    assert newest in repository.pending_thumbnails(newest.created_at + MICROSECOND)


def test_find_by_content_finds_only_the_users_active_image_with_those_bytes(
    repository: ImageRepository, make_image: MakeImage
) -> None:
    sha = "ab" * 32
    mine = make_image(user_id="alice", sha256=sha)
    others = [
        make_image(user_id="bob", sha256=sha, visibility=Visibility.PUBLIC),
        make_image(user_id="alice", sha256="cd" * 32),
        make_image(user_id="alice", sha256=sha, state=ImageState.DELETING),
        make_image(user_id="alice", sha256=sha, state=ImageState.UPLOADING),
    ]
    add_all(repository, [*others, mine])

    assert repository.find_by_content("alice", sha) == mine
    assert repository.find_by_content("alice", "ef" * 32) is None
    assert repository.find_by_content("carol", sha) is None

    gone = attrs.evolve(mine, state=ImageState.DELETING, version=mine.version + 1)
    repository.replace(gone, mine.version)
    assert repository.find_by_content("alice", sha) is None


def test_a_finished_delete_is_no_longer_unfinished(
    repository: ImageRepository, make_image: MakeImage
) -> None:
    tombstone = make_image(state=ImageState.DELETING)
    repository.add(tombstone)
    gone = attrs.evolve(tombstone, state=ImageState.DELETED, version=tombstone.version + 1)

    repository.replace(gone, tombstone.version)

    assert list(repository.unsettled()) == []


def test_adding_a_taken_id_raises_already_exists_and_keeps_the_first(
    repository: ImageRepository, make_image: MakeImage
) -> None:
    first = make_image(title="first")
    repository.add(first)

    with pytest.raises(AlreadyExists):
        repository.add(attrs.evolve(first, title="second", tags=("intruder",)))

    assert repository.get(first.image_id) == first
    assert listed(repository, ListQuery(tags=("intruder",)), "alice") == []


def test_replace_at_the_expected_version_stores_the_new_image(
    repository: ImageRepository, make_image: MakeImage
) -> None:
    image = make_image()
    repository.add(image)
    updated = attrs.evolve(
        image,
        title="Renamed",
        metadata={"rating": 5},
        version=2,
        updated_at=image.updated_at + timedelta(microseconds=7),
    )

    repository.replace(updated, expected_version=1)

    assert repository.get(image.image_id) == updated


@pytest.mark.parametrize("stale_version", [0, 2, 3])
def test_replace_with_a_stale_version_raises_and_changes_nothing(
    repository: ImageRepository, make_image: MakeImage, stale_version: int
) -> None:
    image = make_image(tags=("beach",))
    repository.add(image)

    with pytest.raises(VersionConflict):
        repository.replace(
            attrs.evolve(image, title="lost", tags=("city",), version=stale_version + 1),
            expected_version=stale_version,
        )

    assert repository.get(image.image_id) == image
    assert listed(repository, ListQuery(tags=("beach",)), "alice") == [image.image_id]
    assert listed(repository, ListQuery(tags=("city",)), "alice") == []


def test_replace_of_a_missing_image_raises_version_conflict_and_stores_nothing(
    repository: ImageRepository, make_image: MakeImage
) -> None:
    image = make_image(tags=("beach",))

    with pytest.raises(VersionConflict):
        repository.replace(attrs.evolve(image, version=2), expected_version=1)

    assert repository.get(image.image_id) is None
    assert listed(repository, ListQuery(tags=("beach",)), "alice") == []


def test_replace_changing_tags_moves_the_image_between_tag_filters(
    repository: ImageRepository, make_image: MakeImage
) -> None:
    image = make_image(tags=("beach", "sunset"))
    repository.add(image)

    repository.replace(attrs.evolve(image, tags=("sunset", "city"), version=2), 1)

    assert listed(repository, ListQuery(tags=("beach",)), "alice") == []
    assert listed(repository, ListQuery(tags=("sunset",)), "alice") == [image.image_id]
    assert listed(repository, ListQuery(tags=("city", "sunset")), "alice") == [image.image_id]


def test_replace_changing_visibility_changes_who_sees_the_image(
    repository: ImageRepository, make_image: MakeImage
) -> None:
    image = make_image(tags=("beach",), visibility=Visibility.PRIVATE)
    repository.add(image)
    assert listed(repository, ListQuery(tags=("beach",)), "bob") == []

    public = attrs.evolve(image, visibility=Visibility.PUBLIC, version=2)
    repository.replace(public, 1)
    for query in (ListQuery(), ListQuery(tags=("beach",)), ListQuery(user_id="alice")):
        assert listed(repository, query, "bob") == [image.image_id]

    repository.replace(attrs.evolve(public, visibility=Visibility.PRIVATE, version=3), 2)
    for query in (ListQuery(), ListQuery(tags=("beach",)), ListQuery(user_id="alice")):
        assert listed(repository, query, "bob") == []


def test_deleted_image_is_gone_from_every_filter(
    repository: ImageRepository, make_image: MakeImage
) -> None:
    image = make_image(tags=("beach",), title="Beach", visibility=Visibility.PUBLIC)
    repository.add(image)
    tombstone = attrs.evolve(image, state=ImageState.DELETING, version=2)
    repository.replace(tombstone, 1)

    queries = [
        ListQuery(),
        ListQuery(user_id="alice"),
        ListQuery(tags=("beach",)),
        ListQuery(content_type="image/jpeg"),
        ListQuery(title_prefix="bea"),
        ListQuery(start_date=image.created_at, end_date=image.created_at),
    ]
    for caller in ("alice", "bob"):
        for query in queries:
            assert listed(repository, query, caller) == []
    assert repository.get(image.image_id) == tombstone


# Content claims: one active image per owner and claimed bytes


def test_an_image_claiming_bytes_its_owner_already_claimed_is_refused_naming_the_holder(
    repository: ImageRepository, make_image: MakeImage
) -> None:
    sha = "ab" * 32
    holder = make_image(sha256=sha, claims_content=True)
    repository.add(holder)
    second = make_image(sha256=sha, claims_content=True, tags=("second",))

    with pytest.raises(DuplicateContent) as refused:
        repository.add(second)

    assert refused.value.image_id == holder.image_id
    assert repository.get(second.image_id) is None
    assert listed(repository, ListQuery(tags=("second",)), "alice") == []
    assert listed(repository, ListQuery(), "alice") == [holder.image_id]


def test_only_an_active_image_of_the_same_owner_claiming_the_same_bytes_is_refused(
    repository: ImageRepository, make_image: MakeImage
) -> None:
    sha = "ab" * 32
    repository.add(make_image(sha256=sha, claims_content=True))
    others = [
        make_image(sha256=sha),  # claims nothing: the same photo posted twice on purpose
        make_image(sha256=sha),
        make_image(sha256=sha, user_id="bob", claims_content=True),
        make_image(sha256="cd" * 32, claims_content=True),
        *(
            make_image(sha256=sha, claims_content=True, state=state)
            for state in (ImageState.UPLOADING, ImageState.DELETING, ImageState.DELETED)
        ),
    ]

    add_all(repository, others)

    assert [repository.get(image.image_id) for image in others] == others


def test_a_taken_id_is_already_exists_even_when_the_claim_is_taken_too(
    repository: ImageRepository, make_image: MakeImage
) -> None:
    holder = make_image(claims_content=True)
    repository.add(holder)

    with pytest.raises(AlreadyExists):
        repository.add(attrs.evolve(holder, title="again"))

    assert repository.get(holder.image_id) == holder


def test_edits_of_the_holder_keep_its_claim(
    repository: ImageRepository, make_image: MakeImage
) -> None:
    holder = make_image(claims_content=True, tags=("beach",))
    repository.add(holder)
    edited = attrs.evolve(
        holder, title="Renamed", tags=("sea",), visibility=Visibility.PUBLIC, version=2
    )
    repository.replace(edited, 1)

    with pytest.raises(DuplicateContent) as refused:
        repository.add(make_image(sha256=holder.sha256, claims_content=True))

    assert refused.value.image_id == holder.image_id
    assert repository.get(holder.image_id) == edited


@pytest.mark.parametrize("release", ["tombstone", "claim nothing"])
def test_a_holder_replaced_by_a_tombstone_or_by_a_version_claiming_nothing_frees_the_claim(
    repository: ImageRepository, make_image: MakeImage, release: str
) -> None:
    first = make_image(claims_content=True)
    repository.add(first)
    if release == "tombstone":
        released = attrs.evolve(first, state=ImageState.DELETING, version=2)
    else:
        released = attrs.evolve(first, claims_content=False, version=2)
    repository.replace(released, 1)

    second = make_image(sha256=first.sha256, claims_content=True)
    repository.add(second)
    with pytest.raises(DuplicateContent) as refused:
        repository.add(make_image(sha256=first.sha256, claims_content=True))

    assert refused.value.image_id == second.image_id
    assert repository.get(second.image_id) == second


def test_replace_that_would_take_a_held_claim_is_refused_and_a_free_one_is_taken(
    repository: ImageRepository, make_image: MakeImage
) -> None:
    holder = make_image(claims_content=True)
    repository.add(holder)
    # Not active, so it holds nothing yet: becoming active would take the claim.
    waiting = make_image(
        sha256=holder.sha256, claims_content=True, state=ImageState.UPLOADING, tags=("sea",)
    )
    repository.add(waiting)
    activated = attrs.evolve(waiting, state=ImageState.ACTIVE, version=2)

    with pytest.raises(DuplicateContent) as refused:
        repository.replace(activated, 1)

    assert refused.value.image_id == holder.image_id
    assert repository.get(waiting.image_id) == waiting
    assert listed(repository, ListQuery(tags=("sea",)), "alice") == []

    repository.replace(attrs.evolve(holder, state=ImageState.DELETING, version=2), 1)
    repository.replace(activated, 1)
    with pytest.raises(DuplicateContent) as refused:
        repository.add(make_image(sha256=holder.sha256, claims_content=True))
    assert refused.value.image_id == waiting.image_id


def test_exactly_one_of_concurrent_adds_claiming_the_same_bytes_wins(
    repository: ImageRepository, make_image: MakeImage
) -> None:
    contenders = 8
    images = [
        make_image(sha256="ab" * 32, claims_content=True, tags=(f"t{n}",))
        for n in range(contenders)
    ]
    barrier = threading.Barrier(contenders)

    def attempt(image: Image) -> str:
        """The image that holds the claim, as this add learnt it."""
        barrier.wait()
        try:
            repository.add(image)
        except DuplicateContent as refused:
            return refused.image_id
        return image.image_id

    with ThreadPoolExecutor(max_workers=contenders) as pool:
        holders = list(pool.map(attempt, images))

    stored = [image for image in images if repository.get(image.image_id) is not None]
    assert len(stored) == 1
    assert holders == [stored[0].image_id] * contenders
    assert listed(repository, ListQuery(), "alice") == [stored[0].image_id]
    for n, image in enumerate(images):
        expected_ids = [image.image_id] if image in stored else []
        assert listed(repository, ListQuery(tags=(f"t{n}",)), "alice") == expected_ids


# Who sees what


def test_list_shows_own_images_and_others_public_ones_only(
    repository: ImageRepository, make_image: MakeImage
) -> None:
    own_private = make_image(user_id="alice", visibility=Visibility.PRIVATE)
    own_public = make_image(user_id="alice", visibility=Visibility.PUBLIC)
    others_private = make_image(user_id="bob", visibility=Visibility.PRIVATE)
    others_public = make_image(user_id="bob", visibility=Visibility.PUBLIC)
    add_all(repository, [own_private, own_public, others_private, others_public])

    assert listed(repository, ListQuery(), "alice") == ids([others_public, own_public, own_private])
    assert listed(repository, ListQuery(), "bob") == ids(
        [others_public, others_private, own_public]
    )
    assert listed(repository, ListQuery(), "carol") == ids([others_public, own_public])


@pytest.mark.parametrize("state", [ImageState.UPLOADING, ImageState.DELETING, ImageState.DELETED])
@pytest.mark.parametrize("visibility", list(Visibility))
def test_list_never_shows_images_being_deleted_or_deleted(
    repository: ImageRepository, make_image: MakeImage, state: ImageState, visibility: Visibility
) -> None:
    add_all(repository, [make_image(state=state, visibility=visibility, tags=("beach",))])

    for caller in ("alice", "bob"):
        for query in (ListQuery(), ListQuery(user_id="alice"), ListQuery(tags=("beach",))):
            assert listed(repository, query, caller) == []


def test_list_by_user_id_shows_that_users_images_the_caller_may_see(
    repository: ImageRepository, make_image: MakeImage
) -> None:
    alice_private = make_image(user_id="alice")
    alice_public = make_image(user_id="alice", visibility=Visibility.PUBLIC)
    bob_private = make_image(user_id="bob")
    bob_public = make_image(user_id="bob", visibility=Visibility.PUBLIC)
    add_all(repository, [alice_private, alice_public, bob_private, bob_public])

    assert listed(repository, ListQuery(user_id="alice"), "alice") == ids(
        [alice_public, alice_private]
    )
    assert listed(repository, ListQuery(user_id="bob"), "alice") == ids([bob_public])
    assert listed(repository, ListQuery(user_id="carol"), "alice") == []


# Filters


def test_list_by_tag_returns_each_match_once_newest_first(
    repository: ImageRepository, make_image: MakeImage
) -> None:
    images = add_all(
        repository,
        [
            make_image(tags=("beach", "sunset", "sea")),
            make_image(tags=("city",)),
            make_image(tags=("sunset", "beach")),
            make_image(user_id="bob", visibility=Visibility.PUBLIC, tags=("beach",)),
            make_image(user_id="bob", tags=("beach",)),
        ],
    )

    assert listed(repository, ListQuery(tags=("beach",)), "alice") == ids(
        [images[3], images[2], images[0]]
    )


@pytest.mark.parametrize(
    ("tags", "matching"),
    [
        (("beach",), [0, 1, 2]),
        (("beach", "sunset"), [0, 1]),
        (("sunset", "beach"), [0, 1]),
        (("beach", "sunset", "sea"), [0]),
        (("beach", "nowhere"), []),
    ],
)
def test_list_by_several_tags_requires_all_of_them(
    repository: ImageRepository,
    make_image: MakeImage,
    tags: tuple[str, ...],
    matching: list[int],
) -> None:
    images = add_all(
        repository,
        [
            make_image(tags=("sea", "sunset", "beach")),
            make_image(tags=("beach", "sunset")),
            make_image(tags=("beach",)),
            make_image(tags=("sunset", "sea")),
        ],
    )

    assert listed(repository, ListQuery(tags=tags), "alice") == ids(
        reversed([images[i] for i in matching])
    )


def test_list_by_content_type_returns_only_that_type(
    repository: ImageRepository, make_image: MakeImage
) -> None:
    png = make_image(content_type="image/png")
    add_all(repository, [make_image(content_type="image/jpeg"), png])

    assert listed(repository, ListQuery(content_type="image/png"), "alice") == [png.image_id]
    assert listed(repository, ListQuery(content_type="image/gif"), "alice") == []


@pytest.mark.parametrize(
    ("prefix", "matching"),
    [
        ("été", ["Été à Paris", "été indien", "ÉTÉ"]),
        ("ÉTÉ", ["Été à Paris", "été indien", "ÉTÉ"]),
        ("Été à", ["Été à Paris"]),
        ("ete", ["ete sans accent"]),
        ("STRASS", ["Straße"]),
        ("straße", ["Straße"]),
        ("beach", ["Beach day", "BEACH"]),
        ("Beach day and more", []),
        ("\U0010ffff", ["\U0010ffff tail"]),
        ("z", ["Z", "z\U0010ffffz"]),
    ],
)
def test_title_prefix_matches_ignoring_case(
    repository: ImageRepository, make_image: MakeImage, prefix: str, matching: list[str]
) -> None:
    titles = [
        "Été à Paris",
        "été indien",
        "ÉTÉ",
        "ete sans accent",
        "Straße",
        "Beach day",
        "BEACH",
        "A beach",
        "",
        "\U0010ffff tail",
        "Z",
        "z\U0010ffffz",
    ]
    add_all(repository, [make_image(title=title) for title in titles])

    found = [
        image.title
        for image in repository.list(ListQuery(title_prefix=prefix), "alice", None, 100).images
    ]

    assert sorted(found) == sorted(matching)


@pytest.mark.parametrize(
    ("prefix", "matching"),
    [
        ("beach", ["\uff22\uff25\uff21\uff23\uff28 hut", "Beach day"]),
        ("\uff42\uff45\uff41", ["\uff22\uff25\uff21\uff23\uff28 hut", "Beach day"]),
        ("fi", ["\ufb01sh market", "Fish"]),
        ("\ufb01", ["\ufb01sh market", "Fish"]),
        ("caf\u00e9", ["Caf\u00e9", "Cafe\u0301 cr\u00e8me"]),
        ("cafe\u0301", ["Caf\u00e9", "Cafe\u0301 cr\u00e8me"]),
        ("cafe", []),
        ("1", ["\u2460 of 3"]),
    ],
)
def test_title_prefix_matches_any_compatibility_spelling(
    repository: ImageRepository, make_image: MakeImage, prefix: str, matching: list[str]
) -> None:
    titles = [
        "\uff22\uff25\uff21\uff23\uff28 hut",  # BEACH in fullwidth letters
        "Beach day",
        "\ufb01sh market",  # the fi ligature
        "Fish",
        "Caf\u00e9",
        "Cafe\u0301 cr\u00e8me",  # decomposed
        "\u2460 of 3",  # a circled digit
        "Sea",
    ]
    add_all(repository, [make_image(title=title) for title in titles])

    found = [
        image.title
        for image in repository.list(ListQuery(title_prefix=prefix), "alice", None, 100).images
    ]

    assert sorted(found) == sorted(matching)


@pytest.mark.parametrize("prefix", [None, ""])
def test_no_title_prefix_filters_nothing(
    repository: ImageRepository, make_image: MakeImage, prefix: str | None
) -> None:
    images = add_all(repository, [make_image(title=""), make_image(title="Beach")])

    assert listed(repository, ListQuery(title_prefix=prefix), "alice") == ids(reversed(images))


def test_date_range_includes_both_bounds_to_the_microsecond(
    repository: ImageRepository, make_image: MakeImage
) -> None:
    start = datetime(2026, 11, 22, 10, 30, 0, 500_000, tzinfo=UTC)
    end = start + timedelta(seconds=10)
    inside = add_all(
        repository,
        [
            make_image(created_at=moment)
            for moment in (start, start + MICROSECOND, end - MICROSECOND, end)
        ],
    )
    add_all(
        repository,
        [make_image(created_at=start - MICROSECOND), make_image(created_at=end + MICROSECOND)],
    )

    query = ListQuery(start_date=start, end_date=end)
    assert listed(repository, query, "alice") == ids(reversed(inside))
    assert listed(repository, ListQuery(start_date=end), "alice")[-1] == inside[-1].image_id
    assert listed(repository, ListQuery(end_date=start), "alice")[0] == inside[0].image_id
    assert len(listed(repository, ListQuery(start_date=end), "alice")) == 2
    assert len(listed(repository, ListQuery(end_date=start), "alice")) == 2


def test_date_range_compares_instants_not_wall_clocks(
    repository: ImageRepository, make_image: MakeImage
) -> None:
    image = make_image(created_at=datetime(2026, 11, 22, 10, 0, tzinfo=UTC))
    repository.add(image)
    same_instant = image.created_at.astimezone(timezone(timedelta(hours=1)))

    query = ListQuery(start_date=same_instant, end_date=same_instant)
    assert listed(repository, query, "alice") == [image.image_id]


def test_list_orders_oldest_first_when_asked(
    repository: ImageRepository, make_image: MakeImage
) -> None:
    images = add_all(repository, [make_image() for _ in range(4)])

    assert listed(repository, ListQuery(order=SortOrder.ASC), "alice") == ids(images)
    assert listed(repository, ListQuery(order=SortOrder.DESC), "alice") == ids(reversed(images))


def test_every_filter_combines_with_the_others(
    repository: ImageRepository, make_image: MakeImage
) -> None:
    start = datetime(2026, 11, 22, tzinfo=UTC)
    wanted = {
        "user_id": "bob",
        "visibility": Visibility.PUBLIC,
        "tags": ("beach", "sunset"),
        "content_type": "image/png",
        "title": "Été sur la plage",
        "created_at": start + timedelta(hours=1),
    }
    match = make_image(**wanted)
    misses = [
        make_image(**{**wanted, "user_id": "carol"}),
        make_image(**{**wanted, "visibility": Visibility.PRIVATE}),
        make_image(**{**wanted, "tags": ("beach",)}),
        make_image(**{**wanted, "content_type": "image/jpeg"}),
        make_image(**{**wanted, "title": "Hiver"}),
        make_image(**{**wanted, "created_at": start - MICROSECOND}),
        make_image(**{**wanted, "created_at": start + timedelta(days=1, microseconds=1)}),
        make_image(**{**wanted, "state": ImageState.DELETING}),
    ]
    add_all(repository, [match, *misses])
    query = ListQuery(
        user_id="bob",
        tags=("sunset", "beach"),
        content_type="image/png",
        title_prefix="été",
        start_date=start,
        end_date=start + timedelta(days=1),
    )

    for order in SortOrder:
        assert listed(repository, attrs.evolve(query, order=order), "alice") == [match.image_id]


# Pagination


@pytest.mark.parametrize("order", list(SortOrder))
@pytest.mark.parametrize("limit", [1, 2, 3, 7])
@pytest.mark.parametrize(
    "query",
    [ListQuery(), ListQuery(tags=("beach",)), ListQuery(user_id="alice"), ListQuery(user_id="bob")],
    ids=["all", "tag", "own", "other-user"],
)
def test_pagination_returns_every_match_exactly_once_in_order(
    repository: ImageRepository,
    make_image: MakeImage,
    order: SortOrder,
    limit: int,
    query: ListQuery,
) -> None:
    shared_instant = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    images = []
    for n in range(17):
        images.append(
            make_image(
                user_id=("alice", "bob")[n % 2],
                visibility=(Visibility.PUBLIC, Visibility.PRIVATE)[n % 3 == 0],
                tags=("beach",) if n % 4 else (),
                # runs of equal timestamps straddle page boundaries
                created_at=shared_instant + timedelta(microseconds=n // 5),
            )
        )
    add_all(repository, images)
    query = attrs.evolve(query, order=order)

    assert page_through(repository, query, "alice", limit) == expected(images, query, "alice")


@pytest.mark.parametrize("order", list(SortOrder))
def test_equal_created_at_is_tie_broken_by_image_id(
    repository: ImageRepository, make_image: MakeImage, order: SortOrder
) -> None:
    instant = datetime(2026, 11, 22, 12, 0, 0, 1, tzinfo=UTC)
    images = [make_image(created_at=instant) for _ in range(5)]
    random.Random(5).shuffle(images)
    add_all(repository, images)

    by_id = sorted(ids(images), reverse=order is SortOrder.DESC)
    assert listed(repository, ListQuery(order=order), "alice") == by_id
    assert page_through(repository, ListQuery(order=order), "alice", 2) == by_id


def test_list_after_a_position_starts_strictly_after_it(
    repository: ImageRepository, make_image: MakeImage
) -> None:
    images = add_all(repository, [make_image() for _ in range(5)])
    middle = images[2].position
    # a position need not belong to a listed image: the one it came from may have gone since
    between = Position(images[2].created_at, images[2].image_id + "0")

    assert ids(repository.list(ListQuery(), "alice", middle, 10).images) == ids(
        [images[1], images[0]]
    )
    assert ids(repository.list(ListQuery(order=SortOrder.ASC), "alice", middle, 10).images) == ids(
        images[3:]
    )
    assert ids(repository.list(ListQuery(), "alice", between, 10).images) == ids(
        reversed(images[:3])
    )


# Concurrency


def test_concurrent_adds_lose_nothing(repository: ImageRepository, make_image: MakeImage) -> None:
    images = [
        make_image(tags=("beach",), user_id=f"user{n % 4}", visibility=Visibility.PUBLIC)
        for n in range(120)
    ]
    batches = [images[n::6] for n in range(6)]

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(lambda batch: add_all(repository, batch), batches))

    assert sorted(page_through(repository, ListQuery(tags=("beach",)), "x", 25)) == sorted(
        ids(images)
    )
    assert all(repository.get(image.image_id) == image for image in images)


def test_exactly_one_of_concurrent_replaces_at_the_same_version_wins(
    repository: ImageRepository, make_image: MakeImage
) -> None:
    image = make_image(tags=("start",))
    repository.add(image)
    contenders = 8
    barrier = threading.Barrier(contenders)

    def attempt(n: int) -> bool:
        barrier.wait()
        try:
            repository.replace(
                attrs.evolve(image, title=f"winner {n}", tags=(f"t{n}",), version=2), 1
            )
        except VersionConflict:
            return False
        return True

    with ThreadPoolExecutor(max_workers=contenders) as pool:
        outcomes = list(pool.map(attempt, range(contenders)))

    assert outcomes.count(True) == 1
    winner = outcomes.index(True)
    stored = repository.get(image.image_id)
    assert stored is not None
    assert (stored.title, stored.version) == (f"winner {winner}", 2)
    for n in range(contenders):
        expected_ids = [image.image_id] if n == winner else []
        assert listed(repository, ListQuery(tags=(f"t{n}",)), "alice") == expected_ids


def test_concurrent_read_modify_write_loops_lose_no_update(
    repository: ImageRepository, make_image: MakeImage
) -> None:
    image = make_image(metadata={"count": 0})
    repository.add(image)
    workers, increments = 4, 15

    def increment_many(_: int) -> None:
        for _ in range(increments):
            while True:
                current = repository.get(image.image_id)
                assert current is not None
                count = current.metadata["count"]
                assert isinstance(count, int)
                updated = attrs.evolve(
                    current, metadata={"count": count + 1}, version=current.version + 1
                )
                try:
                    repository.replace(updated, current.version)
                except VersionConflict:
                    continue
                break

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(increment_many, range(workers)))

    stored = repository.get(image.image_id)
    assert stored is not None
    assert stored.metadata["count"] == workers * increments
    assert stored.version == 1 + workers * increments


# The strongest check: random data, random queries, against the model answer

USERS = ("alice", "bob", "carol", "dave")
TAGS = ("beach", "sunset", "city", "été", "dog", "a b")
TITLES = ("Été à Paris", "ete", "Beach", "beach party", "BEACH", "Straße", "", "zoo", "Ünïcode")


def random_images(rng: random.Random, make_image: MakeImage, count: int) -> list[Image]:
    base = datetime(2026, 11, 22, tzinfo=UTC)
    instants = [
        base + timedelta(seconds=rng.randrange(3600), microseconds=rng.randrange(3))
        for _ in range(40)
    ]
    return [
        make_image(
            user_id=rng.choice(USERS),
            visibility=rng.choice(list(Visibility)),
            state=rng.choices(
                list(ImageState),
                weights=[1 if s is not ImageState.ACTIVE else 8 for s in ImageState],
            )[0],
            tags=tuple(rng.sample(TAGS, rng.randrange(4))),
            content_type=rng.choice(("image/jpeg", "image/png", "image/gif")),
            title=rng.choice(TITLES),
            created_at=rng.choice(instants),
        )
        for _ in range(count)
    ]


def random_query(rng: random.Random, images: Sequence[Image]) -> ListQuery:
    def maybe(probability: float) -> bool:
        return rng.random() < probability

    instants = [image.created_at for image in images]
    start = rng.choice(instants) + rng.choice((-MICROSECOND, timedelta(0), MICROSECOND))
    end = rng.choice(instants) + rng.choice((-MICROSECOND, timedelta(0), MICROSECOND))
    return ListQuery(
        user_id=rng.choice((*USERS, "nobody")) if maybe(0.3) else None,
        tags=tuple(rng.sample(TAGS, rng.choice((1, 1, 2, 3)))) if maybe(0.4) else (),
        content_type=rng.choice(("image/jpeg", "image/png", "image/webp")) if maybe(0.2) else None,
        title_prefix=rng.choice(("été", "ETE", "beach", "b", "STRASS", "", "ü", "x"))
        if maybe(0.2)
        else None,
        start_date=min(start, end) if maybe(0.25) else None,
        end_date=max(start, end) if maybe(0.25) else None,
        order=rng.choice(list(SortOrder)),
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_lists_page_through_to_the_model_answer(
    repository: ImageRepository, make_image: MakeImage, seed: int
) -> None:
    rng = random.Random(seed)
    images = add_all(repository, random_images(rng, make_image, 200))

    for _ in range(60):
        query = random_query(rng, images)
        caller = rng.choice(USERS)
        limit = rng.choice((1, 3, 10, 50))
        assert page_through(repository, query, caller, limit) == expected(images, query, caller), (
            query,
            caller,
            limit,
        )


# SQLite's own promises, beyond the contract


def test_sqlite_keeps_images_across_reopening_in_wal_mode(
    tmp_path: Path, make_image: MakeImage
) -> None:
    path = tmp_path / "imagecore.sqlite3"
    image = make_image(tags=("beach",), metadata={"k": 1.5})
    first = SqliteImageRepository(path)
    first.add(image)
    first.close()

    second = SqliteImageRepository(path)
    try:
        assert second.get(image.image_id) == image
        assert listed(second, ListQuery(tags=("beach",)), "alice") == [image.image_id]
    finally:
        second.close()
    with contextlib.closing(sqlite3.connect(path)) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert raw.execute("PRAGMA user_version").fetchone() == (len(_MIGRATIONS),) == (6,)


def test_sqlite_migrates_a_first_version_database_keeping_its_images(
    tmp_path: Path, make_image: MakeImage
) -> None:
    path = tmp_path / "imagecore.sqlite3"
    old = make_image(user_id="alice", sha256="ab" * 32)
    with contextlib.closing(sqlite3.connect(path)) as raw:
        for statement in _SCHEMA_V1:
            raw.execute(statement)
        raw.execute(
            "INSERT INTO images (image_id, user_id, visibility, state, content_type,"
            " title_folded, created_at, version, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (old.image_id, "alice", "private", "active", old.content_type, "", 1, 1, _encode(old)),
        )
        raw.execute("PRAGMA user_version = 1")
        raw.commit()
    tombstone = make_image(state=ImageState.DELETING)

    repository = SqliteImageRepository(path)
    try:
        repository.add(tombstone)
        assert list(repository.unsettled()) == [tombstone]
        assert repository.find_by_content("alice", old.sha256) == old, "hashes are carried over"
        claiming = make_image(user_id="alice", sha256=old.sha256, claims_content=True)
        repository.add(claiming)  # an image stored before claims existed holds none
        with pytest.raises(DuplicateContent):
            repository.add(make_image(user_id="alice", sha256=old.sha256, claims_content=True))
        plan = repository._connection().execute(
            "EXPLAIN QUERY PLAN SELECT record FROM images WHERE state IN ('deleting', 'uploading')"
        )
        assert "images_unsettled" in " ".join(str(row[3]) for row in plan)
    finally:
        repository.close()


def test_sqlite_migration_folds_the_tags_and_titles_stored_before_unicode_forms(
    tmp_path: Path, make_image: MakeImage
) -> None:
    fullwidth = "\uff42\uff45\uff41\uff43\uff48"  # "beach" in fullwidth letters
    old = make_image(
        title="\uff22\uff25\uff21\uff23\uff28 hut",
        tags=(fullwidth, "beach", "stra\u00dfe", "cafe\u0301"),
    )
    plain = make_image(title="Sea", tags=("sea", "caf\u00e9"), metadata={"k": 1.5, "n": "a\nb"})
    path = tmp_path / "imagecore.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as raw:
        for statements in _MIGRATIONS[:3]:
            for statement in statements:
                raw.execute(statement)
        for image in (old, plain):  # as schema 3 kept them: tags lower-cased, titles case-folded
            raw.execute(
                "INSERT INTO images (image_id, user_id, visibility, state, content_type,"
                " title_folded, created_at, version, sha256, record)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (image.image_id, image.user_id, image.visibility.value, image.state.value,
                 image.content_type, image.title.casefold(), _micros(image.created_at),
                 image.version, image.sha256, _encode(image)),
            )  # fmt: skip
            raw.executemany(
                "INSERT INTO image_tags (image_id, tag, user_id, visibility, state, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (image.image_id, tag, image.user_id, image.visibility.value,
                     image.state.value, _micros(image.created_at))
                    for tag in image.tags
                ],
            )  # fmt: skip
        raw.execute("PRAGMA user_version = 3")
        raw.commit()

    repository = SqliteImageRepository(path)
    try:
        assert repository.get(old.image_id) == attrs.evolve(
            old, tags=("beach", "strasse", "caf\u00e9")
        ), "each tag in the kept form, once"
        assert repository.get(plain.image_id) == plain
        for tags in [("beach",), ("strasse",), ("beach", "strasse")]:
            assert listed(repository, ListQuery(tags=tags), "alice") == [old.image_id]
        assert listed(repository, ListQuery(tags=("caf\u00e9",)), "alice") == ids([plain, old])
        assert listed(repository, ListQuery(title_prefix="beach h"), "alice") == [old.image_id]
    finally:
        repository.close()
    with contextlib.closing(sqlite3.connect(path)) as raw:
        (record,) = raw.execute(
            "SELECT record FROM images WHERE image_id = ?", (plain.image_id,)
        ).fetchone()
        assert record == _encode(plain), "a record that needed nothing is left as it was"


@pytest.mark.parametrize(
    "query",
    [
        ListQuery(),
        ListQuery(order=SortOrder.ASC),
        ListQuery(user_id="alice"),
        ListQuery(user_id="bob"),
        ListQuery(tags=("beach",)),
        ListQuery(tags=("beach", "sunset"), user_id="bob"),
        ListQuery(
            content_type="image/png",
            title_prefix="été",
            start_date=datetime(2026, 1, 1, tzinfo=UTC),
        ),
    ],
    ids=["caller", "caller-asc", "own", "other-user", "tag", "tags-user", "plain-filters"],
)
@pytest.mark.parametrize("paged", [False, True])
def test_sqlite_lists_read_indexes_in_order_without_sorting(
    tmp_path: Path, query: ListQuery, paged: bool
) -> None:
    path = tmp_path / "imagecore.sqlite3"
    repository = SqliteImageRepository(path)
    repository.get("01JD0000000000000000000000")  # makes the schema
    repository.close()
    after = (
        Position(datetime(2026, 11, 22, tzinfo=UTC), "01JD0000000000000000000000")
        if paged
        else None
    )
    statements = [list_statement(query, "alice", after, 51)]
    budget_end = budget_end_statement(query, "alice", after, 204)
    if budget_end is not None:
        # The entry the budget ends at, then the list that reads no further.
        up_to = Position(datetime(2026, 1, 2, tzinfo=UTC), "01JD0")
        statements += [budget_end, list_statement(query, "alice", after, 51, up_to)]
    with contextlib.closing(sqlite3.connect(path)) as connection:
        for sql, parameters in statements:
            rows = connection.execute("EXPLAIN QUERY PLAN " + sql, parameters).fetchall()
            plan = [str(row[3]) for row in rows]

            assert not [step for step in plan if "TEMP B-TREE" in step], (sql, plan)
            assert not [step for step in plan if step.startswith("SCAN")], (sql, plan)
    filtered = query.content_type is not None or bool(query.title_prefix) or len(query.tags) > 1
    assert (budget_end is not None) == filtered


# --- revision: what a kept page is checked against --------------------------------------------


def test_every_committed_write_changes_the_revision_and_reads_do_not(
    repository: ImageRepository, make_image: MakeImage
) -> None:
    before = repository.revision()
    if before is None:
        pytest.skip("this store cannot tell its revision cheaply: no page is kept")
    image = make_image()
    repository.add(image)
    added = repository.revision()
    assert added != before
    repository.get(image.image_id)
    repository.list(ListQuery(), image.user_id, None, 10)
    assert repository.revision() == added
    edited = attrs.evolve(image, title="edited", version=image.version + 1)
    repository.replace(edited, image.version)
    assert repository.revision() not in (before, added)


def test_a_refused_write_leaves_the_revision_as_it_was(
    repository: ImageRepository, make_image: MakeImage
) -> None:
    image = make_image()
    repository.add(image)
    before = repository.revision()
    if before is None:
        pytest.skip("this store cannot tell its revision cheaply: no page is kept")
    with pytest.raises(AlreadyExists):
        repository.add(image)
    with pytest.raises(VersionConflict):
        repository.replace(attrs.evolve(image, title="late"), image.version + 5)
    assert repository.revision() == before


def test_sqlite_revision_changes_with_a_write_of_another_connection_or_thread(
    tmp_path: Path, make_image: MakeImage
) -> None:
    # Another connection stands for another worker process, or `imagecore reconcile`.
    path = tmp_path / "imagecore.sqlite3"
    reader, writer = SqliteImageRepository(path), SqliteImageRepository(path)
    before = reader.revision()
    writer.add(make_image())
    after = reader.revision()
    assert after != before
    # This object's own writes from another thread, whose connection is not the reader's.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(reader.add, make_image()).result()
    assert reader.revision() not in (before, after)
    # One value for every thread while nothing is written: a read kept by one serves all.
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(reader.revision).result() == reader.revision()


def test_sqlite_revision_changes_with_a_write_of_another_process_and_with_a_restart(
    tmp_path: Path,
) -> None:
    path = tmp_path / "imagecore.sqlite3"
    reader = SqliteImageRepository(path)
    before = reader.revision()
    # A process that writes: `imagecore reconcile`, a job worker, another server worker.
    subprocess.run(
        [sys.executable, "-c", ADD_AN_IMAGE_IN_ANOTHER_PROCESS, str(path)], check=True, timeout=60
    )
    assert len(reader.list(ListQuery(), "alice", None, 10).images) == 1
    written = reader.revision()
    assert written != before
    # Opening the database sets a new revision: a process killed between its commit and the
    # revision's change leaves a stale value only until a process opens the database again.
    SqliteImageRepository(path)
    assert reader.revision() not in (before, written)
    revision_file = tmp_path / "imagecore.sqlite3-revision"
    assert stat.S_IMODE(revision_file.stat().st_mode) == 0o600
    # A file made short (by hand) is made whole again by the next process that opens it.
    revision_file.write_bytes(b"")
    assert len(SqliteImageRepository(path).revision()) == 8


ADD_AN_IMAGE_IN_ANOTHER_PROCESS = """
import sys
from pathlib import Path
from adapters.sqlite import SqliteImageRepository
from tests.support.doubles import make_image
SqliteImageRepository(Path(sys.argv[1])).add(make_image())
"""
