"""Where an image's bytes live in the blob store. Every key the service writes is made here,
and reconcile reads them back here, so the layout is stated once:

- ``images/<owner>/<image id>``: an original uploaded through the API;
- ``images/<owner>/<image id>/r<version>``: the original of a direct upload, under the claim
  that stored it (so of two racing claims, each writes a key of its own); held only once the
  slot has become the image, so the bytes of a claim that died before are an orphan like any;
- ``<original's key>/thumbnail``: derivatives sit under their original, and go where it goes:
  the thumbnail of an image made before renditions; ``<original's key>/renditions/<name>-<width>
  x<height>.<extension>`` each rendition in each format (an image's original never changes and
  its id is never reused, so each of these keys only ever names one content: caches may keep it
  for ever); ``<original's key>/shared`` the original as people other than its owner get it
  (privacy.py);
- ``uploads/<owner>/<image id>``: where a client's direct upload lands before it is checked.
"""

from __future__ import annotations

from imagecore import validation
from imagecore.errors import InvalidInput
from imagecore.model import Image, Rendition

IMAGES_PREFIX = "images"
UPLOADS_PREFIX = "uploads"


def original_key(owner: str, image_id: str) -> str:
    return f"{IMAGES_PREFIX}/{owner}/{image_id}"


def claimed_original_key(slot_key: str, claim_version: int) -> str:
    """Where the claim at ``claim_version`` of a direct-upload slot stores the original."""
    return f"{slot_key}/r{claim_version}"


def thumbnail_key(original: str) -> str:
    return f"{original}/thumbnail"


_EXTENSIONS = {"image/jpeg": "jpg", "image/webp": "webp", "image/avif": "avif"}


def extension(content_type: str) -> str:
    """The file name extension of a rendition format."""
    return _EXTENSIONS[content_type]


def rendition_key(original: str, rendition: Rendition, content_type: str) -> str:
    return (
        f"{original}/renditions/{rendition.name}-{rendition.width}x{rendition.height}"
        f".{extension(content_type)}"
    )


def shared_original_key(original: str) -> str:
    return f"{original}/shared"


def derivative_keys(image: Image) -> list[str]:
    """The keys of everything made from the image's original that its record names."""
    keys = [thumbnail_key(image.blob_key), shared_original_key(image.blob_key)]
    for rendition in image.renditions:
        keys.extend(
            rendition_key(image.blob_key, rendition, content_type)
            for content_type in rendition.content_types
        )
    return keys


def is_under(key: str, original: str) -> bool:
    """Whether ``key`` is the original itself or one of its derivatives."""
    return key == original or key.startswith(original + "/")


def upload_key(owner: str, upload_id: str) -> str:
    """Where a client's direct upload lands; the upload id becomes the image's id."""
    return f"{UPLOADS_PREFIX}/{owner}/{upload_id}"


def parse_upload_key(key: str) -> tuple[str, str]:
    """The owner and upload id of a direct upload's key; InvalidInput for any other key."""
    prefix, _, rest = key.partition("/")
    owner, _, upload_id = rest.partition("/")
    if prefix != UPLOADS_PREFIX or not validation.is_image_id(upload_id):
        raise InvalidInput(f"{key!r} is not a direct upload's key")
    try:
        validation.user_id(owner)
    except InvalidInput:
        raise InvalidInput(f"{key!r} is not a direct upload's key") from None
    return owner, upload_id


def owning_image(key: str) -> tuple[str, str] | None:
    """The prefix (IMAGES_PREFIX or UPLOADS_PREFIX) and the image id a key under the service's
    layout names ("" where it names none); None for a key outside the layout, which is not the
    service's own."""
    parts = key.split("/")
    if parts[0] not in (IMAGES_PREFIX, UPLOADS_PREFIX):
        return None
    return parts[0], parts[2] if len(parts) >= 3 else ""
