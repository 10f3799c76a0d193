"""The image model, its entity tags, and the one converter that stores and shows it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagecore.convert import (
    format_instant,
    image_from_record,
    image_to_record,
    image_to_resource,
    parse_instant,
)
from imagecore.model import (
    THUMBNAIL_JOB,
    BytePatch,
    ByteRange,
    Image,
    ImageState,
    Job,
    Placeholder,
    Rendition,
    ThumbnailStatus,
    Visibility,
    version_from_etag,
)
from tests.support.doubles import CROCKFORD, make_image

# Instants a clock of this century can give, in any offset.
instants = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2199, 12, 31),
    timezones=st.builds(
        timezone, st.integers(-14 * 60, 14 * 60).map(lambda m: timedelta(minutes=m))
    ),
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
)
images = st.builds(
    make_image,
    image_id=st.text(alphabet=CROCKFORD, min_size=26, max_size=26),
    user_id=st.sampled_from(["alice", "auth0|42"]),
    filename=st.text(max_size=20),
    created_at=instants,
    updated_at=instants,
    title=st.text(max_size=20),
    tags=st.lists(st.text(min_size=1, max_size=5), max_size=3).map(tuple),
    metadata=st.dictionaries(st.text(min_size=1, max_size=5), scalars, max_size=4),
    visibility=st.sampled_from(Visibility),
    version=st.integers(1, 10**6),
    thumbnail_status=st.sampled_from(ThumbnailStatus),
    state=st.sampled_from(ImageState),
    claims_content=st.booleans(),
    renditions=st.lists(
        st.builds(
            Rendition,
            name=st.sampled_from(["thumbnail", "preview"]),
            width=st.integers(1, 4096),
            height=st.integers(1, 4096),
            content_types=st.sampled_from([("image/webp", "image/jpeg"), ("image/jpeg",)]),
        ),
        max_size=2,
    ).map(tuple),
    placeholder=st.none()
    | st.builds(
        Placeholder,
        blurhash=st.text(max_size=30),
        dominant_color=st.just("#1e6f8a"),
        aspect_ratio=st.floats(0.01, 100),
    ),
    share_location=st.booleans(),
    location_patches=st.lists(
        st.builds(BytePatch, offset=st.integers(0, 2**40), data=st.binary(max_size=16)),
        max_size=3,
    ).map(tuple),
)


@given(images)
def test_a_stored_record_reads_back_as_the_same_image(image: Image) -> None:
    record = image_to_record(image)
    assert image_from_record(json.loads(json.dumps(record))) == image


@given(images)
def test_the_resource_is_plain_json_without_internal_fields(image: Image) -> None:
    resource = image_to_resource(image)
    assert "blob_key" not in resource
    assert "state" not in resource
    assert "claims_content" not in resource
    assert "location_patches" not in resource
    assert json.loads(json.dumps(resource)) == resource
    assert resource["visibility"] in ("private", "public")
    assert resource["tags"] == list(image.tags)
    assert resource["created_at"].endswith("Z")


def test_the_resource_has_the_documented_fields() -> None:
    resource = image_to_resource(make_image(tags=("beach",), metadata={"iso": 400}))
    assert set(resource) == {
        "image_id",
        "user_id",
        "filename",
        "content_type",
        "size",
        "width",
        "height",
        "sha256",
        "title",
        "description",
        "tags",
        "metadata",
        "visibility",
        "created_at",
        "updated_at",
        "version",
        "thumbnail_status",
        "renditions",
        "placeholder",
        "share_location",
    }
    assert resource["created_at"] == "2026-11-22T10:30:00.000000Z"
    assert resource["thumbnail_status"] == "pending"


@given(instants, instants)
def test_instants_as_text_sort_like_the_instants(first: datetime, second: datetime) -> None:
    assert (format_instant(first) < format_instant(second)) == (first < second)
    assert parse_instant(format_instant(first)) == first


def test_an_instant_is_written_in_utc_with_microseconds() -> None:
    moment = datetime(2026, 11, 22, 12, 30, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    assert format_instant(moment) == "2026-11-22T10:30:00.000005Z"
    assert parse_instant("2026-11-22T10:30:00.000005Z") == moment
    assert parse_instant("2026-11-22T10:30:00.000005Z").tzinfo == UTC


@given(st.integers(1, 10**17))
def test_the_etag_names_the_version(version: int) -> None:
    image = make_image(version=version)
    assert version_from_etag(image.etag) == version
    assert version_from_etag(f"W/{image.etag}") == version
    assert version_from_etag(str(version)) == version


def test_a_star_if_match_names_no_version() -> None:
    assert version_from_etag("*") is None
    assert version_from_etag(" * ") is None


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "v",
        '""',
        "abc",
        "v-1",
        "1.5",
        "9" * 19,
        "0x10",
        '"v3',
        'v3"',
        '"3"',
        "\u0661\u0662",
        "v3",
    ],
)
def test_an_if_match_that_names_no_version_is_a_value_error(bad: str) -> None:
    with pytest.raises(ValueError):
        version_from_etag(bad)


def test_the_content_etag_is_the_sha256_and_changes_with_the_bytes_only() -> None:
    first = make_image(sha256="ab" * 32, version=1)
    assert first.content_etag == f'"{"ab" * 32}"'
    assert make_image(sha256="ab" * 32, version=9).content_etag == first.content_etag
    assert make_image(sha256="cd" * 32).content_etag != first.content_etag


def test_only_an_active_image_is_visible_and_only_to_its_owner_unless_public() -> None:
    assert make_image(user_id="alice").is_visible_to("alice")
    assert not make_image(user_id="alice").is_visible_to("bob")
    assert make_image(user_id="alice", visibility=Visibility.PUBLIC).is_visible_to("bob")
    for state in (ImageState.DELETING, ImageState.DELETED):
        assert not make_image(state=state).is_visible_to("alice")


def test_a_byte_range_is_inclusive() -> None:
    assert ByteRange(0, 0).length == 1
    assert ByteRange(10, 19).length == 10


def test_image_metadata_cannot_be_changed_in_place() -> None:
    image = make_image(metadata={"iso": 400})
    with pytest.raises(TypeError):
        image.metadata["iso"] = 800  # type: ignore[index]


def test_an_active_image_whose_thumbnail_is_pending_needs_its_thumbnail_job() -> None:
    image = make_image(user_id="bob")

    assert image.outstanding_jobs == (Job(THUMBNAIL_JOB, image.image_id, user_id="bob"),)


@pytest.mark.parametrize(
    "image",
    [
        make_image(thumbnail_status=ThumbnailStatus.READY),
        make_image(thumbnail_status=ThumbnailStatus.FAILED),
        *(make_image(state=state) for state in ImageState if state is not ImageState.ACTIVE),
    ],
    ids=lambda image: f"{image.state}-{image.thumbnail_status}",
)
def test_an_image_with_a_settled_thumbnail_or_not_active_needs_no_job(image: Image) -> None:
    assert image.outstanding_jobs == ()
