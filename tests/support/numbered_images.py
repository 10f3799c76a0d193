"""Image records numbered 1, 2, 3 ...: image ``n`` is Alice's private JPEG created ``n``
seconds after BASE_INSTANT, so each is newer than the one before, with an id that sorts by ``n``.
What the contract suites store in the adapters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from imagecore.model import Image

BASE_INSTANT = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)


def image_id_for(n: int) -> str:
    """A 26-character id in Crockford base32 that sorts by ``n``."""
    return f"01JD{n:022d}"


def build_image(n: int, **overrides: Any) -> Image:
    """Image number ``n``: Alice's private JPEG created ``n`` seconds after BASE_INSTANT."""
    fields: dict[str, Any] = {
        "image_id": image_id_for(n),
        "user_id": "alice",
        "filename": f"photo-{n}.jpg",
        "content_type": "image/jpeg",
        "size": 1000 + n,
        "width": 640,
        "height": 480,
        "sha256": f"{n:064x}",
        "created_at": BASE_INSTANT + timedelta(seconds=n),
        "title": f"Photo {n}",
    }
    fields.update(overrides)
    fields.setdefault("updated_at", fields["created_at"])
    fields.setdefault("blob_key", f"images/{fields['user_id']}/{fields['image_id']}")
    return Image(**fields)
