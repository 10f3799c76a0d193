"""The use cases over the memory adapters: what a user of the service can rely on."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from datetime import datetime, timedelta

import attrs
import pytest
from PIL import Image as PILImage

from adapters.memory import MemoryBlobStore, MemoryImageRepository
from imagecore import validation
from imagecore.commands import UpdateCommand, UploadCommand
from imagecore.errors import (
    InvalidCursor,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    UnsupportedMediaType,
)
from imagecore.model import ByteRange, Image, ImageState, SortOrder, ThumbnailStatus, Visibility
from imagecore.query import ListQuery, build_list_query
from imagecore.service import ImageService
from imagecore.uploads import HEAD_BYTES

from ..images import image_bytes
from .support import FakeClock, chunked, crockford, make_service


def upload(service: ImageService, caller: str, data: bytes, **fields: object) -> Image:
    return service.store_upload(caller, UploadCommand(chunks=chunked(data), **fields)).image


def read_all(service: ImageService, caller: str, image_id: str) -> bytes:
    return b"".join(service.download(caller, image_id).open())


def list_ids(service: ImageService, caller: str, query: ListQuery | None = None) -> list[str]:
    query = query or ListQuery()
    ids: list[str] = []
    cursor = None
    while True:
        page = service.list_images(caller, query, cursor)
        ids += [image.image_id for image in page.images]
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor


def assert_nothing_stored(
    service: ImageService, repository: MemoryImageRepository, blobs: MemoryBlobStore
) -> None:
    assert blobs.keys() == []
    assert repository.list(ListQuery(), "alice", None, 100) == []


# --- upload -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "size"),
    [("image/png", (4, 3)), ("image/jpeg", (16, 9)), ("image/gif", (1, 1)), ("image/webp", (7, 5))],
)
def test_upload_stores_the_bytes_and_what_they_say_about_themselves(
    service: ImageService,
    repository: MemoryImageRepository,
    clock: FakeClock,
    content_type: str,
    size: tuple[int, int],
) -> None:
    data = image_bytes(content_type, *size)
    image = upload(service, "alice", data, filename="photo.bin")
    assert image.content_type == content_type
    assert (image.width, image.height) == size
    assert image.size == len(data)
    assert image.sha256 == hashlib.sha256(data).hexdigest()
    assert image.user_id == "alice"
    assert image.filename == "photo.bin"
    assert image.created_at == image.updated_at == clock.now()
    assert image.version == 1
    assert image.thumbnail_status is ThumbnailStatus.PENDING
    assert image.state is ImageState.ACTIVE
    assert validation.is_image_id(image.image_id)
    assert repository.get(image.image_id) == image
    assert service.get("alice", image.image_id) == image
    assert read_all(service, "alice", image.image_id) == data


def test_upload_keeps_the_validated_metadata(service: ImageService, png: bytes) -> None:
    image = upload(
        service,
        "alice",
        png,
        filename="../../secret/beach.png",
        title="  Sunset ",
        description="On the beach\nat seven",
        tags=["Beach", "SUNSET", "beach"],
        metadata={"camera": "X100V", "iso": 400},
        visibility="public",
    )
    assert image.filename == "beach.png"
    assert image.title == "Sunset"
    assert image.description == "On the beach\nat seven"
    assert image.tags == ("beach", "sunset")
    assert dict(image.metadata) == {"camera": "X100V", "iso": 400}
    assert image.visibility is Visibility.PUBLIC
    assert service.get("alice", image.image_id) == image


def test_upload_defaults_to_a_private_untitled_image(service: ImageService, png: bytes) -> None:
    image = upload(service, "alice", png)
    assert image.visibility is Visibility.PRIVATE
    assert (image.title, image.description, image.tags, dict(image.metadata)) == ("", "", (), {})
    assert image.filename == "image"


def test_the_content_type_comes_from_the_bytes_not_the_file_name(
    service: ImageService, jpeg: bytes
) -> None:
    assert upload(service, "alice", jpeg, filename="pretend.png").content_type == "image/jpeg"


def test_an_upload_arriving_in_tiny_chunks_is_stored_whole(
    service: ImageService, png: bytes
) -> None:
    image = service.store_upload(
        "alice", UploadCommand(chunks=[png[i : i + 1] for i in range(len(png))])
    ).image
    assert read_all(service, "alice", image.image_id) == png
    assert image.sha256 == hashlib.sha256(png).hexdigest()


def test_a_large_upload_is_stored_byte_for_byte(service: ImageService, png: bytes) -> None:
    data = png + bytes(range(256)) * (3 * HEAD_BYTES // 256)  # trailing data after the image
    image = upload(service, "alice", data)
    assert image.size == len(data)
    assert image.sha256 == hashlib.sha256(data).hexdigest()
    assert read_all(service, "alice", image.image_id) == data


@pytest.mark.parametrize("chunks", [[], [b""], [b"", b"", b""]])
def test_an_empty_file_is_invalid_input_and_stores_nothing(
    service: ImageService,
    repository: MemoryImageRepository,
    blobs: MemoryBlobStore,
    chunks: list[bytes],
) -> None:
    with pytest.raises(InvalidInput, match="empty"):
        service.store_upload("alice", UploadCommand(chunks=chunks))
    assert_nothing_stored(service, repository, blobs)


@pytest.mark.parametrize(
    "data",
    [
        b"hello, world",
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        b"%PDF-1.7\n",
        b"\x89PNG\r\n\x1a\n",  # a PNG signature and nothing after it
        b"GIF89a",
        b"\xff\xd8\xff",
        bytes(4096),
    ],
)
def test_bytes_that_are_not_an_accepted_image_are_unsupported_and_store_nothing(
    service: ImageService,
    repository: MemoryImageRepository,
    blobs: MemoryBlobStore,
    data: bytes,
) -> None:
    with pytest.raises(UnsupportedMediaType):
        upload(service, "alice", data, filename="photo.png")
    assert_nothing_stored(service, repository, blobs)


def test_an_image_in_another_format_is_unsupported(service: ImageService) -> None:
    buffer = io.BytesIO()
    PILImage.new("RGB", (2, 2)).save(buffer, format="BMP")
    with pytest.raises(UnsupportedMediaType):
        upload(service, "alice", buffer.getvalue())


@pytest.mark.parametrize("max_bytes", [10, 1024, HEAD_BYTES + 10])
def test_a_file_over_the_limit_is_too_large_and_stores_nothing(
    clock: FakeClock,
    repository: MemoryImageRepository,
    blobs: MemoryBlobStore,
    png: bytes,
    max_bytes: int,
) -> None:
    service = make_service(clock, repository=repository, blobs=blobs, max_upload_bytes=max_bytes)
    data = png + bytes(max_bytes + 1 - len(png)) if max_bytes > len(png) else png
    assert len(data) > max_bytes
    with pytest.raises(PayloadTooLarge):
        upload(service, "alice", data)
    assert_nothing_stored(service, repository, blobs)


def test_a_file_exactly_at_the_limit_is_accepted(clock: FakeClock, png: bytes) -> None:
    service = make_service(clock, max_upload_bytes=len(png))
    assert upload(service, "alice", png).size == len(png)


def test_invalid_metadata_on_upload_stores_nothing(
    service: ImageService, repository: MemoryImageRepository, blobs: MemoryBlobStore, png: bytes
) -> None:
    with pytest.raises(InvalidInput):
        upload(service, "alice", png, metadata={"nested": {"no": 1}})
    with pytest.raises(InvalidInput):
        upload(service, "alice", png, tags="a,b")
    with pytest.raises(InvalidInput):
        upload(service, "alice", png, visibility="friends")
    assert_nothing_stored(service, repository, blobs)


class _FailingRepository(MemoryImageRepository):
    def add(self, image: Image) -> None:
        raise ConnectionError("the metadata store is down")


def test_when_storing_the_metadata_fails_the_bytes_are_removed(
    clock: FakeClock, blobs: MemoryBlobStore, png: bytes
) -> None:
    repository = _FailingRepository()
    service = make_service(clock, repository=repository, blobs=blobs)
    with pytest.raises(ConnectionError):
        upload(service, "alice", png)
    assert blobs.keys() == []


class _RepeatingIds:
    """Breaks the IdGenerator promise of uniqueness: every id is the same."""

    def new_id(self, now: datetime) -> str:
        return crockford(77)


def test_an_upload_whose_id_is_taken_never_harms_the_image_holding_it(
    clock: FakeClock, blobs: MemoryBlobStore, png: bytes, jpeg: bytes
) -> None:
    # ImageRepository.add may raise AlreadyExists; the bytes of the image that already holds the
    # id must survive the failed upload (DESIGN: no failed call leaves an image without bytes).
    service = make_service(clock, _RepeatingIds(), blobs=blobs)
    first = upload(service, "alice", png)
    with pytest.raises(Exception):  # noqa: B017 - which error is not the point here
        upload(service, "alice", jpeg)
    assert service.get("alice", first.image_id) == first
    assert read_all(service, "alice", first.image_id) == png


def test_when_reading_the_upload_fails_nothing_is_stored(
    service: ImageService, repository: MemoryImageRepository, blobs: MemoryBlobStore, png: bytes
) -> None:
    def broken_stream() -> Iterator[bytes]:
        yield png
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        service.store_upload("alice", UploadCommand(chunks=broken_stream()))
    assert_nothing_stored(service, repository, blobs)


# --- get and download -------------------------------------------------------------------------


def test_another_users_private_image_is_not_found(service: ImageService, png: bytes) -> None:
    image = upload(service, "alice", png)
    with pytest.raises(NotFound):
        service.get("bob", image.image_id)
    with pytest.raises(NotFound):
        service.download("bob", image.image_id)


def test_another_users_public_image_can_be_read_and_downloaded(
    service: ImageService, png: bytes
) -> None:
    image = upload(service, "alice", png, visibility="public")
    assert service.get("bob", image.image_id) == image
    assert read_all(service, "bob", image.image_id) == png


@pytest.mark.parametrize(
    "image_id", [crockford(999), "", "nope", "../../etc/passwd", "01jd8zq7x3k2m4n5p6q7r8s9tv"]
)
def test_an_unknown_or_malformed_id_is_not_found(service: ImageService, image_id: str) -> None:
    with pytest.raises(NotFound):
        service.get("alice", image_id)
    with pytest.raises(NotFound):
        service.download("alice", image_id)


def test_a_download_can_read_a_byte_range(service: ImageService, png: bytes) -> None:
    image = upload(service, "alice", png)
    download = service.download("alice", image.image_id)
    assert download.image == image
    assert b"".join(download.open(ByteRange(1, 4))) == png[1:5]
    assert download.presigned_url is None
    assert download.local_path is None


# --- update -----------------------------------------------------------------------------------


def test_the_owner_updates_metadata_and_the_version_moves_on(
    service: ImageService, clock: FakeClock, png: bytes
) -> None:
    image = upload(service, "alice", png, title="Old", tags=["a"], metadata={"k": 1})
    clock.advance(timedelta(minutes=5))
    updated = service.update(
        "alice",
        image.image_id,
        UpdateCommand(title=" New ", tags=["B", "b", "c"], visibility="public"),
    )
    assert updated.title == "New"
    assert updated.tags == ("b", "c")
    assert updated.visibility is Visibility.PUBLIC
    assert dict(updated.metadata) == {"k": 1}  # untouched fields stay
    assert updated.version == image.version + 1
    assert updated.updated_at == clock.now() != image.updated_at
    assert updated.created_at == image.created_at
    assert (updated.sha256, updated.size, updated.blob_key) == (
        image.sha256,
        image.size,
        image.blob_key,
    )
    assert service.get("alice", image.image_id) == updated
    assert service.get("bob", image.image_id) == updated  # now public


def test_fields_can_be_cleared(service: ImageService, png: bytes) -> None:
    image = upload(service, "alice", png, title="T", description="D", tags=["x"], metadata={"k": 1})
    cleared = service.update(
        "alice",
        image.image_id,
        UpdateCommand(title=None, description="", tags=[], metadata={}),
    )
    assert (cleared.title, cleared.description, cleared.tags, dict(cleared.metadata)) == (
        "",
        "",
        (),
        {},
    )


def test_updating_with_the_current_version_applies(service: ImageService, png: bytes) -> None:
    image = upload(service, "alice", png)
    first = service.update("alice", image.image_id, UpdateCommand(title="one"), expected_version=1)
    second = service.update("alice", image.image_id, UpdateCommand(title="two"), expected_version=2)
    assert (first.version, second.version) == (2, 3)
    assert service.get("alice", image.image_id).title == "two"


@pytest.mark.parametrize("stale", [0, 1, 3, 10**9])
def test_updating_a_stale_version_fails_and_changes_nothing(
    service: ImageService, png: bytes, stale: int
) -> None:
    image = upload(service, "alice", png, title="kept")
    current = service.update("alice", image.image_id, UpdateCommand(title="current"))
    assert current.version == 2
    with pytest.raises(PreconditionFailed, match="version 2"):
        service.update("alice", image.image_id, UpdateCommand(title="lost"), expected_version=stale)
    assert service.get("alice", image.image_id) == current


@pytest.mark.parametrize("visibility", ["private", "public"])
def test_only_the_owner_may_update_and_others_get_not_found(
    service: ImageService, png: bytes, visibility: str
) -> None:
    image = upload(service, "alice", png, title="mine", visibility=visibility)
    with pytest.raises(NotFound):
        service.update("bob", image.image_id, UpdateCommand(title="hijacked"))
    with pytest.raises(NotFound):
        service.update("bob", image.image_id, UpdateCommand(title="x"), expected_version=1)
    assert service.get("alice", image.image_id) == image


@pytest.mark.parametrize(
    "body",
    [
        {"owner": "bob"},
        {"user_id": "bob"},
        {"version": 7},
        {"title": "ok", "state": "deleted"},
        {"sha256": "0" * 64},
        {1: "x"},
    ],
)
def test_updating_a_field_that_may_not_change_is_invalid_input(body: dict[object, object]) -> None:
    with pytest.raises(InvalidInput, match="cannot update"):
        UpdateCommand.from_mapping(body)


@pytest.mark.parametrize("body", [[], "title=x", None, 5])
def test_an_update_body_that_is_not_an_object_is_invalid_input(body: object) -> None:
    with pytest.raises(InvalidInput, match="JSON object"):
        UpdateCommand.from_mapping(body)


def test_an_update_from_a_json_object_applies_its_fields(service: ImageService, png: bytes) -> None:
    image = upload(service, "alice", png)
    command = UpdateCommand.from_mapping({"title": "From JSON", "visibility": "public"})
    updated = service.update("alice", image.image_id, command)
    assert (updated.title, updated.visibility) == ("From JSON", Visibility.PUBLIC)


@pytest.mark.parametrize(
    "command",
    [
        UpdateCommand(title="x" * 201),
        UpdateCommand(tags="a,b"),
        UpdateCommand(metadata={"nested": {}}),
        UpdateCommand(visibility="everyone"),
        UpdateCommand(title="fine", description="\x00"),
    ],
)
def test_an_invalid_update_changes_nothing(
    service: ImageService, png: bytes, command: UpdateCommand
) -> None:
    image = upload(service, "alice", png, title="kept")
    with pytest.raises(InvalidInput):
        service.update("alice", image.image_id, command)
    assert service.get("alice", image.image_id) == image


def test_an_update_with_no_fields_returns_the_image_as_it_is(
    service: ImageService, clock: FakeClock, png: bytes
) -> None:
    image = upload(service, "alice", png)
    clock.advance()
    assert service.update("alice", image.image_id, UpdateCommand()) == image
    assert service.update("alice", image.image_id, UpdateCommand(), expected_version=1) == image
    assert service.get("alice", image.image_id) == image


def test_an_update_of_an_unknown_or_malformed_id_is_not_found(service: ImageService) -> None:
    for image_id in (crockford(7), "bad id"):
        with pytest.raises(NotFound):
            service.update("alice", image_id, UpdateCommand(title="x"))


# --- delete -----------------------------------------------------------------------------------


def test_a_deleted_image_is_gone_everywhere_and_its_bytes_are_removed(
    service: ImageService, blobs: MemoryBlobStore, png: bytes
) -> None:
    image = upload(service, "alice", png, visibility="public", tags=["beach"])
    kept = upload(service, "alice", png)
    assert blobs.exists(image.blob_key)
    service.delete("alice", image.image_id)
    for caller in ("alice", "bob"):
        with pytest.raises(NotFound):
            service.get(caller, image.image_id)
        with pytest.raises(NotFound):
            service.download(caller, image.image_id)
        assert image.image_id not in list_ids(service, caller)
        assert image.image_id not in list_ids(service, caller, build_list_query(tags="beach"))
    assert not blobs.exists(image.blob_key)
    assert blobs.keys() == [kept.blob_key]
    assert list_ids(service, "alice") == [kept.image_id]


def test_deleting_again_succeeds(service: ImageService, png: bytes) -> None:
    image = upload(service, "alice", png)
    service.delete("alice", image.image_id)
    service.delete("alice", image.image_id)
    service.delete("alice", image.image_id)
    with pytest.raises(NotFound):
        service.get("alice", image.image_id)


@pytest.mark.parametrize("visibility", ["private", "public"])
def test_another_user_cannot_delete_and_gets_not_found(
    service: ImageService, blobs: MemoryBlobStore, png: bytes, visibility: str
) -> None:
    image = upload(service, "alice", png, visibility=visibility)
    with pytest.raises(NotFound):
        service.delete("bob", image.image_id)
    assert service.get("alice", image.image_id) == image
    assert blobs.exists(image.blob_key)
    service.delete("alice", image.image_id)
    with pytest.raises(NotFound):  # nor learn that it once existed
        service.delete("bob", image.image_id)


@pytest.mark.parametrize("image_id", [crockford(12345), "", "not-an-id", "../" * 9])
def test_deleting_an_image_that_never_existed_is_not_found(
    service: ImageService, image_id: str
) -> None:
    with pytest.raises(NotFound):
        service.delete("alice", image_id)


def test_a_deleted_image_cannot_be_updated_back_to_life(
    service: ImageService, repository: MemoryImageRepository, png: bytes
) -> None:
    image = upload(service, "alice", png, title="gone")
    service.delete("alice", image.image_id)
    with pytest.raises(NotFound):
        service.update("alice", image.image_id, UpdateCommand(title="back"))
    with pytest.raises(NotFound):
        service.update("alice", image.image_id, UpdateCommand(), expected_version=1)
    with pytest.raises(NotFound):
        service.get("alice", image.image_id)
    stored = repository.get(image.image_id)
    assert stored is not None
    assert stored.state is ImageState.DELETED


def test_a_deleted_image_keeps_none_of_its_metadata(
    service: ImageService, repository: MemoryImageRepository, png: bytes
) -> None:
    image = upload(
        service, "alice", png, filename="me.png", title="T", tags=["x"], metadata={"gps": "..."}
    )
    service.delete("alice", image.image_id)
    stored = repository.get(image.image_id)
    assert stored is not None
    assert (stored.filename, stored.title, stored.tags, dict(stored.metadata)) == ("", "", (), {})


def test_an_interrupted_delete_is_finished_by_deleting_again(
    service: ImageService, repository: MemoryImageRepository, blobs: MemoryBlobStore, png: bytes
) -> None:
    image = upload(service, "alice", png)
    tombstone = attrs.evolve(image, state=ImageState.DELETING, version=2)
    repository.replace(tombstone, 1)  # the process died right after writing the tombstone
    with pytest.raises(NotFound):
        service.get("alice", image.image_id)
    service.delete("alice", image.image_id)
    assert not blobs.exists(image.blob_key)
    stored = repository.get(image.image_id)
    assert stored is not None
    assert stored.state is ImageState.DELETED


# --- list -------------------------------------------------------------------------------------


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
