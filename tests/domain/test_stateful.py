"""Random sequences of uploads, updates, deletes, reads and paged lists by a few users, checked
against a plain model of what every image should be.

The model restates the product's rules on its own (who sees what, what each filter means, the
order of a list) instead of calling ListQuery.matches, so a wrong rule in the domain shows up as
a disagreement here. The machine plays on each place of tests/support/backends.py that names a
stateful run: memory, and DynamoDB + S3 on moto in-process and on a moto server.
"""

from __future__ import annotations

import hashlib
import random
import unicodedata
import unittest
from contextlib import ExitStack
from datetime import UTC, datetime, time, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from imagecore.commands import UpdateCommand, UploadCommand
from imagecore.errors import InvalidInput, NotFound, PreconditionFailed
from imagecore.model import Image
from imagecore.query import build_list_query
from imagecore.service import ImageService
from tests.support.backends import PLACES, StatefulRun, StorePair
from tests.support.blob_bytes import has_blob
from tests.support.doubles import FakeClock, RandomIds, crockford, make_service
from tests.support.sample_images import image_bytes

USERS = ("alice", "bob", "carol")
FULLWIDTH_BEACH = "\uff42\uff45\uff41\uff43\uff48"
FULLWIDTH_SUNSET = "\uff33\uff55\uff4e\uff53\uff45\uff54"
# Raw tags as clients type them; several normalise to the same tag.
TAG_WORDS = (
    "Beach", " beach", FULLWIDTH_BEACH, "SUNSET", "sea ", "city", "night life", "Night  Life",
    "Stra\u00dfe", "STRASSE",
)  # fmt: skip
TAG_FILTERS = st.lists(st.sampled_from(TAG_WORDS), min_size=1, max_size=2)
TITLES = (
    "", "Sunset", "sunrise", "Sun", "Été indien", "ÉTÉ", "city lights", "Ωmega", FULLWIDTH_SUNSET,
    "Stra\u00dfe 5",
)  # fmt: skip
TITLE_PREFIXES = (
    "s", "Sun", "SUNS", "sunr", "été", "ÉT", "c", "ω", "z", FULLWIDTH_SUNSET[:2], "stras",
)  # fmt: skip
CONTENT_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
SIZES = ((1, 1), (3, 2), (2, 5))
IMAGES = {ct: [image_bytes(ct, w, h) for w, h in SIZES] for ct in CONTENT_TYPES}
# Midnight falls a few seconds in, so plain-date filters split the images.
CLOCK_START = datetime(2026, 11, 22, 23, 59, 57, tzinfo=UTC)
# Often no time at all between two writes, so that images share a created_at.
STEPS = st.sampled_from(
    [
        timedelta(0),
        timedelta(0),
        timedelta(microseconds=1),
        timedelta(milliseconds=400),
        timedelta(seconds=1, milliseconds=500),
    ]
)
DAYS = ("2026-11-22", "2026-11-23")
MICROSECOND = timedelta(microseconds=1)
FILTER_KINDS = ("user_id", "tags", "content_type", "title", "start", "end")


def caseless(text: str) -> str:
    """Unicode's compatibility caseless form (definition D146), composed: how tags are kept and
    how tags and title prefixes are compared."""
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFD", text).casefold())
    return unicodedata.normalize("NFKC", folded.casefold())


def normal_tag(raw: str) -> str:
    return " ".join(caseless(raw).split())


def normal_tags(raw: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(normal_tag(word) for word in raw if normal_tag(word)))


@attrs.define
class Expected:
    """What one image should be, as the model sees it."""

    image_id: str
    owner: str
    content_type: str
    data: bytes
    width: int
    height: int
    blob_key: str
    created_at: datetime
    updated_at: datetime
    title: str
    tags: tuple[str, ...]
    visibility: str
    description: str = ""
    metadata: dict[str, Any] = attrs.Factory(dict)
    version: int = 1
    deleted: bool = False

    def visible_to(self, caller: str) -> bool:
        return not self.deleted and (self.owner == caller or self.visibility == "public")


@attrs.frozen
class Filters:
    user_id: str | None
    tags: tuple[str, ...]  # raw, as typed
    content_type: str | None
    title: str | None
    start: tuple[str, datetime] | None  # (text sent, instant it means)
    end: tuple[str, datetime] | None
    order: str | None
    limit: int


class ImageServiceMachine(RuleBasedStateMachine):
    # Where the images are kept: a fresh, empty repository and blob store per example, from a
    # place of tests/support/backends.py (see machine_on, at the end).
    stores: StorePair

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[str, Expected] = {}
        self.clock = FakeClock(CLOCK_START)
        self._cleanup = ExitStack()
        self.repository, self.blobs = self._cleanup.enter_context(type(self).stores())
        self.service: ImageService

    def teardown(self) -> None:
        self._cleanup.close()

    @initialize(seed=st.integers(0, 2**32))
    def start(self, seed: int) -> None:
        # Random low bits: images created in the same instant sort by id in no upload order.
        ids = RandomIds(random.Random(seed))
        self.service = make_service(self.clock, ids, repository=self.repository, blobs=self.blobs)

    # --- helpers ------------------------------------------------------------------------------

    def pick_id(self, data: st.DataObject) -> str:
        known = sorted(self.model)
        if known and data.draw(st.integers(0, 9), label="known?") > 0:
            return data.draw(st.sampled_from(known), label="image")
        return data.draw(st.integers(1, 2**80).map(crockford), label="unknown image")

    def check_image(self, image: Image, expected: Expected) -> None:
        assert image.image_id == expected.image_id
        assert image.user_id == expected.owner
        assert image.content_type == expected.content_type
        assert (image.width, image.height) == (expected.width, expected.height)
        assert image.size == len(expected.data)
        assert image.blob_key == expected.blob_key
        assert image.created_at == expected.created_at
        assert image.updated_at == expected.updated_at
        assert image.title == expected.title
        assert image.description == expected.description
        assert image.tags == expected.tags
        assert dict(image.metadata) == expected.metadata
        assert image.visibility.value == expected.visibility
        assert image.version == expected.version

    # --- rules --------------------------------------------------------------------------------

    @rule(
        caller=st.sampled_from(USERS),
        content_type=st.sampled_from(CONTENT_TYPES),
        variant=st.integers(0, len(SIZES) - 1),
        tags=st.lists(st.sampled_from(TAG_WORDS), max_size=4),
        title=st.sampled_from(TITLES),
        visibility=st.sampled_from([None, "private", "public"]),
        step=STEPS,
    )
    def upload(
        self,
        caller: str,
        content_type: str,
        variant: int,
        tags: list[str],
        title: str,
        visibility: str | None,
        step: timedelta,
    ) -> None:
        now = self.clock.advance(step)
        data = IMAGES[content_type][variant]
        command = UploadCommand(
            chunks=[data[:7], data[7:]], title=title, tags=tags, visibility=visibility
        )
        image = self.service.store_upload(caller, command).image
        expected = Expected(
            image_id=image.image_id,
            owner=caller,
            content_type=content_type,
            data=data,
            width=SIZES[variant][0],
            height=SIZES[variant][1],
            blob_key=image.blob_key,
            created_at=now,
            updated_at=now,
            title=title,
            tags=normal_tags(tags),
            visibility=visibility or "private",
        )
        assert image.image_id not in self.model
        self.check_image(image, expected)
        self.model[image.image_id] = expected

    @rule(data=st.data(), caller=st.sampled_from(USERS), step=STEPS)
    def upload_declaring_its_hash(self, data: st.DataObject, caller: str, step: timedelta) -> None:
        """Mostly bytes the caller uploaded before, kept or deleted since: the caller's image
        with those bytes is the answer; only without one is the image new."""
        pictures = sorted(
            {
                (e.content_type, (e.width, e.height))
                for e in self.model.values()
                if e.owner == caller
            }
        )
        if pictures and data.draw(st.integers(0, 3), label="bytes uploaded before?") > 0:
            content_type, size = data.draw(st.sampled_from(pictures), label="picture")
        else:
            content_type = data.draw(st.sampled_from(CONTENT_TYPES), label="content type")
            size = data.draw(st.sampled_from(SIZES), label="size")
        variant = SIZES.index(size)
        now = self.clock.advance(step)
        picture = IMAGES[content_type][variant]
        sha256 = hashlib.sha256(picture).hexdigest()
        stored = self.service.store_upload(
            caller, UploadCommand(chunks=[picture], content_sha256=sha256)
        )
        kept = {
            e.image_id
            for e in self.model.values()
            if e.owner == caller and e.data == picture and not e.deleted
        }
        if kept:
            assert not stored.created
            assert stored.image.image_id in kept
            self.check_image(stored.image, self.model[stored.image.image_id])
            return
        assert stored.created
        expected = Expected(
            image_id=stored.image.image_id,
            owner=caller,
            content_type=content_type,
            data=picture,
            width=size[0],
            height=size[1],
            blob_key=stored.image.blob_key,
            created_at=now,
            updated_at=now,
            title="",
            tags=(),
            visibility="private",
        )
        assert expected.image_id not in self.model
        self.check_image(stored.image, expected)
        self.model[expected.image_id] = expected

    @rule(data=st.data(), caller=st.sampled_from(USERS), step=STEPS)
    def update(self, data: st.DataObject, caller: str, step: timedelta) -> None:
        image_id = self.pick_id(data)
        fields: dict[str, Any] = {}
        if data.draw(st.booleans(), label="change title?"):
            fields["title"] = data.draw(st.sampled_from(TITLES), label="title")
        if data.draw(st.booleans(), label="change tags?"):
            fields["tags"] = data.draw(st.lists(st.sampled_from(TAG_WORDS), max_size=4))
        if data.draw(st.booleans(), label="change visibility?"):
            fields["visibility"] = data.draw(st.sampled_from(["private", "public"]))
        if data.draw(st.booleans(), label="change description?"):
            fields["description"] = data.draw(st.sampled_from(["", "a\nb", "x"]))
        if data.draw(st.booleans(), label="change metadata?"):
            fields["metadata"] = data.draw(st.sampled_from([{}, {"iso": 400}, {"k": None}]))
        mode = data.draw(st.sampled_from(["unconditional", "current", "stale"]), label="mode")
        now = self.clock.advance(step)

        expected = self.model.get(image_id)
        expected_version: int | None = None
        if mode == "current" and expected is not None:
            expected_version = expected.version
        elif mode == "stale":
            known = expected.version if expected is not None else 1
            expected_version = known + data.draw(st.sampled_from([-1, 1, 5]), label="off by")

        def call() -> Image:
            command = UpdateCommand(**fields)
            return self.service.update(caller, image_id, command, expected_version=expected_version)

        if expected is None or expected.deleted or expected.owner != caller:
            with pytest.raises(NotFound):
                call()
            return
        if mode == "stale":
            with pytest.raises(PreconditionFailed):
                call()
            return
        image = call()
        if fields:
            expected.version += 1
            expected.updated_at = now
            if "title" in fields:
                expected.title = fields["title"].strip()
            if "tags" in fields:
                expected.tags = normal_tags(fields["tags"])
            if "visibility" in fields:
                expected.visibility = fields["visibility"]
            if "description" in fields:
                expected.description = fields["description"]
            if "metadata" in fields:
                expected.metadata = dict(fields["metadata"])
        self.check_image(image, expected)

    @rule(data=st.data(), caller=st.sampled_from(USERS), twice=st.booleans(), step=STEPS)
    def delete(self, data: st.DataObject, caller: str, twice: bool, step: timedelta) -> None:
        image_id = self.pick_id(data)
        self.clock.advance(step)
        expected = self.model.get(image_id)
        for _ in range(2 if twice else 1):
            if expected is None or expected.owner != caller:
                with pytest.raises(NotFound):
                    self.service.delete(caller, image_id)
            else:
                self.service.delete(caller, image_id)
                expected.deleted = True

    @rule(data=st.data(), caller=st.sampled_from(USERS))
    def read(self, data: st.DataObject, caller: str) -> None:
        image_id = self.pick_id(data)
        expected = self.model.get(image_id)
        if expected is None or not expected.visible_to(caller):
            with pytest.raises(NotFound):
                self.service.get(caller, image_id)
            with pytest.raises(NotFound):
                self.service.download(caller, image_id)
            return
        self.check_image(self.service.get(caller, image_id), expected)
        download = self.service.download(caller, image_id)
        self.check_image(download.image, expected)
        assert b"".join(download.open()) == expected.data

    # Three list rules, so that listing stays frequent when Hypothesis switches rules off at
    # random (swarm testing); the last two always use the filters with edges worth probing.
    @precondition(lambda self: bool(self.model))
    @rule(data=st.data(), caller=st.sampled_from(USERS))
    def list_all_pages(self, data: st.DataObject, caller: str) -> None:
        self.check_listing(caller, self.draw_filters(data, required=()))

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data(), caller=st.sampled_from(USERS), ends=st.sampled_from(["start", "end"]))
    def list_in_a_date_range(self, data: st.DataObject, caller: str, ends: str) -> None:
        self.check_listing(caller, self.draw_filters(data, required=(ends,)))

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data(), caller=st.sampled_from(USERS), kind=st.sampled_from(["title", "tags"]))
    def list_by_title_or_tags(self, data: st.DataObject, caller: str, kind: str) -> None:
        self.check_listing(caller, self.draw_filters(data, required=(kind,)))

    def check_listing(self, caller: str, filters: Filters) -> None:
        """Walk every page of one list and compare it with the model's own answer."""
        start = filters.start[1] if filters.start else None
        end = filters.end[1] if filters.end else None
        try:
            query = build_list_query(
                user_id=filters.user_id,
                tags=",".join(filters.tags) or None,
                content_type=filters.content_type,
                title=filters.title,
                start_date=filters.start[0] if filters.start else None,
                end_date=filters.end[0] if filters.end else None,
                order=filters.order,
                limit=str(filters.limit),
            )
        except InvalidInput:
            assert start is not None
            assert end is not None
            assert start > end
            return
        assert start is None or end is None or start <= end

        wanted_tags = {normal_tag(word) for word in filters.tags}
        prefix = caseless(filters.title) if filters.title else None
        matching = [
            e
            for e in self.model.values()
            if e.visible_to(caller)
            and (filters.user_id is None or e.owner == filters.user_id)
            and wanted_tags <= set(e.tags)
            and (filters.content_type is None or e.content_type == filters.content_type)
            and (prefix is None or caseless(e.title).startswith(prefix))
            and (start is None or e.created_at >= start)
            and (end is None or e.created_at <= end)
        ]
        matching.sort(key=lambda e: (e.created_at, e.image_id), reverse=filters.order != "asc")

        listed: list[Image] = []
        cursor = None
        for page_number in range(len(self.model) + 2):
            page = self.service.list_images(caller, query, cursor)
            assert len(page.images) <= filters.limit
            assert page.images or page_number == 0, "a cursor led to an empty page"
            listed += page.images
            if page.next_cursor is None:
                break
            assert len(page.images) == filters.limit
            cursor = page.next_cursor
        else:
            raise AssertionError("paging never ended")

        assert [image.image_id for image in listed] == [e.image_id for e in matching]
        for image, expected in zip(listed, matching, strict=True):
            self.check_image(image, expected)

    def draw_filters(self, data: st.DataObject, required: tuple[str, ...]) -> Filters:
        instants = sorted({e.created_at for e in self.model.values()})
        moments: list[tuple[str, datetime]] = []
        for instant in instants:
            # The exact instant twice: both ends of the range are inclusive, the edge matters.
            for nudge in (timedelta(0), timedelta(0), -timedelta(microseconds=1), MICROSECOND):
                moment = instant + nudge
                moments.append((moment.isoformat().replace("+00:00", "Z"), moment))
        for day in DAYS:
            midnight = datetime.combine(datetime.fromisoformat(day).date(), time.min, UTC)
            moments.append((day, midnight))
        # A few filters at a time, so that most lists have something to page through.
        kinds = set(required) | data.draw(
            st.sets(st.sampled_from(FILTER_KINDS), max_size=3 - len(required)), label="filters"
        )

        def maybe(kind: str, strategy: st.SearchStrategy[Any]) -> Any:
            return data.draw(strategy, label=kind) if kind in kinds else None

        start = maybe("start", st.sampled_from(moments))
        end = maybe("end", st.sampled_from(moments))
        if end is not None and len(end[0]) == 10:
            # A plain end date covers the whole of that day.
            end = (end[0], end[1] + timedelta(days=1) - MICROSECOND)
        return Filters(
            user_id=maybe("user_id", st.sampled_from(USERS)),
            tags=tuple(maybe("tags", TAG_FILTERS) or ()),
            content_type=maybe("content_type", st.sampled_from(CONTENT_TYPES)),
            title=maybe("title", st.sampled_from(TITLE_PREFIXES)),
            start=start,
            end=end,
            order=data.draw(st.sampled_from([None, "asc", "desc"]), label="order"),
            limit=data.draw(st.integers(1, 7), label="limit"),
        )

    @precondition(lambda self: bool(self.model))
    @rule(step=STEPS)
    def time_passes(self, step: timedelta) -> None:
        self.clock.advance(step)

    # --- invariants ---------------------------------------------------------------------------

    @invariant()
    def every_visible_image_has_its_bytes_and_deleted_ones_have_none(self) -> None:
        for expected in self.model.values():
            if expected.deleted:
                assert not has_blob(self.blobs, expected.blob_key)
            else:
                assert b"".join(self.blobs.open(expected.blob_key)) == expected.data
        live = sorted(e.blob_key for e in self.model.values() if not e.deleted)
        assert self.blobs.keys() == live, "a blob nothing refers to was left behind"


def machine_on(run: StatefulRun) -> type[unittest.TestCase]:
    """The TestCase of the machine over the stores of ``run``."""
    name = run.test_name.removeprefix("Test") + "Machine"
    machine = type(name, (ImageServiceMachine,), {"stores": staticmethod(run.stores)})
    if run.max_examples is not None:
        # About 10 s on one core for the 200 examples on memory: enough that each of a dozen
        # deliberately planted rule mistakes (a visibility leak, an exclusive date bound, a
        # case-sensitive prefix, a missing id tie-break, a repeated item at a page edge, a kept
        # blob ...) was caught in every trial run.
        machine.TestCase.settings = settings(
            max_examples=run.max_examples,
            stateful_step_count=50,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
    return machine.TestCase


# One TestCase (TestImageService, TestImageServiceOnDynamoDbAndS3InProcess ...) per place of
# tests/support/backends.py that names a stateful run.
for _place in PLACES:
    if _place.stateful is not None:
        globals()[_place.stateful.test_name] = machine_on(_place.stateful)
