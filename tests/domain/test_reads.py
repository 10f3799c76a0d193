"""Reading an image and downloading its bytes: the owner's, anyone's once public, and no one
else's."""

from __future__ import annotations

import pytest

from imagecore.errors import NotFound
from imagecore.model import ByteRange
from imagecore.service import ImageService
from tests.support.doubles import crockford
from tests.support.use_cases import read_all, upload


def test_another_users_private_image_is_not_found(service: ImageService, png: bytes) -> None:
    image = upload(service, "alice", png)
    with pytest.raises(NotFound):
        service.get("bob", image.image_id)
    with pytest.raises(NotFound):
        service.download("bob", image.image_id)


def test_another_users_public_image_can_be_read_and_downloaded(
    service: ImageService, png: bytes
) -> None:
    image = upload(service, "alice", png, visibility="public")
    assert service.get("bob", image.image_id) == image
    assert read_all(service, "bob", image.image_id) == png


@pytest.mark.parametrize(
    "image_id", [crockford(999), "", "nope", "../../etc/passwd", "01jd8zq7x3k2m4n5p6q7r8s9tv"]
)
def test_an_unknown_or_malformed_id_is_not_found(service: ImageService, image_id: str) -> None:
    with pytest.raises(NotFound):
        service.get("alice", image_id)
    with pytest.raises(NotFound):
        service.download("alice", image_id)


def test_a_download_can_read_a_byte_range(service: ImageService, png: bytes) -> None:
    image = upload(service, "alice", png)
    download = service.download("alice", image.image_id)
    assert download.image == image
    assert b"".join(download.open(ByteRange(1, 4))) == png[1:5]
    assert download.presigned_url is None
    assert download.local_path is None
