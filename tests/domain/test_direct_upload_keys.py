"""The keys direct uploads land under (uploads/<owner>/<upload id>): completion takes only those,
and each names its owner and its slot. The upload flow itself is in test_direct_uploads.py."""

from __future__ import annotations

import pytest

from imagecore.blob_keys import parse_upload_key, upload_key
from imagecore.errors import InvalidInput
from imagecore.service import ImageService
from tests.support.doubles import crockford

UPLOAD_ID = crockford(1 << 100)


@pytest.mark.parametrize(
    "key",
    [
        "images/alice/" + UPLOAD_ID,
        "uploads/alice",
        "uploads/alice/not-an-id",
        "uploads/-bad user/" + UPLOAD_ID,
        "uploads//" + UPLOAD_ID,
        f"uploads/alice/{UPLOAD_ID}/thumbnail",
    ],
)
def test_keys_that_are_not_direct_uploads_are_invalid(service: ImageService, key: str) -> None:
    with pytest.raises(InvalidInput):
        service.complete_upload(key)


def test_an_upload_key_names_its_owner_and_id() -> None:
    assert parse_upload_key(upload_key("bob@example.com", UPLOAD_ID)) == (
        "bob@example.com",
        UPLOAD_ID,
    )
