"""Updates of an image's metadata: validated, versioned, conditional on the version the client
saw, and by its owner only."""

from __future__ import annotations

from datetime import timedelta

import pytest

from imagecore.commands import UpdateCommand
from imagecore.errors import InvalidInput, NotFound, PreconditionFailed
from imagecore.model import Visibility
from imagecore.service import ImageService
from tests.support.doubles import FakeClock, crockford
from tests.support.use_cases import upload


def test_the_owner_updates_metadata_and_the_version_moves_on(
    service: ImageService, clock: FakeClock, png: bytes
) -> None:
    image = upload(service, "alice", png, title="Old", tags=["a"], metadata={"k": 1})
    clock.advance(timedelta(minutes=5))
    updated = service.update(
        "alice",
        image.image_id,
        UpdateCommand(title=" New ", tags=["B", "b", "c"], visibility="public"),
    )
    assert updated.title == "New"
    assert updated.tags == ("b", "c")
    assert updated.visibility is Visibility.PUBLIC
    assert dict(updated.metadata) == {"k": 1}  # untouched fields stay
    assert updated.version == image.version + 1
    assert updated.updated_at == clock.now() != image.updated_at
    assert updated.created_at == image.created_at
    assert (updated.sha256, updated.size, updated.blob_key) == (
        image.sha256,
        image.size,
        image.blob_key,
    )
    assert service.get("alice", image.image_id) == updated
    assert service.get("bob", image.image_id) == updated  # now public


def test_fields_can_be_cleared(service: ImageService, png: bytes) -> None:
    image = upload(service, "alice", png, title="T", description="D", tags=["x"], metadata={"k": 1})
    cleared = service.update(
        "alice",
        image.image_id,
        UpdateCommand(title=None, description="", tags=[], metadata={}),
    )
    assert (cleared.title, cleared.description, cleared.tags, dict(cleared.metadata)) == (
        "",
        "",
        (),
        {},
    )


def test_updating_with_the_current_version_applies(service: ImageService, png: bytes) -> None:
    image = upload(service, "alice", png)
    first = service.update("alice", image.image_id, UpdateCommand(title="one"), expected_version=1)
    second = service.update("alice", image.image_id, UpdateCommand(title="two"), expected_version=2)
    assert (first.version, second.version) == (2, 3)
    assert service.get("alice", image.image_id).title == "two"


@pytest.mark.parametrize("stale", [0, 1, 3, 10**9])
def test_updating_a_stale_version_fails_and_changes_nothing(
    service: ImageService, png: bytes, stale: int
) -> None:
    image = upload(service, "alice", png, title="kept")
    current = service.update("alice", image.image_id, UpdateCommand(title="current"))
    assert current.version == 2
    with pytest.raises(PreconditionFailed, match="version 2"):
        service.update("alice", image.image_id, UpdateCommand(title="lost"), expected_version=stale)
    assert service.get("alice", image.image_id) == current


@pytest.mark.parametrize("visibility", ["private", "public"])
def test_only_the_owner_may_update_and_others_get_not_found(
    service: ImageService, png: bytes, visibility: str
) -> None:
    image = upload(service, "alice", png, title="mine", visibility=visibility)
    with pytest.raises(NotFound):
        service.update("bob", image.image_id, UpdateCommand(title="hijacked"))
    with pytest.raises(NotFound):
        service.update("bob", image.image_id, UpdateCommand(title="x"), expected_version=1)
    assert service.get("alice", image.image_id) == image


@pytest.mark.parametrize(
    "body",
    [
        {"owner": "bob"},
        {"user_id": "bob"},
        {"version": 7},
        {"title": "ok", "state": "deleted"},
        {"sha256": "0" * 64},
        {1: "x"},
    ],
)
def test_updating_a_field_that_may_not_change_is_invalid_input(body: dict[object, object]) -> None:
    with pytest.raises(InvalidInput, match="cannot update"):
        UpdateCommand.from_mapping(body)


@pytest.mark.parametrize("body", [[], "title=x", None, 5])
def test_an_update_body_that_is_not_an_object_is_invalid_input(body: object) -> None:
    with pytest.raises(InvalidInput, match="JSON object"):
        UpdateCommand.from_mapping(body)


def test_an_update_from_a_json_object_applies_its_fields(service: ImageService, png: bytes) -> None:
    image = upload(service, "alice", png)
    command = UpdateCommand.from_mapping({"title": "From JSON", "visibility": "public"})
    updated = service.update("alice", image.image_id, command)
    assert (updated.title, updated.visibility) == ("From JSON", Visibility.PUBLIC)


@pytest.mark.parametrize(
    "command",
    [
        UpdateCommand(title="x" * 201),
        UpdateCommand(tags="a,b"),
        UpdateCommand(metadata={"nested": {}}),
        UpdateCommand(visibility="everyone"),
        UpdateCommand(title="fine", description="\x00"),
    ],
)
def test_an_invalid_update_changes_nothing(
    service: ImageService, png: bytes, command: UpdateCommand
) -> None:
    image = upload(service, "alice", png, title="kept")
    with pytest.raises(InvalidInput):
        service.update("alice", image.image_id, command)
    assert service.get("alice", image.image_id) == image


def test_an_update_with_no_fields_returns_the_image_as_it_is(
    service: ImageService, clock: FakeClock, png: bytes
) -> None:
    image = upload(service, "alice", png)
    clock.advance()
    assert service.update("alice", image.image_id, UpdateCommand()) == image
    assert service.update("alice", image.image_id, UpdateCommand(), expected_version=1) == image
    assert service.get("alice", image.image_id) == image


def test_an_update_of_an_unknown_or_malformed_id_is_not_found(service: ImageService) -> None:
    for image_id in (crockford(7), "bad id"):
        with pytest.raises(NotFound):
            service.update("alice", image_id, UpdateCommand(title="x"))
