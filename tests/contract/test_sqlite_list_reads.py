"""The SQLite repository's lists beyond the contract: a filter its indexes cannot answer (content
type, title prefix, a second tag) is checked on the entries of the driving index, and a request
reads at most its read budget of those entries before it answers a short page with the place
it read up to. The budget here is small, so that a few hundred images show it."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import attrs
import pytest

from adapters.sqlite import SqliteImageRepository
from imagecore.model import Image, Position, SortOrder, Visibility
from imagecore.query import ListQuery
from tests.support.numbered_images import BASE_INSTANT, build_image

BUDGET = 20

LIMIT = 6

CALLER = "alice"


def stored_images() -> list[Image]:
    rng = random.Random(11)
    return [
        build_image(
            n,
            user_id=rng.choice((CALLER, "bob", "carol")),
            visibility=rng.choice(list(Visibility)),
            tags=rng.choice((("city",), ("beach", "sea"), ("beach",))),
            content_type="image/webp" if rng.random() < 0.03 else "image/jpeg",
            title=rng.choice(("Sunset", "IMG_1", "Beach day")),
        )
        for n in range(1, 301)
    ]


QUERIES = {
    "title matching nothing": ListQuery(title_prefix="qqq"),
    "rare content type": ListQuery(content_type="image/webp"),
    "two tags": ListQuery(tags=("beach", "sea")),
    "two tags no image has together": ListQuery(tags=("city", "sea")),
    "title, one user, ascending": ListQuery(user_id="bob", title_prefix="sun", order=SortOrder.ASC),
    "title and a date range": ListQuery(
        title_prefix="img", start_date=BASE_INSTANT + timedelta(seconds=50)
    ),
}


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[SqliteImageRepository, list[Image]]:
    path: Path = tmp_path_factory.mktemp("sqlite-list-reads") / "imagecore.sqlite3"
    repository = SqliteImageRepository(path, read_budget=lambda limit: BUDGET)
    images = stored_images()
    for image in images:
        repository.add(image)
    return repository, images


def in_order(images: list[Image], order: SortOrder) -> list[Image]:
    return sorted(
        images,
        key=lambda image: (image.created_at, image.image_id),
        reverse=order is SortOrder.DESC,
    )


def beyond(position: Position | None, image: Image, order: SortOrder) -> bool:
    if position is None:
        return True
    key = (image.created_at, image.image_id)
    there = (position.created_at, position.image_id)
    return key < there if order is SortOrder.DESC else key > there


@pytest.mark.parametrize("name", list(QUERIES))
def test_a_request_reads_at_most_its_budget_of_index_entries_and_paging_on_finds_every_match(
    stored: tuple[SqliteImageRepository, list[Image]], name: str
) -> None:
    repository, images = stored
    query = QUERIES[name]
    # What the driving index gives: the images the caller may see, with the first tag, in the
    # dates; the other filters are checked on each of these.
    indexed = attrs.evolve(query, content_type=None, title_prefix=None, tags=query.tags[:1])
    entries = in_order([image for image in images if indexed.matches(image, CALLER)], query.order)
    matching = [image for image in entries if query.matches(image, CALLER)]

    returned: list[Image] = []
    after: Position | None = None
    requests = 0
    while True:
        requests += 1
        assert requests <= len(entries), "the list does not move on"
        found = repository.list(query, CALLER, after, LIMIT)
        returned += found.images
        read = [image for image in entries if beyond(after, image, query.order)]
        if len(found.images) == LIMIT:
            assert found.read_up_to is None
            after = found.images[-1].position
        elif found.read_up_to is not None:
            # Short, and not the end: exactly the budget's entries were read.
            read_up_to = found.read_up_to
            upto = [image for image in read if not beyond(read_up_to, image, query.order)]
            assert len(upto) == BUDGET, (len(upto), requests)
            assert [image.position for image in upto][-1] == read_up_to
            assert found.images == [image for image in upto if query.matches(image, CALLER)]
            after = read_up_to
        else:
            break

    assert [image.image_id for image in returned] == [image.image_id for image in matching]
    assert requests >= len(entries) // BUDGET, "the budget stopped no request"


def test_a_filter_its_indexes_answer_reads_no_budget(
    stored: tuple[SqliteImageRepository, list[Image]],
) -> None:
    repository, images = stored
    query = ListQuery(tags=("city",), order=SortOrder.ASC)
    matching = in_order([image for image in images if query.matches(image, CALLER)], query.order)
    assert len(matching) > 2 * BUDGET

    found = repository.list(query, CALLER, None, len(matching))

    assert found.images == matching
    assert found.read_up_to is None
