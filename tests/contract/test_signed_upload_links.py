"""The embedded server's signed upload links refuse forged fields, whatever characters they hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.upload_links import EXPIRES_FIELD, SIGNATURE_FIELD, SignedUploadLinks
from imagecore.errors import Unauthenticated

UPLOAD_ID = "01JD0000000000000000000001"
MAX_BYTES = 1024
NOW = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)


def _links() -> SignedUploadLinks:
    return SignedUploadLinks(b"k" * 32, clock=lambda: NOW)


def _fields() -> dict[str, str]:
    target = _links().target(f"uploads/{UPLOAD_ID}", MAX_BYTES, NOW + timedelta(minutes=15))
    return dict(target.fields)


def test_the_fields_of_a_link_it_gave_out_are_taken() -> None:
    _links().verify(UPLOAD_ID, _fields(), MAX_BYTES)


@pytest.mark.parametrize(
    "forged",
    [
        {SIGNATURE_FIELD: "ñ" * 64},  # compare_digest refuses non-ASCII text
        {SIGNATURE_FIELD: "0" * 64},
        {EXPIRES_FIELD: "²"},  # a digit to isdigit(), not to int()
        {EXPIRES_FIELD: "", SIGNATURE_FIELD: ""},
    ],
)
def test_forged_fields_are_unauthenticated_not_a_crash(forged: dict[str, str]) -> None:
    with pytest.raises(Unauthenticated):
        _links().verify(UPLOAD_ID, {**_fields(), **forged}, MAX_BYTES)
