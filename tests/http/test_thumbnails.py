"""GET /images/{id}/thumbnail through a real server, on each backend: the thumbnail appears once
its job ran, and only for who may see the image."""

from __future__ import annotations

import io

from PIL import Image

from tests.support.api_assertions import assert_error
from tests.support.api_client import Api
from tests.support.sample_images import image_bytes


def test_the_thumbnail_appears_and_is_served(api: Api, alice: str) -> None:
    image = api.uploaded(alice, data=image_bytes("image/jpeg", 1000, 400))
    assert image["thumbnail_status"] == "ready"

    response = api.client.get(
        f"/images/{image['image_id']}/thumbnail", headers=api.auth(alice), follow_redirects=True
    )

    assert response.status_code == 200
    with Image.open(io.BytesIO(response.content)) as thumbnail:
        assert (thumbnail.format, thumbnail.size) == ("JPEG", (256, 102))
    hidden = api.client.get(f"/images/{image['image_id']}/thumbnail", headers=api.auth("eve"))
    assert_error(hidden, 404, "NotFound")
