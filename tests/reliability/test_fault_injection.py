"""Crash consistency of the use cases: one fault anywhere, and nothing is lost or left behind.

Each test plays use cases through a service whose stateful ports are wrapped by a FaultPlan (see
faults.py for the fault model), lets one fault happen at a chosen call, then looks at the real
stores with nothing wrapped:

- no image anyone can see lacks its bytes (every ACTIVE image, by get and by list, has its blob,
  of the recorded size and SHA-256), and the lists agree with the images;
- every promise the service made before the fault still holds (an upload, an update, a delete,
  a slot or a ready thumbnail the client was told of);
- after a reconcile past the grace period no delete is left unfinished, no upload slot open and
  no bytes stored that an ACTIVE image does not hold; a second reconcile finds nothing to do.

Two drivers: every call position of each use case, one by one, with each kind of fault
(deterministic), and Hypothesis scenarios of several use cases with the fault anywhere in them.
Both run on every backend of tests/support/backends.py: memory, filesystem + SQLite, and
DynamoDB + S3 on a moto server.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import attrs
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from adapters.pillow import PillowInspector
from adapters.thumbnails import VipsRenderer
from adapters.upload_links import SignedUploadLinks
from imagecore.blob_keys import is_under, rendition_key, upload_key
from imagecore.commands import DirectUploadCommand, UpdateCommand, UploadCommand
from imagecore.cursor import CursorCodec
from imagecore.errors import ImageCoreError
from imagecore.lifecycle import ORPHAN_GRACE
from imagecore.model import THUMBNAIL_JOB, Image, ImageState, Job, ThumbnailStatus
from imagecore.query import build_list_query
from imagecore.results import UploadSlot
from imagecore.service import ImageService
from tests.reliability.faults import (
    FAULT_VARIANTS,
    Crash,
    Fault,
    FaultPlan,
    FaultyBlobStore,
    FaultyImageRepository,
    FaultyJobQueue,
    FaultyRenderer,
    FaultyUploadTargets,
    InjectedFailure,
)
from tests.support.backends import BACKENDS, StoreFactory, Stores
from tests.support.blob_bytes import has_blob
from tests.support.doubles import SECRET, CountingIds, FakeClock, RecordingJobs, chunked, crockford
from tests.support.sample_images import image_bytes

OWNERS = ("alice", "bob")
PICTURES = (
    image_bytes("image/png", 3, 2),
    image_bytes("image/jpeg", 5, 7),
    image_bytes("image/gif", 2, 2),
    b"not an image at all",
)
NOT_AN_IMAGE = len(PICTURES) - 1
# Small chunks, so that a blob store pulls several of them: each pull is a fault position.
CHUNK_BYTES = 64
EVERYTHING = build_list_query(limit=100)
TAGGED_SEA = build_list_query(tags="sea", limit=100)
LIST_LIMIT = 1000

# --- the stores under test: those of every backend in tests/support/backends.py ---------------

STORE_PAIRS = {entry.fault_injection.test_id: entry.fault_injection.stores for entry in BACKENDS}

# --- the world a scenario plays in ------------------------------------------------------------


class RecordingIds(CountingIds):
    """Predictable ids that are remembered, so the checks can look up every image ever made."""

    def __init__(self) -> None:
        super().__init__()
        self.given: list[str] = []

    def new_id(self, now: datetime) -> str:
        image_id = super().new_id(now)
        self.given.append(image_id)
        return image_id


@attrs.define
class Client:
    """What the service told its clients. Each of these promises must survive any later fault."""

    told_stored: dict[str, Image] = attrs.Factory(dict)
    """Images the client was told exist, as last told."""
    told_deleted: set[str] = attrs.Factory(set)
    slots: list[tuple[str, str]] = attrs.Factory(list)
    """(owner, upload id) of each direct-upload slot handed out."""
    ready_thumbnails: set[str] = attrs.Factory(set)
    in_doubt: set[str] = attrs.Factory(set)
    """Images a change was asked of that was not answered: they may be either way."""
    known: list[str] = attrs.Factory(list)
    """Every image id the client was ever given, in order: what later steps refer to."""
    owners: dict[str, str] = attrs.Factory(dict)

    def stored(self, image: Image) -> None:
        self.told_stored[image.image_id] = image
        self.in_doubt.discard(image.image_id)
        self.owners[image.image_id] = image.user_id
        if image.image_id not in self.known:
            self.known.append(image.image_id)

    def deleted(self, image_id: str) -> None:
        self.told_stored.pop(image_id, None)
        self.in_doubt.discard(image_id)
        self.told_deleted.add(image_id)

    def image(self, ref: int) -> str | None:
        return self.known[ref % len(self.known)] if self.known else None

    def slot(self, ref: int) -> tuple[str, str] | None:
        return self.slots[ref % len(self.slots)] if self.slots else None

    def owner_of(self, image_id: str) -> str:
        return self.owners[image_id]


@attrs.define
class World:
    """Real stores, a service over faulty wrappers of them, and what its client was told."""

    stores: Stores
    plan: FaultPlan
    clock: FakeClock
    ids: RecordingIds
    jobs: RecordingJobs
    service: ImageService
    client: Client

    @classmethod
    def over(cls, stores: Stores) -> World:
        plan = FaultPlan()
        clock = FakeClock()
        ids = RecordingIds()
        jobs = RecordingJobs()
        service = ImageService(
            repository=FaultyImageRepository(stores.repository, plan),
            blobs=FaultyBlobStore(stores.blobs, plan),
            inspector=PillowInspector(),
            clock=clock,
            ids=ids,
            cursors=CursorCodec(secret=SECRET, clock=clock),
            jobs=FaultyJobQueue(jobs, plan),
            renderer=FaultyRenderer(VipsRenderer(), plan),
            upload_targets=FaultyUploadTargets(SignedUploadLinks(SECRET, clock.now), plan),
        )
        return cls(stores, plan, clock, ids, jobs, service, Client())

    def restarted_service(self) -> ImageService:
        """The service of a new process, over the real stores, with no fault to come."""
        return attrs.evolve(
            self.service,
            repository=self.stores.repository,
            blobs=self.stores.blobs,
            jobs=None,
            renderer=None,
            upload_targets=None,
        )

    def past_every_grace_period(self) -> None:
        """Move the clock past the expiry of every slot and the grace of every blob stored so
        far. Blob stores date their blobs by the real clock, hence the real now."""
        latest = max(self.clock.now(), datetime.now(UTC))
        self.clock.current = latest + self.service.url_ttl + ORPHAN_GRACE + timedelta(minutes=1)


# --- the use cases, as steps of a scenario ----------------------------------------------------


class Step(Protocol):
    def run(self, world: World) -> None:
        """Play the use case; tell the client what the service answered."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@attrs.frozen
class Upload:
    owner: str
    picture: int
    declare_sha256: bool

    def run(self, world: World) -> None:
        data = PICTURES[self.picture]
        command = UploadCommand(
            chunks=chunked(data, CHUNK_BYTES),
            title="Beach",
            tags=["sea"],
            content_sha256=_sha256(data) if self.declare_sha256 else None,
        )
        world.client.stored(world.service.store_upload(self.owner, command).image)


@attrs.frozen
class UploadLosingTheRace:
    """An upload declaring its hash, while another process's upload of the same bytes (a
    service of its own over the same stores, with no fault in it) commits after this one looked
    for the image and before it stores its own: this one answers with the other's image."""

    owner: str
    picture: int

    def run(self, world: World) -> None:
        data = PICTURES[self.picture]
        sha256 = _sha256(data)

        def racing_client() -> Iterator[bytes]:
            rival = UploadCommand(chunks=[data], content_sha256=sha256)
            world.client.stored(world.restarted_service().store_upload(self.owner, rival).image)
            yield from chunked(data, CHUNK_BYTES)

        command = UploadCommand(
            chunks=racing_client(), title="Beach", tags=["sea"], content_sha256=sha256
        )
        world.client.stored(world.service.store_upload(self.owner, command).image)


@attrs.frozen
class CreateSlot:
    owner: str

    def run(self, world: World) -> None:
        command = DirectUploadCommand(content_type="image/png", title="Dune", tags=["sand"])
        slot = world.service.create_upload(self.owner, command)
        assert isinstance(slot, UploadSlot), slot
        world.client.slots.append((self.owner, slot.upload_id))


@attrs.frozen
class ReceiveUpload:
    """The bytes of a slot sent to the embedded server's own upload link."""

    slot: int
    picture: int

    def run(self, world: World) -> None:
        slot = world.client.slot(self.slot)
        if slot is None:
            return
        _, upload_id = slot
        data = PICTURES[self.picture]
        world.client.stored(world.service.receive_upload(upload_id, chunked(data, CHUNK_BYTES)))


@attrs.frozen
class CompleteUpload:
    """The bytes of a slot posted straight to the object store, then the worker's completion."""

    slot: int
    picture: int

    def run(self, world: World) -> None:
        slot = world.client.slot(self.slot)
        if slot is None:
            return
        key = upload_key(*slot)
        world.stores.blobs.put(key, [PICTURES[self.picture]])  # the client's POST, not ours
        image = world.service.complete_upload(key)
        if image is not None:
            world.client.stored(image)


@attrs.frozen
class Update:
    target: int
    conditional: bool
    title: str

    def run(self, world: World) -> None:
        client = world.client
        image_id = client.image(self.target)
        if image_id is None:
            return
        told = client.told_stored.get(image_id)
        expected_version = told.version if self.conditional and told is not None else None
        client.in_doubt.add(image_id)
        updated = world.service.update(
            client.owner_of(image_id),
            image_id,
            UpdateCommand(title=self.title, tags=["sea", self.title]),
            expected_version=expected_version,
        )
        client.stored(updated)


@attrs.frozen
class Delete:
    target: int

    def run(self, world: World) -> None:
        client = world.client
        image_id = client.image(self.target)
        if image_id is None:
            return
        client.in_doubt.add(image_id)
        world.service.delete(client.owner_of(image_id), image_id)
        client.deleted(image_id)


@attrs.frozen
class MakeThumbnail:
    """The worker's part: a queued job, or a thumbnail job for an image, through run_job."""

    target: int
    final_attempt: bool
    via_job: bool

    def run(self, world: World) -> None:
        if self.via_job:
            if world.jobs.jobs:
                job = world.jobs.jobs[self.target % len(world.jobs.jobs)]
                world.service.run_job(job, self.final_attempt)
            return
        image_id = world.client.image(self.target)
        if image_id is None:
            return
        status = world.service.run_job(
            Job(THUMBNAIL_JOB, image_id), final_attempt=self.final_attempt
        )
        if status is ThumbnailStatus.READY:
            world.client.ready_thumbnails.add(image_id)


@attrs.frozen
class Reconcile:
    def run(self, world: World) -> None:
        world.past_every_grace_period()
        world.service.reconcile(ORPHAN_GRACE)


@attrs.frozen
class LeftoversOfEarlierCrashes:
    """What crashes leave for reconcile, written straight to the stores: a delete stopped
    after its tombstone, bytes whose metadata never came, and a direct upload never completed."""

    target: int

    def run(self, world: World) -> None:
        repository, blobs = world.stores.repository, world.stores.blobs
        image_id = world.client.image(self.target)
        if image_id is not None:
            image = repository.get(image_id)
            assert image is not None
            tombstone = attrs.evolve(image, state=ImageState.DELETING, version=image.version + 1)
            repository.replace(tombstone, image.version)
            world.client.in_doubt.add(image_id)
        blobs.put(f"images/alice/{crockford(1 << 100)}", [PICTURES[0]])
        blobs.put(upload_key("bob", crockford(2 << 100)), [PICTURES[1]])


def play(world: World, steps: Sequence[Step]) -> Crash | None:
    """Play the steps one after another, as one process would: an error answers its step and
    the next one goes on; a crash ends them all."""
    for step in steps:
        world.clock.advance(timedelta(seconds=1))
        try:
            step.run(world)
        except Crash as crash:
            return crash
        except (InjectedFailure, ImageCoreError):
            continue  # the client got an error: it was promised nothing
    return None


# --- the checks -------------------------------------------------------------------------------


def _client_view(image: Image) -> dict[str, Any]:
    """What a client was told of an image that only background work may change later."""
    told = attrs.asdict(image, recurse=False)
    for moved_by_background_work in (
        "version",
        "edit_version",
        "thumbnail_status",
        "renditions",
        "placeholder",
    ):
        del told[moved_by_background_work]
    told["metadata"] = dict(image.metadata)
    return told


def _images_by_id(world: World) -> dict[str, Image]:
    """Every image ever made, as the repository has it now, in whatever state."""
    found = (world.stores.repository.get(image_id) for image_id in world.ids.given)
    return {image.image_id: image for image in found if image is not None}


def check_every_visible_image_has_its_bytes(world: World, images: dict[str, Image]) -> None:
    repository, blobs = world.stores.repository, world.stores.blobs
    active = {image_id: image for image_id, image in images.items() if image.is_active}
    for caller in OWNERS:
        for query in (EVERYTHING, TAGGED_SEA):
            listed = repository.list(query, caller, None, LIST_LIMIT).images
            expected = {image.image_id for image in active.values() if query.matches(image, caller)}
            assert {image.image_id for image in listed} == expected, (
                f"the list of {caller} with tags {query.tags} disagrees with the images"
            )
    for image in active.values():
        try:
            data = b"".join(blobs.open(image.blob_key))
        except KeyError:
            raise AssertionError(
                f"image {image.image_id} is visible but its bytes ({image.blob_key}) are gone"
            ) from None
        assert (len(data), _sha256(data)) == (image.size, image.sha256), (
            f"image {image.image_id} is visible with other bytes than it records"
        )


def check_every_promise_kept(world: World, images: dict[str, Image]) -> None:
    client = world.client
    for image_id, told in client.told_stored.items():
        if image_id in client.in_doubt:
            continue
        stored = images.get(image_id)
        assert stored is not None, f"image {image_id}, acknowledged, is gone"
        assert stored.is_active, f"image {image_id}, acknowledged, is {stored.state}"
        assert _client_view(stored) == _client_view(told), f"image {image_id} lost a change"
        assert stored.version >= told.version
        if image_id in client.ready_thumbnails:
            assert stored.thumbnail_status is ThumbnailStatus.READY
            assert stored.renditions, f"{image_id} is ready without its renditions"
            for rendition in stored.renditions:
                for content_type in rendition.content_types:
                    key = rendition_key(stored.blob_key, rendition, content_type)
                    assert has_blob(world.stores.blobs, key), (
                        f"{key}, made for {image_id} acknowledged as ready, is gone"
                    )
    for image_id in client.told_deleted:
        stored = images.get(image_id)
        assert stored is None or not stored.is_active, f"deleted image {image_id} came back"
    for _, upload_id in client.slots:
        assert upload_id in images, f"the slot {upload_id} given out is gone"


def check_reconcile_leaves_nothing_behind(world: World) -> None:
    repository, blobs = world.stores.repository, world.stores.blobs
    service = world.restarted_service()
    world.past_every_grace_period()
    service.reconcile(ORPHAN_GRACE)

    unsettled = [(image.image_id, image.state) for image in repository.unsettled()]
    assert unsettled == [], "reconcile left deletes unfinished or expired slots open"
    images = _images_by_id(world)
    for image in images.values():
        assert image.state in (ImageState.ACTIVE, ImageState.DELETED)
    active = [image for image in images.values() if image.is_active]
    # What is made from an original sits under its key; what a job wrote before it failed,
    # not yet in the record, is the next attempt's to write again.
    stored = blobs.keys()
    orphans = sorted(
        key for key in stored if not any(is_under(key, image.blob_key) for image in active)
    )
    assert orphans == [], "bytes no active image holds survived reconcile"
    check_every_visible_image_has_its_bytes(world, images)
    check_every_promise_kept(world, images)

    again = service.reconcile(ORPHAN_GRACE)
    assert (again.deletes_finished, again.orphans_removed) == (0, 0), (
        f"a second reconcile still found work: {again}"
    )


def check_after_fault(world: World) -> None:
    """Every check, on the stores as the fault left them and then after reconcile."""
    try:
        images = _images_by_id(world)
        check_every_visible_image_has_its_bytes(world, images)
        check_every_promise_kept(world, images)
        check_reconcile_leaves_nothing_behind(world)
    except AssertionError as error:
        calls = ", ".join(f"{n}:{name}" for n, name in enumerate(world.plan.calls, start=1))
        error.add_note(f"fault: {world.plan.fault}; calls: {calls}")
        raise


# --- every position of every use case ---------------------------------------------------------


@attrs.frozen
class UseCase:
    """One use case (``action``) after a fault-free ``setup`` that gives it something to do."""

    action: Step
    setup: tuple[Step, ...] = ()


UPLOADED = Upload("alice", 0, declare_sha256=False)
SLOT = CreateSlot("alice")
THUMBNAIL_MADE = MakeThumbnail(0, final_attempt=True, via_job=False)

USE_CASES: dict[str, UseCase] = {
    "store_upload": UseCase(UPLOADED),
    "store_upload with a new content_sha256": UseCase(Upload("alice", 1, declare_sha256=True)),
    "store_upload of a duplicate": UseCase(
        Upload("alice", 0, declare_sha256=True), setup=(UPLOADED,)
    ),
    "store_upload losing the race to an identical one": UseCase(UploadLosingTheRace("alice", 1)),
    "create_upload": UseCase(SLOT),
    "receive_upload": UseCase(ReceiveUpload(0, 1), setup=(SLOT,)),
    "receive_upload of a refused file": UseCase(ReceiveUpload(0, NOT_AN_IMAGE), setup=(SLOT,)),
    "complete_upload": UseCase(CompleteUpload(0, 2), setup=(SLOT,)),
    "complete_upload of a refused file": UseCase(CompleteUpload(0, NOT_AN_IMAGE), setup=(SLOT,)),
    "complete_upload delivered again": UseCase(
        CompleteUpload(0, 2), setup=(SLOT, CompleteUpload(0, 2))
    ),
    "update": UseCase(Update(0, conditional=False, title="Dune"), setup=(UPLOADED,)),
    "update with an expected version": UseCase(
        Update(0, conditional=True, title="Dune"), setup=(UPLOADED, THUMBNAIL_MADE)
    ),
    "delete": UseCase(Delete(0), setup=(UPLOADED, THUMBNAIL_MADE)),
    "delete again": UseCase(Delete(0), setup=(UPLOADED, Delete(0))),
    "make_thumbnail": UseCase(THUMBNAIL_MADE, setup=(UPLOADED,)),
    "run_job, not the final attempt": UseCase(
        MakeThumbnail(0, final_attempt=False, via_job=True), setup=(UPLOADED,)
    ),
    "reconcile": UseCase(
        Reconcile(),
        setup=(
            UPLOADED,
            Upload("bob", 1, declare_sha256=False),
            THUMBNAIL_MADE,
            CreateSlot("bob"),
            LeftoversOfEarlierCrashes(1),
        ),
    ),
}

# How each backend runs (every kind of fault at each position, or the kinds taking turns; the
# fewest positions the enumeration may find) is its entry's, in tests/support/backends.py.
EVERY_VARIANT_AT_EACH_POSITION = {
    entry.fault_injection.test_id: entry.fault_injection.every_variant_at_each_position
    for entry in BACKENDS
}
MIN_POSITIONS = {
    entry.fault_injection.test_id: entry.fault_injection.min_positions for entry in BACKENDS
}


def play_use_case(fresh_stores: StoreFactory, use_case: UseCase, fault: Fault | None) -> World:
    world = World.over(fresh_stores())
    assert play(world, use_case.setup) is None
    world.plan.arm(fault)
    play(world, [use_case.action])
    return world


def exercise_every_position(
    fresh_stores: StoreFactory, name: str, use_case: UseCase, every_variant: bool
) -> int:
    """Inject a fault at each call the use case makes, of each kind or of the kinds in turn;
    the number of calls."""
    positions = count_positions(fresh_stores, use_case)
    assert positions > 0, f"{name} made no call to fault"
    for position in range(1, positions + 1):
        in_turn = FAULT_VARIANTS[(position - 1) % len(FAULT_VARIANTS)]
        for kind, moment in FAULT_VARIANTS if every_variant else (in_turn,):
            fault = Fault(position, kind, moment)
            world = play_use_case(fresh_stores, use_case, fault)
            assert world.plan.fired, f"{name}: the {fault} never came; the calls changed"
            try:
                check_after_fault(world)
            except AssertionError as error:
                error.add_note(f"use case: {name}")
                raise
    return positions


def count_positions(fresh_stores: StoreFactory, use_case: UseCase) -> int:
    return play_use_case(fresh_stores, use_case, None).plan.call_count


@pytest.mark.parametrize("pair", list(STORE_PAIRS))
def test_the_enumeration_covers_every_call_of_every_use_case(
    pair: str, record_property: Callable[[str, object], None]
) -> None:
    """How many fault positions the test below exercises on this pair, in total."""
    with STORE_PAIRS[pair]() as fresh_stores:
        counts = {name: count_positions(fresh_stores, case) for name, case in USE_CASES.items()}
    total = sum(counts.values())
    faults = total * len(FAULT_VARIANTS) if EVERY_VARIANT_AT_EACH_POSITION[pair] else total
    record_property("fault_positions_exercised", total)
    record_property("faults_injected", faults)
    print(f"\n{pair}: fault positions exercised: {total} ({faults} faults injected)")
    for name, count in counts.items():
        print(f"  {count:4d}  {name}")
    assert all(counts.values()), "a use case made no call to fault"
    assert total >= MIN_POSITIONS[pair]


# One test per use case and pair, so that pytest-xdist spreads the slow moto server ones.
@pytest.mark.parametrize("use_case", list(USE_CASES))
@pytest.mark.parametrize("pair", list(STORE_PAIRS))
def test_each_fault_at_each_call_of_the_use_case_loses_and_leaves_nothing(
    pair: str, use_case: str
) -> None:
    with STORE_PAIRS[pair]() as fresh_stores:
        exercise_every_position(
            fresh_stores, use_case, USE_CASES[use_case], EVERY_VARIANT_AT_EACH_POSITION[pair]
        )


# --- random scenarios -------------------------------------------------------------------------

REFS = st.integers(0, 7)
ANY_PICTURE = st.integers(0, len(PICTURES) - 1)
STEPS: st.SearchStrategy[Step] = st.one_of(
    st.builds(Upload, st.sampled_from(OWNERS), ANY_PICTURE, st.booleans()),
    st.builds(UploadLosingTheRace, st.sampled_from(OWNERS), ANY_PICTURE),
    st.builds(CreateSlot, st.sampled_from(OWNERS)),
    st.builds(ReceiveUpload, REFS, ANY_PICTURE),
    st.builds(CompleteUpload, REFS, ANY_PICTURE),
    st.builds(Update, REFS, st.booleans(), st.sampled_from(["Dune", "Sea", ""])),
    st.builds(Delete, REFS),
    st.builds(MakeThumbnail, REFS, st.booleans(), st.booleans()),
    st.just(Reconcile()),
)
SCENARIOS = st.lists(STEPS, min_size=1, max_size=6)

EXAMPLES = {
    entry.fault_injection.test_id: entry.fault_injection.scenario_examples for entry in BACKENDS
}


def play_scenario(fresh_stores: StoreFactory, steps: Sequence[Step], fault: Fault | None) -> World:
    world = World.over(fresh_stores())
    world.plan.arm(fault)
    play(world, steps)
    return world


@pytest.mark.parametrize("pair", list(STORE_PAIRS))
def test_any_fault_anywhere_in_a_scenario_loses_and_leaves_nothing(pair: str) -> None:
    with STORE_PAIRS[pair]() as fresh_stores:

        @settings(
            max_examples=EXAMPLES[pair],
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        @given(steps=SCENARIOS, data=st.data())
        def scenario(steps: list[Step], data: st.DataObject) -> None:
            positions = play_scenario(fresh_stores, steps, None).plan.call_count
            assume(positions > 0)
            position = data.draw(st.integers(1, positions), label="position")
            kind, moment = data.draw(st.sampled_from(FAULT_VARIANTS), label="fault")
            world = play_scenario(fresh_stores, steps, Fault(position, kind, moment))
            assert world.plan.fired
            check_after_fault(world)

        scenario()
