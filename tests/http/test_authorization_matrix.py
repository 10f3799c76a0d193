"""Who may do what, as one table: every endpoint, for every kind of caller, on a private and a
public image, each answered with exactly the documented status, on every backend.

The owner gets the normal success; another user may read a public image but never change it,
and a private image of someone else is 404 for them, never 403; a missing or bad credential is a
401 with the error body and a Bearer challenge, and nothing else. No answer to anyone but the
owner carries any of the private image's data, whatever its status.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import httpx
import jwt
import pytest

from adapters.secret_file import SECRET_FILE
from entrypoints.http.auth import ISSUER
from tests.support.api_assertions import assert_error
from tests.support.api_client import Api
from tests.support.sample_images import gps_of, image_bytes, located_jpeg

# One worker holds the whole table, so the check that follows it sees every attempt made.
pytestmark = pytest.mark.xdist_group("authorization_matrix")

Visibility = Literal["private", "public"]
_Entry = TypeVar("_Entry")
VISIBILITIES: tuple[Visibility, ...] = ("private", "public")


class Relation(enum.Enum):
    OWNER = "owner"
    OTHER_USER = "other user"
    UNAUTHENTICATED = "unauthenticated"


@dataclass(frozen=True)
class Caller:
    name: str
    relation: Relation


CALLERS = (
    Caller("owner", Relation.OWNER),
    Caller("other_user", Relation.OTHER_USER),
    Caller("anonymous", Relation.UNAUTHENTICATED),
    Caller("expired_token", Relation.UNAUTHENTICATED),
    Caller("token_signed_with_another_key", Relation.UNAUTHENTICATED),
    Caller("alg_none_token", Relation.UNAUTHENTICATED),
    Caller("token_without_sub", Relation.UNAUTHENTICATED),
    Caller("token_with_wrong_issuer", Relation.UNAUTHENTICATED),
    Caller("other_users_signature_on_owners_claims", Relation.UNAUTHENTICATED),
    Caller("bearer_garbage", Relation.UNAUTHENTICATED),
    Caller("basic_scheme", Relation.UNAUTHENTICATED),
)

BYTES: Literal["bytes"] = "bytes"
"""The bytes themselves: 200 from the server, or a 307 to a presigned URL on the aws backend."""
Expected = int | Literal["bytes"]

OWNER, OTHER, NOBODY = Relation.OWNER, Relation.OTHER_USER, Relation.UNAUTHENTICATED

# (status for the private image, status for the public image), by endpoint and caller relation.
# For the uploads, the visibility is that of the image being created.
EXPECTED: Mapping[str, Mapping[Relation, tuple[Expected, Expected]]] = {
    "upload": {OWNER: (201, 201), OTHER: (201, 201), NOBODY: (401, 401)},
    "list": {OWNER: (200, 200), OTHER: (200, 200), NOBODY: (401, 401)},
    "get": {OWNER: (200, 200), OTHER: (404, 200), NOBODY: (401, 401)},
    "download": {OWNER: (BYTES, BYTES), OTHER: (404, BYTES), NOBODY: (401, 401)},
    "thumbnail": {OWNER: (BYTES, BYTES), OTHER: (404, BYTES), NOBODY: (401, 401)},
    "rendition": {OWNER: (BYTES, BYTES), OTHER: (404, BYTES), NOBODY: (401, 401)},
    "patch": {OWNER: (200, 200), OTHER: (404, 404), NOBODY: (401, 401)},
    "delete": {OWNER: (204, 204), OTHER: (404, 404), NOBODY: (401, 401)},
    "create_upload_slot": {OWNER: (201, 201), OTHER: (201, 201), NOBODY: (401, 401)},
    # The slot's signed fields are the credential: whoever holds them may post, whatever
    # Authorization header comes along, and no bearer token stands in for them.
    "post_to_slot_with_its_fields": {OWNER: (201, 201), OTHER: (201, 201), NOBODY: (201, 201)},
    "post_to_slot_with_a_bearer_token_only": {
        OWNER: (401, 401),
        OTHER: (401, 401),
        NOBODY: (401, 401),
    },
}

# Whether the caller learns where the owner's photo was taken: its gps_* metadata (get, list) and
# the GPS record of the original's EXIF (download). The owner has not shared the location.
SEES_LOCATION: Mapping[Relation, bool] = {OWNER: True, OTHER: False}

# Whether the owner's image of that visibility is in a list the caller asks for.
LISTED: Mapping[Relation, tuple[bool, bool]] = {OWNER: (True, True), OTHER: (False, True)}

SLOT_ENDPOINTS = ("post_to_slot_with_its_fields", "post_to_slot_with_a_bearer_token_only")
PUBLIC_PATHS = ("/health", "/openapi.json", "/docs")
ERROR_FIELDS = {"error", "message", "request_id"}


@dataclass
class Gallery:
    """One backend's cast: an owner with a private and a public image, another user, and the
    Authorization header of every caller."""

    api: Api
    owner: str
    other_user: str
    marker: str
    """In every field of the private image a client may set: no one else may ever see it."""
    images: dict[Visibility, dict[str, Any]]
    headers: dict[str, dict[str, str]]

    @property
    def backend(self) -> str:
        return self.api.server.environ.get("IMAGECORE_BACKEND", "filesystem")

    def user_of(self, caller: Caller) -> str:
        """Whom the caller's credential names: bad credentials all claim to be the owner, so
        any that were taken would show up as the owner's success."""
        return self.other_user if caller.relation is OTHER else self.owner

    def image_id(self, visibility: Visibility) -> str:
        return str(self.images[visibility]["image_id"])

    def current(self, visibility: Visibility) -> dict[str, Any]:
        response = self.api.client.get(
            f"/images/{self.image_id(visibility)}", headers=self.api.auth(self.owner)
        )
        assert response.status_code == 200, response.text
        return dict(response.json())


def _base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned_token(claims: Mapping[str, object]) -> str:
    # PyJWT refuses to make these; a server must refuse to take them.
    header = _base64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_base64url(json.dumps(claims).encode())}."


def _with_claims_swapped(token: str, claims: Mapping[str, object]) -> str:
    header, _, signature = token.split(".")
    return f"{header}.{_base64url(json.dumps(claims).encode())}.{signature}"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _caller_headers(api: Api, owner: str, other_user: str) -> dict[str, dict[str, str]]:
    secret = api.server.environ.get("IMAGECORE_TOKEN_SECRET") or (
        (api.server.data_dir / SECRET_FILE).read_text().strip()
    )
    now = int(time.time())
    valid = {"sub": owner, "iss": ISSUER, "iat": now, "exp": now + 600}
    without_sub = {name: value for name, value in valid.items() if name != "sub"}
    return {
        "owner": api.auth(owner),
        "other_user": api.auth(other_user),
        "anonymous": {},
        "expired_token": _bearer(
            jwt.encode({**valid, "iat": now - 120, "exp": now - 60}, secret, algorithm="HS256")
        ),
        "token_signed_with_another_key": _bearer(
            jwt.encode(valid, secrets.token_hex(32), algorithm="HS256")
        ),
        "alg_none_token": _bearer(_unsigned_token(valid)),
        "token_without_sub": _bearer(jwt.encode(without_sub, secret, algorithm="HS256")),
        "token_with_wrong_issuer": _bearer(
            jwt.encode({**valid, "iss": "someone-else"}, secret, algorithm="HS256")
        ),
        "other_users_signature_on_owners_claims": _bearer(
            _with_claims_swapped(api.token(other_user), valid)
        ),
        "bearer_garbage": {"Authorization": "Bearer not-a-token"},
        "basic_scheme": {
            "Authorization": "Basic " + base64.b64encode(f"{owner}:password".encode()).decode()
        },
    }


@pytest.fixture(scope="module")
def gallery(api: Api) -> Gallery:
    suffix = secrets.token_hex(4)
    owner, other_user = f"owner-{suffix}", f"other-{suffix}"
    marker = f"secret{secrets.token_hex(8)}"
    # Both photos say where they were taken (EXIF GPS, the metadata it fills in).
    private = api.uploaded(
        owner,
        data=located_jpeg(),
        title=f"{marker}-title",
        description=f"{marker}-description",
        tags=f"{marker}-tag",
        metadata=json.dumps({f"{marker}-key": f"{marker}-value"}),
        visibility="private",
    )
    public = api.uploaded(
        owner,
        data=located_jpeg(),
        title=f"public-{suffix}",
        tags=f"public-{suffix}",
        visibility="public",
    )
    for image in (private, public):
        assert image["thumbnail_status"] == "ready", image
        assert "gps_latitude" in image["metadata"], image
    return Gallery(
        api=api,
        owner=owner,
        other_user=other_user,
        marker=marker,
        images={"private": private, "public": public},
        headers=_caller_headers(api, owner, other_user),
    )


# --- the requests, one per endpoint --------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    endpoint: str
    caller: Caller
    visibility: Visibility


Request = Callable[[Gallery, Cell, dict[str, str]], httpx.Response]


def _fresh_image(gallery: Gallery, visibility: Visibility) -> str:
    """An image of the owner's own, for the owner's changes: the shared ones stay as they are."""
    response = gallery.api.upload(gallery.owner, title="disposable", visibility=visibility)
    assert response.status_code == 201, response.text
    return str(response.json()["image_id"])


def _target(gallery: Gallery, cell: Cell) -> str:
    if cell.caller.relation is OWNER and cell.endpoint in ("patch", "delete"):
        return _fresh_image(gallery, cell.visibility)
    return gallery.image_id(cell.visibility)


def _upload(gallery: Gallery, cell: Cell, headers: dict[str, str]) -> httpx.Response:
    # A connection of its own: after refusing a body it has not read yet, the server may close
    # the connection without a "Connection: close", and the shared client would then send the
    # next test's request down a closed connection.
    return httpx.post(
        f"{gallery.api.server.url}/images",
        timeout=30,
        headers=headers,
        files={"file": ("photo.png", image_bytes(), "image/png")},
        data={"title": _upload_title(gallery, cell), "visibility": cell.visibility},
    )


def _upload_title(gallery: Gallery, cell: Cell) -> str:
    return f"upload-{cell.caller.name}-{cell.visibility}-{gallery.owner}"


def _list(gallery: Gallery, cell: Cell, headers: dict[str, str]) -> httpx.Response:
    # One page holds all of the owner's images: this module makes far fewer than 100.
    return gallery.api.client.get(
        "/images", headers=headers, params={"user_id": gallery.owner, "limit": 100}
    )


def _get(gallery: Gallery, cell: Cell, headers: dict[str, str]) -> httpx.Response:
    return gallery.api.client.get(f"/images/{_target(gallery, cell)}", headers=headers)


def _download(gallery: Gallery, cell: Cell, headers: dict[str, str]) -> httpx.Response:
    return gallery.api.client.get(f"/images/{_target(gallery, cell)}/download", headers=headers)


def _thumbnail(gallery: Gallery, cell: Cell, headers: dict[str, str]) -> httpx.Response:
    return gallery.api.client.get(f"/images/{_target(gallery, cell)}/thumbnail", headers=headers)


def _rendition(gallery: Gallery, cell: Cell, headers: dict[str, str]) -> httpx.Response:
    return gallery.api.client.get(
        f"/images/{_target(gallery, cell)}/renditions/preview", headers=headers
    )


def _patch(gallery: Gallery, cell: Cell, headers: dict[str, str]) -> httpx.Response:
    return gallery.api.client.patch(
        f"/images/{_target(gallery, cell)}",
        headers=headers,
        json={"title": "renamed by " + cell.caller.name, "visibility": "public"},
    )


def _delete(gallery: Gallery, cell: Cell, headers: dict[str, str]) -> httpx.Response:
    return gallery.api.client.delete(f"/images/{_target(gallery, cell)}", headers=headers)


def _ask_for_slot(
    gallery: Gallery, visibility: Visibility, headers: dict[str, str]
) -> httpx.Response:
    return gallery.api.client.post(
        "/uploads",
        headers=headers,
        json={"content_type": "image/png", "title": "slot", "visibility": visibility},
    )


def _create_upload_slot(gallery: Gallery, cell: Cell, headers: dict[str, str]) -> httpx.Response:
    return _ask_for_slot(gallery, cell.visibility, headers)


def _owners_slot(gallery: Gallery, visibility: Visibility) -> dict[str, Any]:
    response = _ask_for_slot(gallery, visibility, gallery.api.auth(gallery.owner))
    assert response.status_code == 201, response.text
    return dict(response.json())


def _post_to_slot(
    slot: dict[str, Any], fields: Mapping[str, str], headers: dict[str, str]
) -> httpx.Response:
    return httpx.post(
        str(slot["url"]),
        headers=headers,
        data={**fields, "Content-Type": "image/png"},
        files={"file": ("big.png", image_bytes(), "image/png")},
        timeout=30,
    )


def _post_to_slot_with_its_fields(
    gallery: Gallery, cell: Cell, headers: dict[str, str]
) -> httpx.Response:
    slot = _owners_slot(gallery, cell.visibility)
    return _post_to_slot(slot, slot["fields"], headers)


def _post_to_slot_with_a_bearer_token_only(
    gallery: Gallery, cell: Cell, headers: dict[str, str]
) -> httpx.Response:
    return _post_to_slot(_owners_slot(gallery, cell.visibility), {}, headers)


REQUESTS: Mapping[str, Request] = {
    "upload": _upload,
    "list": _list,
    "get": _get,
    "download": _download,
    "thumbnail": _thumbnail,
    "rendition": _rendition,
    "patch": _patch,
    "delete": _delete,
    "create_upload_slot": _create_upload_slot,
    "post_to_slot_with_its_fields": _post_to_slot_with_its_fields,
    "post_to_slot_with_a_bearer_token_only": _post_to_slot_with_a_bearer_token_only,
}
assert set(REQUESTS) == set(EXPECTED)


# --- what each answer must be ---------------------------------------------------------------


def _entry_for(pair: tuple[_Entry, _Entry], visibility: Visibility) -> _Entry:
    """The entry of a (private, public) pair of the tables for that visibility."""
    return pair[VISIBILITIES.index(visibility)]


def _expected_status(gallery: Gallery, cell: Cell) -> int:
    expected = _entry_for(EXPECTED[cell.endpoint][cell.caller.relation], cell.visibility)
    if expected == BYTES:
        return 307 if gallery.backend == "aws" else 200
    return expected


def _assert_reveals_nothing_private(gallery: Gallery, response: httpx.Response) -> None:
    assert gallery.marker not in response.text, response.text
    for name, value in response.headers.items():
        assert gallery.marker not in value, (name, value)


def _assert_refused_as_unauthenticated(gallery: Gallery, response: httpx.Response) -> None:
    body = assert_error(response, 401, "Unauthenticated")
    assert set(body) == ERROR_FIELDS
    assert response.headers["www-authenticate"] == "Bearer"
    for image in gallery.images.values():
        assert image["image_id"] not in response.text
        assert image["title"] not in response.text


def _assert_unchanged(gallery: Gallery, visibility: Visibility) -> None:
    assert gallery.current(visibility) == gallery.images[visibility]


def _followed(response: httpx.Response) -> httpx.Response:
    """The answer with the bytes: the response itself, or where its redirect leads."""
    if response.status_code != 307:
        return response
    # A presigned URL carries its own authorization: no bearer token goes along.
    followed = httpx.get(response.headers["location"], timeout=30)
    assert followed.status_code == 200, followed.text
    return followed


def _assert_success_body(gallery: Gallery, cell: Cell, response: httpx.Response) -> None:
    """What a success must carry beyond its status: the right image, listed or not."""
    if cell.endpoint == "list":
        assert response.json()["next_cursor"] is None
        listed_ids = {image["image_id"] for image in response.json()["images"]}
        should_list = _entry_for(LISTED[cell.caller.relation], cell.visibility)
        assert (gallery.image_id(cell.visibility) in listed_ids) is should_list, listed_ids
        located = {gallery.image_id(visibility) for visibility in VISIBILITIES}
        for image in response.json()["images"]:
            if image["image_id"] in located:
                _assert_location_shown(cell, image)
    elif cell.endpoint == "get":
        assert response.json() == _as_seen(cell, gallery.images[cell.visibility])
    elif cell.endpoint == "download":
        bytes_served = _followed(response)
        served_sha256 = hashlib.sha256(bytes_served.content).hexdigest()
        original_sha256 = gallery.images[cell.visibility]["sha256"]
        sees_location = SEES_LOCATION[cell.caller.relation]
        assert (served_sha256 == original_sha256) is sees_location
        assert bool(gps_of(bytes_served.content)) is sees_location
        assert len(bytes_served.content) == gallery.images[cell.visibility]["size"]
    elif cell.endpoint in ("thumbnail", "rendition"):
        bytes_served = _followed(response)
        assert bytes_served.headers["content-type"] in ("image/jpeg", "image/webp")
        assert gps_of(bytes_served.content) == {}
    elif cell.endpoint in ("upload", "post_to_slot_with_its_fields"):
        image = response.json()
        assert (image["user_id"], image["visibility"]) == (
            # A slot's image is its owner's, whoever posted the bytes.
            gallery.owner if cell.endpoint != "upload" else gallery.user_of(cell.caller),
            cell.visibility,
        )
    elif cell.endpoint == "patch":
        assert response.json()["title"] == "renamed by owner"


def _as_seen(cell: Cell, image: dict[str, Any]) -> dict[str, Any]:
    """The owner's view of an image as the caller of ``cell`` should see it."""
    if SEES_LOCATION[cell.caller.relation]:
        return image
    hidden = {key for key in image["metadata"] if key.startswith("gps_")}
    return {**image, "metadata": {k: v for k, v in image["metadata"].items() if k not in hidden}}


def _assert_location_shown(cell: Cell, image: dict[str, Any]) -> None:
    shown = any(key.startswith("gps_") for key in image["metadata"])
    assert shown is SEES_LOCATION[cell.caller.relation], image


def _cells() -> list[Any]:
    return [
        pytest.param(
            Cell(endpoint, caller, visibility),
            id=f"{endpoint}-{caller.name}-{visibility}",
        )
        for endpoint in EXPECTED
        for caller in CALLERS
        for visibility in VISIBILITIES
    ]


@pytest.mark.parametrize("cell", _cells())
def test_each_caller_gets_exactly_the_documented_status(gallery: Gallery, cell: Cell) -> None:
    if cell.endpoint in SLOT_ENDPOINTS and gallery.backend == "aws":
        pytest.skip("on the aws backend the slot's URL is an S3 presigned POST")
    expected = _expected_status(gallery, cell)

    response = REQUESTS[cell.endpoint](gallery, cell, gallery.headers[cell.caller.name])

    assert response.status_code == expected, response.text
    if expected == 401:
        _assert_refused_as_unauthenticated(gallery, response)
    elif expected == 404:
        assert_error(response, 404, "NotFound")
    else:
        _assert_success_body(gallery, cell, response)
    if cell.caller.relation is not OWNER:
        _assert_reveals_nothing_private(gallery, response)
        if cell.endpoint == "list":
            assert gallery.image_id("private") not in response.text
        if cell.endpoint in ("patch", "delete"):
            _assert_unchanged(gallery, cell.visibility)
    if cell.endpoint == "upload" and expected == 401:
        # A refused upload stores nothing, not even under the name its token claimed.
        title = _upload_title(gallery, cell)
        assert gallery.api.list_all(gallery.owner, title=title) == []
    if cell.endpoint == "delete" and cell.caller.relation is OWNER:
        gone = gallery.api.client.get(response.request.url, headers=gallery.api.auth(gallery.owner))
        assert_error(gone, 404, "NotFound")


@pytest.mark.parametrize("caller", CALLERS, ids=[caller.name for caller in CALLERS])
@pytest.mark.parametrize("path", PUBLIC_PATHS)
def test_the_public_endpoints_answer_whatever_credentials_come_along(
    gallery: Gallery, path: str, caller: Caller
) -> None:
    response = gallery.api.client.get(path, headers=gallery.headers[caller.name])

    assert response.status_code == 200, response.text
    _assert_reveals_nothing_private(gallery, response)


def test_the_shared_images_are_unchanged_after_every_attempt_on_them(gallery: Gallery) -> None:
    for visibility in VISIBILITIES:
        before, now = gallery.images[visibility], gallery.current(visibility)
        assert (now["version"], now["title"]) == (before["version"], before["title"])
        assert now == before
