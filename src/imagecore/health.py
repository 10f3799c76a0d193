"""Whether the stores the service needs answer: what `GET /health` reports."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from imagecore.ports import BlobStore, ImageRepository, StorageSpace

log = logging.getLogger("imagecore.health")

HEALTHY = "ok"
FULL = "full: new images are refused until images are deleted"
_FAILING = "failing: the server log says why"
PROBE_IMAGE_ID = "0" * 26
"""A well-formed id no image has: ids carry their creation time, and this one is 1970's."""
PROBE_BLOB_KEY = "health/probe"


def _check(name: str, probe: Callable[[], object]) -> str:
    try:
        probe()
    except Exception:
        # The details may name tables, paths or endpoints: they go to the log, not to callers.
        log.exception("the %s store failed its health check", name)
        return _FAILING
    return HEALTHY


def check_stores(
    repository: ImageRepository, blobs: BlobStore, space: StorageSpace | None = None
) -> dict[str, str]:
    """Each store's state, ``HEALTHY`` when it answered a read, and ``space``: ``HEALTHY``
    while there is room for new images (always, for stores that never fill), else ``FULL``."""
    return {
        "metadata": _check("metadata", lambda: repository.get(PROBE_IMAGE_ID)),
        "blobs": _check("blobs", lambda: _read_missing_blob(blobs)),
        "space": HEALTHY if space is None else _check_space(space),
    }


def _check_space(space: StorageSpace) -> str:
    try:
        has_room = space.has_room()
    except Exception:
        log.exception("the space for new images could not be measured")
        return _FAILING
    return HEALTHY if has_room else FULL


def _read_missing_blob(blobs: BlobStore) -> None:
    # A read, not `exists`: S3 answers a HEAD for a missing bucket just as for a missing key.
    with contextlib.suppress(KeyError):
        blobs.open(PROBE_BLOB_KEY)
