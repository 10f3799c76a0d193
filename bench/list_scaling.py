"""Row 2: a list page's time and the items read per image returned as the collection grows."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import Row, median

FAMILY = "2 list scaling"
PAGE = 50
CALLER = "user0"


def images(start: int, stop: int) -> Iterator[Any]:
    """Synthetic images start..stop-1: 20 users, a third private, one second apart."""
    from imagecore.model import Image, Visibility

    epoch = datetime(2024, 1, 1, tzinfo=UTC)
    for n in range(start, stop):
        moment = epoch + timedelta(seconds=n)
        yield Image(
            image_id=f"{n:026d}",
            user_id=f"user{n % 20}",
            filename=f"photo-{n}.jpg",
            content_type="image/jpeg",
            size=1000,
            width=64,
            height=48,
            sha256=f"{n:064x}",
            blob_key=f"blobs/{n}",
            created_at=moment,
            updated_at=moment,
            title=f"Photo {n}",
            visibility=Visibility.PRIVATE if n % 3 == 0 else Visibility.PUBLIC,
        )


def _page_time(list_page: Any, repeats: int) -> float:
    from imagecore.query import ListQuery

    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        found = list_page(ListQuery(), CALLER, None, PAGE + 1)
        times.append(time.perf_counter() - started)
        assert len(found.images) == PAGE + 1
    return median(times) * 1000


def _unmatched_time(list_page: Any, repeats: int) -> tuple[float, bool]:
    """A list whose filter no image matches, checked on the entries (a title): its first
    request's time, and whether it stopped at the read budget (a short page going on)."""
    from imagecore.query import ListQuery

    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        found = list_page(ListQuery(title_prefix="qqq"), CALLER, None, PAGE + 1)
        times.append(time.perf_counter() - started)
        assert not found.images
    return median(times) * 1000, found.read_up_to is not None


def _vm_steps(connection: Any, call: Callable[[], object]) -> int:
    """SQLite VM instructions a call runs (to 100): SQLite counts no rows read, so the proxy."""
    steps = [0]

    def count() -> int:
        steps[0] += 100
        return 0

    connection.set_progress_handler(count, 100)
    try:
        call()
    finally:
        connection.set_progress_handler(None, 100)
    return steps[0]


def sqlite_rows(sizes: list[int]) -> list[Row]:
    from adapters import sqlite as adapter
    from imagecore.query import ListQuery

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-sqlite-") as temp:
        repository = adapter.SqliteImageRepository(Path(temp) / "images.sqlite3")
        connection = repository._connection()
        connection.execute("PRAGMA synchronous = OFF")  # seeding only; lists only read
        have = 0
        first_ms = 0.0
        unmatched_ms: dict[int, float] = {}
        for size in sizes:
            started = time.monotonic()
            connection.execute("BEGIN")
            # The adapter's own column encoding, written in one transaction instead of one each.
            connection.executemany(
                "INSERT INTO images (user_id, visibility, state, content_type, title_folded,"
                " created_at, version, sha256, claims_content, record, image_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ((*adapter._columns(image), image.image_id) for image in images(have, size)),
            )
            connection.execute("COMMIT")
            connection.execute("ANALYZE")
            seeded = time.monotonic() - started
            have = size
            page_ms = _page_time(repository.list, 50)
            steps = _vm_steps(
                connection, lambda: repository.list(ListQuery(), CALLER, None, PAGE + 1)
            )
            first_ms = first_ms or page_ms
            ratio = page_ms / first_ms
            rows.append(
                Row(
                    FAMILY,
                    f"SQLite page of {PAGE}, {size:,} images",
                    page_ms,
                    "ms",
                    "at 10^6 ≤ 1.5x of 10^3" if size == 10**6 else "",
                    ratio <= 1.5 if size == 10**6 else None,
                    f"{ratio:.2f}x of {sizes[0]:,}; ~{steps / PAGE:.0f} VM steps/image;"
                    f" seeded in {seeded:.1f} s",
                    {"images": size, "page_ms": page_ms, "vm_steps_per_image": steps / PAGE},
                )
            )
            # Without a read budget this reads every entry: a million, for an empty page.
            unmatched_ms[size], budgeted = _unmatched_time(repository.list, 10)
            reference = 10**5 if 10**5 in unmatched_ms else sizes[0]
            growth = unmatched_ms[size] / unmatched_ms[reference]
            rows.append(
                Row(
                    FAMILY,
                    f"SQLite, a title no image has, {size:,} images",
                    unmatched_ms[size],
                    "ms",
                    "at 10^6 ≤ 1.5x of 10^5" if size == 10**6 else "",
                    growth <= 1.5 if size == 10**6 else None,
                    f"{growth:.2f}x of {reference:,};"
                    + (" stopped at the read budget" if budgeted else " read to the end"),
                    {"images": size, "page_ms": unmatched_ms[size], "budgeted": budgeted},
                )
            )
        repository.close()
    return rows


def dynamodb_rows(sizes: list[int]) -> list[Row]:
    from tests.support.fake_aws import MotoServer, table_schema

    from adapters.aws_resources import create_table
    from adapters.dynamodb import DynamoDbImageRepository, items_of
    from adapters.dynamodb.items import DEFAULT_PUBLIC_SHARDS
    from imagecore.query import ListQuery

    rows: list[Row] = []
    server = MotoServer()
    try:
        client = server.clients().dynamodb
        create_table(client, "bench-images", table_schema())
        repository = DynamoDbImageRepository(client, "bench-images")
        scanned = [0]

        def on_query(http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
            scanned[0] += int(parsed.get("ScannedCount", 0))

        client.meta.events.register("after-call.dynamodb.Query", on_query)
        have = 0
        for size in sizes:
            started = time.monotonic()
            batch: list[Any] = []
            for image in images(have, size):
                batch += [
                    {"PutRequest": {"Item": item}}
                    for item in items_of(image, DEFAULT_PUBLIC_SHARDS)
                ]
                if len(batch) >= 25:
                    client.batch_write_item(RequestItems={"bench-images": batch[:25]})
                    batch = batch[25:]
            if batch:
                client.batch_write_item(RequestItems={"bench-images": batch})
            seeded = time.monotonic() - started
            have = size
            page_ms = _page_time(repository.list, 10)
            scanned[0] = 0
            repository.list(ListQuery(), CALLER, None, PAGE + 1)
            per_image = scanned[0] / (PAGE + 1)
            rows.append(
                Row(
                    FAMILY,
                    f"DynamoDB (moto) page of {PAGE}, {size:,} images",
                    per_image,
                    "scanned/image",
                    "≤ 1.2 (adapter's design)",
                    per_image <= 1.2,
                    f"page {page_ms:.1f} ms on moto server; seeded in {seeded:.1f} s",
                    {"images": size, "page_ms": page_ms, "scanned_per_image": per_image},
                )
            )
    finally:
        server.stop()
    return rows


def run(quick: bool) -> list[Row]:
    sqlite_sizes = [10**3, 10**4, 10**5] if quick else [10**3, 10**4, 10**5, 10**6]
    dynamo_sizes = [10**3, 10**4] if quick else [10**3, 10**4, 10**5]
    return sqlite_rows(sqlite_sizes) + dynamodb_rows(dynamo_sizes)
