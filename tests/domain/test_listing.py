"""Lists, page after page: every image once and in order, only what the caller may see, behind
cursors bound to the caller and the filters."""

from __future__ import annotations

from datetime import timedelta

import pytest

from imagecore.commands import UpdateCommand
from imagecore.errors import InvalidCursor
from imagecore.model import Image, SortOrder
from imagecore.query import ListQuery, build_list_query
from imagecore.service import ImageService
from tests.support.doubles import FakeClock
from tests.support.use_cases import list_ids, upload


@pytest.fixture
def seven(service: ImageService, clock: FakeClock, png: bytes) -> list[Image]:
    images = []
    for i in range(7):
        images.append(upload(service, "alice", png, title=f"img {i}"))
        clock.advance()
    return images


@pytest.mark.parametrize("order", [SortOrder.DESC, SortOrder.ASC])
def test_paging_returns_every_image_once_and_next_cursor_is_none_on_the_last_page(
    service: ImageService, seven: list[Image], order: SortOrder
) -> None:
    query = ListQuery(order=order, limit=3)
    sizes, ids, cursor = [], [], None
    while True:
        page = service.list_images("alice", query, cursor)
        sizes.append(len(page.images))
        ids += [image.image_id for image in page.images]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    expected = [image.image_id for image in seven]
    assert ids == (expected[::-1] if order is SortOrder.DESC else expected)
    assert sizes == [3, 3, 1]


def test_when_the_last_page_is_full_it_has_no_next_cursor(
    service: ImageService, seven: list[Image]
) -> None:
    first = service.list_images("alice", ListQuery(limit=4))
    assert first.next_cursor is not None
    second = service.list_images("alice", ListQuery(limit=3), first.next_cursor)
    assert len(second.images) == 3
    assert second.next_cursor is None
    everything = service.list_images("alice", ListQuery(limit=7))
    assert len(everything.images) == 7
    assert everything.next_cursor is None


def test_an_empty_list_has_no_next_cursor(service: ImageService) -> None:
    page = service.list_images("alice", ListQuery())
    assert page.images == []
    assert page.next_cursor is None


def test_newest_images_come_first_by_default(service: ImageService, seven: list[Image]) -> None:
    page = service.list_images("alice", build_list_query())
    assert [image.image_id for image in page.images] == [image.image_id for image in seven][::-1]


def test_a_caller_lists_their_own_images_and_everyones_public_ones(
    service: ImageService, png: bytes
) -> None:
    own_private = upload(service, "alice", png).image_id
    own_public = upload(service, "alice", png, visibility="public").image_id
    bobs_private = upload(service, "bob", png).image_id
    bobs_public = upload(service, "bob", png, visibility="public").image_id
    assert set(list_ids(service, "alice")) == {own_private, own_public, bobs_public}
    assert set(list_ids(service, "bob")) == {own_public, bobs_private, bobs_public}
    assert set(list_ids(service, "carol")) == {own_public, bobs_public}
    assert list_ids(service, "alice", ListQuery(user_id="bob")) == [bobs_public]
    assert bobs_private not in list_ids(service, "alice", ListQuery(user_id="bob"))


def test_a_cursor_from_one_caller_is_rejected_for_another(
    service: ImageService, png: bytes
) -> None:
    for _ in range(3):
        upload(service, "alice", png, visibility="public")
    page = service.list_images("alice", ListQuery(limit=1))
    assert page.next_cursor is not None
    with pytest.raises(InvalidCursor):
        service.list_images("bob", ListQuery(limit=1), page.next_cursor)


def test_a_cursor_used_with_other_filters_is_rejected(
    service: ImageService, seven: list[Image]
) -> None:
    page = service.list_images("alice", ListQuery(limit=2))
    assert page.next_cursor is not None
    with pytest.raises(InvalidCursor):
        service.list_images("alice", ListQuery(limit=2, order=SortOrder.ASC), page.next_cursor)
    with pytest.raises(InvalidCursor):
        service.list_images("alice", ListQuery(limit=2, title_prefix="img"), page.next_cursor)
    with pytest.raises(InvalidCursor):
        service.list_images("alice", ListQuery(limit=2), page.next_cursor + "x")


def test_images_deleted_between_pages_are_skipped_without_repeats(
    service: ImageService, seven: list[Image]
) -> None:
    first = service.list_images("alice", ListQuery(limit=3))
    assert first.next_cursor is not None
    service.delete("alice", seven[3].image_id)  # the next one in line
    service.delete("alice", first.images[-1].image_id)  # the cursor's own position
    rest = list_ids(service, "alice")
    seen = [image.image_id for image in first.images]
    page = service.list_images("alice", ListQuery(limit=3), first.next_cursor)
    assert [image.image_id for image in page.images] == [
        image.image_id for image in (seven[2], seven[1], seven[0])
    ]
    assert not set(seen) & {image.image_id for image in page.images}
    assert seven[3].image_id not in rest


def test_a_tag_is_one_tag_in_stored_images_and_in_the_filter_whatever_its_spelling(
    service: ImageService, png: bytes
) -> None:
    fullwidth = "\uff42\uff45\uff41\uff43\uff48"  # "beach" in fullwidth letters
    spellings = [fullwidth, "BEACH", "beach", "Beach"]
    images = [upload(service, "alice", png, tags=[spelling]) for spelling in spellings]

    assert {image.tags for image in images} == {("beach",)}
    for spelling in spellings:
        found = list_ids(service, "alice", build_list_query(tags=spelling))
        assert sorted(found) == sorted(image.image_id for image in images)


def test_a_title_prefix_finds_the_title_in_any_case_or_compatibility_spelling(
    service: ImageService, png: bytes
) -> None:
    image = upload(service, "alice", png, title="\uff22\uff45\uff41\uff43\uff48 day")
    upload(service, "alice", png, title="Sea")

    for prefix in ("beach", "BEA", "\uff42\uff45\uff41"):
        assert list_ids(service, "alice", build_list_query(title=prefix)) == [image.image_id]


# --- pages kept while nothing changes ---------------------------------------------------------


def test_a_page_read_again_while_nothing_changed_is_the_one_kept(
    service: ImageService, seven: list[Image]
) -> None:
    query = ListQuery(limit=3)
    first = service.list_images("alice", query)
    assert service.list_images("alice", query) is first
    # Another caller, other filters or another position are other pages.
    assert service.list_images("bob", query) is not first
    assert service.list_images("alice", ListQuery(limit=4)) is not first
    assert service.list_images("alice", query, first.next_cursor) is not first


def test_every_write_is_seen_by_the_next_read_of_a_kept_page(
    service: ImageService, seven: list[Image], png: bytes
) -> None:
    query = ListQuery(limit=3)
    service.list_images("alice", query)
    newest = upload(service, "alice", png, title="newer")
    assert service.list_images("alice", query).images[0].image_id == newest.image_id
    service.update("alice", newest.image_id, UpdateCommand(title="renamed"))
    assert service.list_images("alice", query).images[0].title == "renamed"
    service.delete("alice", newest.image_id)
    assert newest.image_id not in list_ids(service, "alice", query)


def test_cursors_made_in_one_minute_are_one_string_and_a_kept_one_expires_on_time(
    service: ImageService, seven: list[Image], clock: FakeClock
) -> None:
    query = ListQuery(limit=3)
    clock.advance(timedelta(seconds=61 - clock.now().second))  # a second past a whole minute
    first = service.list_images("alice", query)
    clock.advance(timedelta(seconds=59))  # the next whole minute
    assert service.list_images("alice", query).next_cursor == first.next_cursor
    clock.advance(timedelta(seconds=1))
    later = service.list_images("alice", query)
    assert later.next_cursor != first.next_cursor
    assert [image.image_id for image in later.images] == [image.image_id for image in first.images]
    # Made a second past a minute, the first cursor lasts until a day after the next minute.
    clock.advance(timedelta(hours=24) - timedelta(seconds=2))
    service.list_images("alice", query, first.next_cursor)
    clock.advance(timedelta(seconds=1))
    with pytest.raises(InvalidCursor, match="expired"):
        service.list_images("alice", query, first.next_cursor)
