"""Direct uploads: a slot first, then the bytes, sent to the object store (completed by the
worker) or to the embedded server's own link; each becomes an image once validated."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from adapters.memory import MemoryBlobStore, MemoryImageRepository
from imagecore.blob_keys import upload_key
from imagecore.commands import DirectUploadCommand, UploadCommand
from imagecore.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    Unauthenticated,
    UnsupportedMediaType,
)
from imagecore.lifecycle import ORPHAN_GRACE
from imagecore.model import Image, ImageState
from imagecore.query import build_list_query
from imagecore.results import Stored, UploadSlot
from imagecore.service import ImageService
from tests.reliability.faults import (
    Crash,
    Fault,
    FaultKind,
    FaultMoment,
    FaultPlan,
    FaultyBlobStore,
    FaultyImageRepository,
)
from tests.support.blob_bytes import has_blob
from tests.support.doubles import FakeClock, make_service

LIMIT = 10_000


@pytest.fixture
def service(
    clock: FakeClock, repository: MemoryImageRepository, blobs: MemoryBlobStore
) -> ImageService:
    return make_service(clock, repository=repository, blobs=blobs, max_direct_upload_bytes=LIMIT)


def slot_for(service: ImageService, owner: str = "alice", **details: object) -> UploadSlot:
    command = DirectUploadCommand.from_mapping({"content_type": "image/png", **details})
    slot = service.create_upload(owner, command)
    assert isinstance(slot, UploadSlot), slot
    return slot


def land(blobs: MemoryBlobStore, slot: UploadSlot, data: bytes, owner: str = "alice") -> str:
    """The bytes a client posted to the object store, as the presigned POST stores them."""
    key = upload_key(owner, slot.upload_id)
    blobs.put(key, [data])
    return key


# --- the slot ---------------------------------------------------------------------------------


def test_a_slot_keeps_the_details_and_hides_the_image_until_its_bytes_arrive(
    service: ImageService, clock: FakeClock
) -> None:
    slot = slot_for(service, title="Dune", tags=["Sand"], metadata={"k": 1}, size=100)

    assert slot.expires_at == clock.now() + service.url_ttl
    assert slot.max_bytes == LIMIT
    assert slot.url == f"/uploads/{slot.upload_id}"
    assert set(slot.fields) == {"expires", "signature"}
    with pytest.raises(NotFound):
        service.get("alice", slot.upload_id)
    assert service.list_images("alice", build_list_query()).images == []


@pytest.mark.parametrize(
    ("details", "error"),
    [
        ({"content_type": "image/svg+xml"}, UnsupportedMediaType),
        ({"content_type": None}, UnsupportedMediaType),
        ({"size": LIMIT + 1}, PayloadTooLarge),
        ({"size": 0}, InvalidInput),
        ({"size": True}, InvalidInput),
        ({"size": "12"}, InvalidInput),
        ({"tags": "not a list"}, InvalidInput),
        ({"metadata": {"nested": {"no": 1}}}, InvalidInput),
        ({"owner": "bob"}, InvalidInput),
        ({"sha256": "ab" * 31}, InvalidInput),
        ({"sha256": "zz" * 32}, InvalidInput),
        ({"sha256": 12}, InvalidInput),
    ],
)
def test_a_slot_for_what_could_never_be_stored_is_refused_at_once(
    service: ImageService,
    repository: MemoryImageRepository,
    details: dict[str, object],
    error: type,
) -> None:
    with pytest.raises(error):
        service.create_upload(
            "alice", DirectUploadCommand.from_mapping({"content_type": "image/png", **details})
        )
    assert list(repository.unsettled()) == []


def test_without_upload_targets_there_are_no_direct_uploads(clock: FakeClock) -> None:
    service = make_service(clock, upload_targets=None)
    with pytest.raises(InvalidInput, match="POST the image to /images"):
        slot_for(service)


# --- bytes through the object store (the worker completes them) --------------------------------


def test_landed_bytes_become_the_slots_image_with_its_details(
    service: ImageService, blobs: MemoryBlobStore, clock: FakeClock, png: bytes
) -> None:
    slot = slot_for(service, title="Dune", tags=["sand"], visibility="public", filename="d.png")
    key = land(blobs, slot, png)
    clock.advance(timedelta(seconds=30))

    image = service.complete_upload(key)

    assert image is not None
    assert (image.image_id, image.user_id, image.title, image.tags) == (
        slot.upload_id,
        "alice",
        "Dune",
        ("sand",),
    )
    assert (image.filename, image.visibility.value, image.size) == ("d.png", "public", len(png))
    assert image.created_at == clock.now(), "it is new when it appears, not when the slot was"
    assert service.get("bob", slot.upload_id) == image
    assert b"".join(service.download("alice", image.image_id).open()) == png
    assert not has_blob(blobs, key), "the uploaded object is removed once it is an image"
    assert [i.image_id for i in service.list_images("alice", build_list_query()).images] == [
        slot.upload_id
    ]


def test_a_second_delivery_of_the_same_upload_changes_nothing(
    service: ImageService, blobs: MemoryBlobStore, png: bytes
) -> None:
    slot = slot_for(service)
    key = land(blobs, slot, png)
    first = service.complete_upload(key)
    land(blobs, slot, png)  # a client posted again, or the event came twice

    assert service.complete_upload(key) is None
    assert service.get("alice", slot.upload_id) == first
    assert not has_blob(blobs, key)


def test_bytes_under_uploads_without_a_slot_are_removed(
    service: ImageService, blobs: MemoryBlobStore, png: bytes
) -> None:
    key = upload_key("alice", "01JD0000000000000000000009")
    blobs.put(key, [png])

    assert service.complete_upload(key) is None
    assert blobs.keys() == []


def test_bytes_landed_under_another_users_name_do_not_fill_the_slot(
    service: ImageService, blobs: MemoryBlobStore, png: bytes
) -> None:
    slot = slot_for(service, owner="alice")
    key = land(blobs, slot, png, owner="mallory")

    assert service.complete_upload(key) is None
    with pytest.raises(NotFound):
        service.get("alice", slot.upload_id)
    assert not has_blob(blobs, key)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"<html><script>alert(1)</script></html>", UnsupportedMediaType),
        (b"", InvalidInput),
        (b"x" * (LIMIT + 1), PayloadTooLarge),
    ],
)
def test_refused_bytes_are_removed_and_close_the_slot(
    service: ImageService,
    repository: MemoryImageRepository,
    blobs: MemoryBlobStore,
    data: bytes,
    error: type,
) -> None:
    slot = slot_for(service)
    key = land(blobs, slot, data)

    with pytest.raises(error):
        service.complete_upload(key)

    assert blobs.keys() == []
    stored = repository.get(slot.upload_id)
    assert stored is not None
    assert stored.state is ImageState.DELETED
    assert service.complete_upload(key) is None, "a closed slot takes nothing more"


def test_a_deleted_image_is_not_brought_back_by_a_late_delivery(
    service: ImageService, blobs: MemoryBlobStore, png: bytes
) -> None:
    slot = slot_for(service)
    key = land(blobs, slot, png)
    service.complete_upload(key)
    service.delete("alice", slot.upload_id)
    land(blobs, slot, png)

    assert service.complete_upload(key) is None
    with pytest.raises(NotFound):
        service.get("alice", slot.upload_id)
    assert blobs.keys() == []


def test_deleting_a_slot_cancels_it(
    service: ImageService, blobs: MemoryBlobStore, png: bytes
) -> None:
    slot = slot_for(service)
    service.delete("alice", slot.upload_id)
    key = land(blobs, slot, png)

    assert service.complete_upload(key) is None
    assert blobs.keys() == []


# --- bytes sent to the embedded server's link --------------------------------------------------


def test_bytes_sent_to_the_link_become_the_image(
    service: ImageService, blobs: MemoryBlobStore, png: bytes
) -> None:
    slot = slot_for(service, title="t")

    image = service.receive_upload(slot.upload_id, [png[:10], png[10:]])

    assert (image.image_id, image.title, image.size) == (slot.upload_id, "t", len(png))
    assert blobs.keys() == [image.blob_key]
    assert image.blob_key.startswith(f"images/alice/{slot.upload_id}/")


def test_a_used_slot_takes_no_second_file(service: ImageService, png: bytes, jpeg: bytes) -> None:
    slot = slot_for(service)
    first = service.receive_upload(slot.upload_id, [png])

    with pytest.raises(Conflict):
        service.receive_upload(slot.upload_id, [jpeg])
    assert service.get("alice", slot.upload_id) == first


def test_an_expired_slot_takes_nothing(
    service: ImageService, clock: FakeClock, blobs: MemoryBlobStore, png: bytes
) -> None:
    slot = slot_for(service)
    clock.advance(service.url_ttl + timedelta(seconds=1))

    with pytest.raises(Unauthenticated, match="expired"):
        service.receive_upload(slot.upload_id, [png])
    assert blobs.keys() == []


def test_an_unknown_slot_is_not_found(service: ImageService, png: bytes) -> None:
    with pytest.raises(NotFound):
        service.receive_upload("01JD0000000000000000000009", [png])


def test_too_many_bytes_for_the_link_are_refused_as_they_arrive(
    service: ImageService, blobs: MemoryBlobStore, png: bytes
) -> None:
    slot = slot_for(service)
    read: list[int] = []

    def endless() -> Iterator[bytes]:
        yield png
        while True:
            read.append(1)
            yield b"\0" * 1000

    with pytest.raises(PayloadTooLarge, match=str(LIMIT)):
        service.receive_upload(slot.upload_id, endless())
    assert len(read) <= LIMIT // 1000 + 1, "it stops reading once the limit is crossed"
    assert blobs.keys() == []


def test_of_two_files_racing_for_one_slot_one_wins_and_the_loser_leaves_nothing(
    service: ImageService, blobs: MemoryBlobStore, png: bytes, jpeg: bytes
) -> None:
    slot = slot_for(service)
    inner: list[object] = []

    def slow_first_file() -> Iterator[bytes]:
        yield png[:20]
        # A second client claims the slot and finishes while the first is still sending.
        try:
            inner.append(service.receive_upload(slot.upload_id, [jpeg]))
        except Conflict as exc:
            inner.append(exc)
        yield png[20:]

    with pytest.raises(Conflict):
        service.receive_upload(slot.upload_id, slow_first_file())

    image = service.get("alice", slot.upload_id)
    assert inner == [image]
    assert image.content_type == "image/jpeg"
    assert blobs.keys() == [image.blob_key], "the losing claim's bytes are removed"
    assert b"".join(service.download("alice", image.image_id).open()) == jpeg


# --- a slot asked for with the file's SHA-256 -----------------------------------------------------


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


Fill = Callable[[ImageService, MemoryBlobStore, UploadSlot, bytes], "Image | None"]


def fill_through_link(
    service: ImageService, blobs: MemoryBlobStore, slot: UploadSlot, data: bytes
) -> Image | None:
    return service.receive_upload(slot.upload_id, [data])


def fill_through_object_store(
    service: ImageService, blobs: MemoryBlobStore, slot: UploadSlot, data: bytes
) -> Image | None:
    return service.complete_upload(land(blobs, slot, data))


FILLS = pytest.mark.parametrize(
    "fill", [fill_through_link, fill_through_object_store], ids=["link", "object store"]
)


def test_a_slot_asked_with_the_hash_of_the_callers_image_is_that_image_and_no_slot(
    service: ImageService, repository: MemoryImageRepository, png: bytes
) -> None:
    had = service.store_upload("alice", UploadCommand(chunks=[png], title="had")).image

    answer = service.create_upload(
        "alice",
        DirectUploadCommand.from_mapping(
            {"content_type": "image/png", "title": "other", "sha256": sha256_of(png).upper()}
        ),
    )

    assert answer == Stored(had, created=False)
    assert list(repository.unsettled()) == [], "no slot was made"
    assert [i.image_id for i in service.list_images("alice", build_list_query()).images] == [
        had.image_id
    ]


def test_a_slot_asked_with_a_hash_no_active_image_of_the_caller_has_is_a_slot(
    service: ImageService, repository: MemoryImageRepository, png: bytes
) -> None:
    service.store_upload("bob", UploadCommand(chunks=[png]))  # another user's bytes
    deleted = service.store_upload("alice", UploadCommand(chunks=[png])).image
    service.delete("alice", deleted.image_id)

    slot = slot_for(service, sha256=sha256_of(png))

    assert [s.image_id for s in repository.unsettled()] == [slot.upload_id]


@FILLS
def test_a_slot_with_a_hash_becomes_the_image_of_those_bytes_and_claims_them(
    service: ImageService, blobs: MemoryBlobStore, png: bytes, fill: Fill
) -> None:
    slot = slot_for(service, title="t", sha256=sha256_of(png))

    image = fill(service, blobs, slot, png)

    assert image is not None
    assert (image.image_id, image.title, image.sha256) == (slot.upload_id, "t", sha256_of(png))
    assert image.claims_content, "a later upload declaring these bytes finds this image"
    again = service.store_upload("alice", UploadCommand(chunks=[png], content_sha256=image.sha256))
    assert again == Stored(image, created=False)


@FILLS
def test_bytes_of_another_hash_are_refused_nothing_kept_and_the_slot_closed(
    service: ImageService,
    repository: MemoryImageRepository,
    blobs: MemoryBlobStore,
    png: bytes,
    jpeg: bytes,
    fill: Fill,
) -> None:
    slot = slot_for(service, sha256=sha256_of(png))

    with pytest.raises(InvalidInput, match="SHA-256"):
        fill(service, blobs, slot, jpeg)

    assert blobs.keys() == []
    stored = repository.get(slot.upload_id)
    assert stored is not None
    assert stored.state is ImageState.DELETED
    assert service.list_images("alice", build_list_query()).images == []


@FILLS
def test_two_slots_filled_with_the_same_bytes_make_one_image(
    service: ImageService,
    repository: MemoryImageRepository,
    blobs: MemoryBlobStore,
    png: bytes,
    fill: Fill,
) -> None:
    """Two slots asked for before either was filled (two clients at once): the first bytes make
    the image, the second are that image, and their slot is closed with nothing kept."""
    first_slot = slot_for(service, sha256=sha256_of(png))
    second_slot = slot_for(service, sha256=sha256_of(png))

    first = fill(service, blobs, first_slot, png)
    second = fill(service, blobs, second_slot, png)

    assert first is not None
    assert second == first
    assert [i.image_id for i in service.list_images("alice", build_list_query()).images] == [
        first.image_id
    ]
    assert blobs.keys() == [first.blob_key]
    closed = repository.get(second_slot.upload_id)
    assert closed is not None
    assert closed.state is ImageState.DELETED
    assert list(repository.unsettled()) == []
    third = service.create_upload(
        "alice",
        DirectUploadCommand.from_mapping({"content_type": "image/png", "sha256": first.sha256}),
    )
    assert third == Stored(first, created=False)


# --- reconcile closes slots that were never used -------------------------------------------------


def test_reconcile_closes_a_slot_only_once_it_expired_more_than_the_grace_ago(
    service: ImageService,
    clock: FakeClock,
    repository: MemoryImageRepository,
    blobs: MemoryBlobStore,
    png: bytes,
) -> None:
    slot = slot_for(service)
    clock.advance(service.url_ttl + ORPHAN_GRACE - timedelta(seconds=1))
    assert service.reconcile(ORPHAN_GRACE).deletes_finished == 0

    key = land(blobs, slot, png)  # bytes that came but were never completed
    clock.advance(timedelta(seconds=2))
    report = service.reconcile(ORPHAN_GRACE)

    assert report.deletes_finished == 1
    stored = repository.get(slot.upload_id)
    assert stored is not None
    assert stored.state is ImageState.DELETED
    assert not has_blob(blobs, key)
    assert list(repository.unsettled()) == []


@pytest.mark.parametrize("through", ["link", "object store"])
def test_reconcile_without_grace_removes_a_crashed_fill_and_leaves_the_slot_open(
    clock: FakeClock, png: bytes, through: str
) -> None:
    """The process died after a claim stored the bytes and before the write that makes the
    slot the image: nothing holds those bytes, so a reconcile past their grace removes them,
    although the slot has not expired; the slot still takes its file afterwards."""
    clock.current = datetime.now(UTC)  # the memory blob store dates its blobs by the real clock

    def fill(fault: Fault | None) -> tuple[FaultPlan, ImageService, MemoryBlobStore, str]:
        repository, blobs, plan = MemoryImageRepository(), MemoryBlobStore(), FaultPlan()
        faulty = make_service(
            clock,
            repository=FaultyImageRepository(repository, plan),
            blobs=FaultyBlobStore(blobs, plan),
        )
        upload_id = slot_for(faulty).upload_id
        key = upload_key("alice", upload_id)
        if through == "object store":
            blobs.put(key, [png])
        plan.arm(fault)
        with contextlib.suppress(Crash):
            if through == "link":
                faulty.receive_upload(upload_id, [png])
            else:
                faulty.complete_upload(key)
        return plan, make_service(clock, repository=repository, blobs=blobs), blobs, upload_id

    plan, _, _, _ = fill(None)
    activation = max(
        n for n, name in enumerate(plan.calls, start=1) if name == "repository.replace"
    )
    plan, restarted, blobs, upload_id = fill(Fault(activation, FaultKind.CRASH, FaultMoment.BEFORE))
    landed = [upload_key("alice", upload_id)] if through == "object store" else []
    assert plan.fired
    claimed = sorted(set(blobs.keys()) - set(landed))
    assert [key.rsplit("/", 1)[0] for key in claimed] == [f"images/alice/{upload_id}"]
    clock.advance(timedelta(seconds=1))

    assert restarted.reconcile(ORPHAN_GRACE).orphans_removed == 0, "younger than the grace"
    report = restarted.reconcile(timedelta(0))

    assert (report.deletes_finished, report.orphans_removed) == (0, 1)
    assert blobs.keys() == landed, "the landed upload stays for the worker's next delivery"
    image = (
        restarted.receive_upload(upload_id, [png])
        if through == "link"
        else restarted.complete_upload(landed[0])
    )
    assert image is not None
    assert blobs.keys() == [image.blob_key]
    assert restarted.reconcile(timedelta(0)).orphans_removed == 0
