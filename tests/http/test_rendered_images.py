"""The JSON of an image is rendered once per version: an image changed to a new version renders
anew, and the same id and version render from the cache whatever object carries them."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
import orjson

from entrypoints.http.rendering import RenderedImages
from imagecore.model import Image

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def an_image(**changes: object) -> Image:
    image = Image(
        image_id="01JD0000000000000000000001",
        user_id="alice",
        filename="photo.png",
        content_type="image/png",
        size=100,
        width=4,
        height=3,
        sha256="0" * 64,
        blob_key="images/alice/01JD0000000000000000000001",
        created_at=NOW,
        updated_at=NOW,
        title="first",
    )
    return attrs.evolve(image, **changes)


def test_an_image_changed_to_a_new_version_renders_anew() -> None:
    rendered = RenderedImages(capacity=8)
    image = an_image()
    first = rendered.json(image)

    changed = rendered.json(image.edited({"title": "second"}, NOW))

    assert orjson.loads(first)["title"] == "first"
    assert orjson.loads(changed)["title"] == "second"
    assert orjson.loads(changed)["version"] == image.version + 1


def test_the_same_id_and_version_render_from_the_cache() -> None:
    rendered = RenderedImages(capacity=8)
    first = rendered.json(an_image())

    # Another object with the same id and version, as a store that decodes each read gives.
    again = rendered.json(an_image())

    assert again is first


def test_the_cache_keeps_the_images_used_last() -> None:
    rendered = RenderedImages(capacity=2)
    kept, dropped = an_image(), an_image(image_id="01JD0000000000000000000002")
    kept_json, dropped_json = rendered.json(kept), rendered.json(dropped)
    rendered.json(kept)  # used again: now the newest
    rendered.json(an_image(image_id="01JD0000000000000000000003"))  # the third: one must go

    assert rendered.json(kept) is kept_json
    assert rendered.json(dropped) is not dropped_json
