"""Whether the stores the service needs answer: what `GET /health` reports."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from imagecore.ports import BlobStore, ImageRepository

log = logging.getLogger("imagecore.health")

HEALTHY = "ok"
PROBE_IMAGE_ID = "0" * 26
"""A well-formed id no image has: ids carry their creation time, and this one is 1970's."""
PROBE_BLOB_KEY = "health/probe"


def _check(name: str, probe: Callable[[], object]) -> str:
    try:
        probe()
    except Exception:
        # The details may name tables, paths or endpoints: they go to the log, not to callers.
        log.exception("the %s store failed its health check", name)
        return "failing: the server log says why"
    return HEALTHY


def check_stores(repository: ImageRepository, blobs: BlobStore) -> dict[str, str]:
    """Each store's state, ``HEALTHY`` when it answered a read."""
    return {
        "metadata": _check("metadata", lambda: repository.get(PROBE_IMAGE_ID)),
        "blobs": _check("blobs", lambda: _read_missing_blob(blobs)),
    }


def _read_missing_blob(blobs: BlobStore) -> None:
    # A read, not `exists`: S3 answers a HEAD for a missing bucket just as for a missing key.
    with contextlib.suppress(KeyError):
        blobs.open(PROBE_BLOB_KEY)
