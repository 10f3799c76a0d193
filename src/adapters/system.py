"""The real clock and id generator."""

from __future__ import annotations

from datetime import UTC, datetime

import ulid


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class UlidGenerator:
    """ULIDs: 48 bits of milliseconds then 80 random bits, so ids sort by creation time."""

    def new_id(self, now: datetime) -> str:
        return str(ulid.ULID.from_datetime(now))
