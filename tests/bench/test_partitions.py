"""The capacity model of bench/partitions.py (docs/capacity.md): its arithmetic on cases small
enough to check by hand, its agreement with what the repository writes, and the property of
the layout it exists to show: 2,000 public uploads/s keep every partition under DynamoDB's
per-partition write limit."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta

from bench.partitions import (
    BASE,
    WCU_LIMIT,
    MeteredDynamoDb,
    Requests,
    item_bytes,
    replay_writes,
    repository,
    terraform_layout,
    units,
    write_change,
)

from adapters.dynamodb.items import DEFAULT_PUBLIC_SHARDS
from imagecore.model import Image, ThumbnailStatus, Visibility

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
SHA = "ab" * 32


def public_image(**changes: object) -> Image:
    fields: dict[str, object] = {
        "image_id": "01JE0000000000000000000001",
        "user_id": "alice",
        "filename": "IMG_1234.JPG",
        "content_type": "image/jpeg",
        "size": 2_000_000,
        "width": 4032,
        "height": 3024,
        "sha256": SHA,
        "blob_key": "images/alice/01JE0000000000000000000001",
        "created_at": NOW,
        "updated_at": NOW,
        "title": "IMG_1234",
        "tags": ("travel", "beach"),
        "metadata": {"camera_model": "Pixel 8"},
        "visibility": Visibility.PUBLIC,
    }
    fields.update(changes)
    return Image(**fields)  # type: ignore[arg-type]


def test_sizes_follow_dynamodbs_rules() -> None:
    item = {"pk": {"S": "IMG#1"}, "n": {"N": "123.45"}, "tags": {"L": [{"S": "a"}]}}
    # pk: 2 + 5; n: 1 + (5 significant digits: 3 bytes, plus 1); tags: 4 + (3 + 1 + 1)
    assert item_bytes(item) == 7 + 5 + 9
    assert item_bytes({"é": {"S": "ü"}}) == 4  # UTF-8 bytes, not characters
    assert [units(size, 1024) for size in (0, 1, 1024, 1025, 4096)] == [1, 1, 1, 2, 4]


def test_a_public_upload_with_two_tags_writes_these_partitions() -> None:
    client = MeteredDynamoDb(terraform_layout())
    image = public_image()
    shard = zlib.crc32(image.image_id.encode()) % DEFAULT_PUBLIC_SHARDS
    public = f"P{shard}"

    write_change(client, None, image, shards=DEFAULT_PUBLIC_SHARDS)

    # Each item is under 1 KB: 2 WCU in the transaction for the image and each of its six edges
    # (two tags, the content type, the title's first 1, 2 and 3 characters), on the image's
    # partition; 1 WCU per index entry, on each timeline it is on: the owner's, and one shard
    # of the public ones, which the image's id chooses.
    facets = ("", "#T#travel", "#T#beach", "#K#image/jpeg", "#N#i", "#N#im", "#N#img")
    assert dict(client.meter.wcu) == {
        (BASE, "IMG#01JE0000000000000000000001"): 2 * 7,
        **{("owner_timeline", "O#alice#public" + facet): 1 for facet in facets},
        **{("public_timeline", public + facet): 1 for facet in facets},
        ("content", f"C#alice#{SHA}"): 1,
    }


def test_a_large_image_item_costs_two_wcu_per_started_kb_on_its_partition_only() -> None:
    client = MeteredDynamoDb(terraform_layout())
    image = public_image(tags=(), metadata={"notes": "x" * 2000})

    write_change(client, None, image, shards=DEFAULT_PUBLIC_SHARDS)

    # The item is a little over 2.5 KB: 3 KB started, 6 WCU in a transaction, beside 2 WCU for
    # each of its four small edges (no tag: the content type and the title's first 1, 2 and 3
    # characters); the indexes hold neither the metadata nor the description, so each entry is
    # still 1 WCU.
    key = {"pk": {"S": "IMG#" + image.image_id}, "sk": {"S": "META"}}
    assert 2.5 * 1024 < item_bytes(client.get_item("images", key)["Item"]) < 3 * 1024
    assert client.meter.wcu[(BASE, "IMG#" + image.image_id)] == 6 + 4 * 2
    shard = zlib.crc32(image.image_id.encode()) % DEFAULT_PUBLIC_SHARDS
    assert client.meter.wcu[("public_timeline", f"P{shard}")] == 1


def test_a_thumbnail_settling_writes_the_image_item_and_no_index() -> None:
    client = MeteredDynamoDb(terraform_layout())
    image = public_image()
    write_change(client, None, image, shards=DEFAULT_PUBLIC_SHARDS)
    before = dict(client.meter.wcu)

    write_change(
        client, image, image.with_thumbnail(ThumbnailStatus.READY), shards=DEFAULT_PUBLIC_SHARDS
    )

    changed = {place: client.meter.wcu[place] - before.get(place, 0) for place in client.meter.wcu}
    assert {place: wcu for place, wcu in changed.items() if wcu} == {
        (BASE, "IMG#" + image.image_id): 2
    }


def test_the_model_writes_what_the_repository_writes() -> None:
    """Every write the replay makes through write_change, made through the real repository
    instead, consumes the same capacity on the same partitions."""
    through_model = MeteredDynamoDb(terraform_layout())
    through_repository = MeteredDynamoDb(terraform_layout())
    requests = Requests(repository(through_repository, DEFAULT_PUBLIC_SHARDS))
    image = public_image(claims_content=True)
    settled = image.with_thumbnail(ThumbnailStatus.READY)
    retagged = settled.edited({"tags": ("travel", "sea")}, NOW + timedelta(seconds=1))
    hidden = retagged.edited({"visibility": Visibility.PRIVATE}, NOW + timedelta(seconds=2))
    tombstone = hidden.tombstoned(NOW + timedelta(seconds=3))

    for before, after in (
        (None, image),
        (image, settled),
        (settled, retagged),
        (retagged, hidden),
        (hidden, tombstone),
        (tombstone, tombstone.erased()),
    ):
        write_change(through_model, before, after, shards=DEFAULT_PUBLIC_SHARDS)
    requests.upload(image)
    requests.complete_thumbnail(image.image_id)
    requests.edit(image.image_id, {"tags": ("travel", "sea")}, NOW + timedelta(seconds=1))
    requests.edit(image.image_id, {"visibility": Visibility.PRIVATE}, NOW + timedelta(seconds=2))
    requests.delete(image.image_id, NOW + timedelta(seconds=3))

    assert dict(through_model.meter.wcu) == dict(through_repository.meter.wcu)
    assert through_model.meter.writes == through_repository.meter.writes


def test_the_default_shards_take_2000_public_uploads_a_second_and_one_shard_does_not() -> None:
    """The layout's reason to shard: one simulated second of the population's writes at 2,000
    public uploads/s (with the private uploads, thumbnails, edits and deletes beside them)."""
    sharded = replay_writes(DEFAULT_PUBLIC_SHARDS, (2_000,))
    single = replay_writes(1, (2_000,))

    busiest = max(sharded.hottest, key=lambda hot: hot.units)
    assert busiest.units < WCU_LIMIT, busiest
    assert sharded.first_over is None
    assert max(hot.units for hot in single.hottest) > WCU_LIMIT
    assert single.first_over is not None
