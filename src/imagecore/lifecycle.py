"""The use cases that change an image after it is made: update, delete, and the reconcile that
finishes what a crash left half done and queues again the work a lost job left undone."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import attrs

from imagecore import blob_keys, validation
from imagecore.commands import UNSET, UpdateCommand
from imagecore.errors import NotFound, PreconditionFailed, VersionConflict
from imagecore.lookups import find_image, owned_active_image
from imagecore.model import Image, ImageState
from imagecore.ports import (
    BlobStore,
    Clock,
    ImageRepository,
    JobQueue,
    MultipartUploads,
    PartialBlobs,
)
from imagecore.results import ReconcileReport
from imagecore.retry import retry_on_conflict

ORPHAN_GRACE = timedelta(hours=1)
"""How old bytes no image holds must be before reconcile removes them: an upload stores its
bytes before its metadata, so younger ones may be an upload still under way."""


def finish_delete(repository: ImageRepository, blobs: BlobStore, tombstone: Image) -> None:
    """Remove the bytes (what was made from the original first, so a failure leaves the
    original to find them by), then blank the record. Works on a DELETING tombstone and on an
    UPLOADING slot."""
    if tombstone.state is ImageState.UPLOADING:
        blobs.delete(blob_keys.upload_key(tombstone.user_id, tombstone.image_id))
    for key in blob_keys.derivative_keys(tombstone):
        blobs.delete(key)
    blobs.delete(tombstone.blob_key)
    with contextlib.suppress(VersionConflict):  # another delete of it finished first
        repository.replace(tombstone.erased(), tombstone.version)


@attrs.frozen
class Lifecycle:
    """Without ``jobs``, reconcile queues no work again."""

    repository: ImageRepository
    blobs: BlobStore
    clock: Clock
    limits: validation.Limits
    url_ttl: timedelta
    jobs: JobQueue | None = None
    partials: PartialBlobs | None = None
    multipart: MultipartUploads | None = None

    def update(
        self,
        caller: str,
        image_id: str,
        command: UpdateCommand,
        expected_version: int | None = None,
    ) -> Image:
        """Change the owner's metadata. With ``expected_version`` the change applies only if the
        metadata has not changed since that version (else PreconditionFailed); without it, a
        concurrent change is retried over."""
        changes = self._validated_changes(command)

        def attempt() -> Image:
            # Read again on every attempt: the precondition is checked against what won.
            current = owned_active_image(self.repository, caller, image_id)
            if expected_version is not None and not current.is_current_for_edit(expected_version):
                raise PreconditionFailed(
                    f"the image changed since version {expected_version}: it is at version "
                    f"{current.version}"
                )
            if not changes:
                return current
            updated = current.edited(changes, self.clock.now())
            self.repository.replace(updated, current.version)
            return updated

        return retry_on_conflict(attempt, "the image kept changing during the update: try again")

    def delete(self, caller: str, image_id: str) -> None:
        """Tombstone the image (it vanishes at once), then remove its bytes, then its metadata.
        Deleting an image the caller already deleted succeeds again."""

        def attempt() -> Image | None:
            current = find_image(self.repository, image_id)
            if current is None or current.user_id != caller:
                raise NotFound("no such image")
            if current.state is ImageState.DELETED:
                return None
            if current.state is ImageState.ACTIVE:
                tombstone = current.tombstoned(self.clock.now())
                self.repository.replace(tombstone, current.version)
                return tombstone
            return current

        tombstone = retry_on_conflict(
            attempt, "the image kept changing during the delete: try again"
        )
        if tombstone is not None:
            finish_delete(self.repository, self.blobs, tombstone)

    def reconcile(self, grace: timedelta = ORPHAN_GRACE) -> ReconcileReport:
        """Finish every delete that was interrupted and close the upload slots (direct and
        resumable, aborting the multipart upload of one sent in parts) that expired more than
        ``grace`` ago, then remove the bytes no image holds
        (and the partial bytes no open resumable upload holds) that were stored
        more than ``grace`` ago (younger ones may be an upload still under way), then queue
        again the jobs of images made more than ``grace`` ago whose work is still outstanding
        (their job was lost: a crash, a worker that died on it; younger ones may be queued yet).
        The job queue keeps one of a job it holds already, or its handler finds the work done."""
        finished = 0
        now = self.clock.now()
        for unsettled in self.repository.unsettled():
            if unsettled.state is ImageState.DELETING or self._expiry(unsettled) + grace < now:
                key = blob_keys.upload_key(unsettled.user_id, unsettled.image_id)
                if self.multipart is not None and unsettled.upload_handle is not None:
                    # Before the slot closes, so an abort that fails is tried again next time.
                    self.multipart.abort(key, unsettled.upload_handle)
                finish_delete(self.repository, self.blobs, unsettled)
                if self.partials is not None and unsettled.resumable_until is not None:
                    self.partials.delete(key)
                finished += 1
        checked = removed = 0
        for key in self.blobs.stored_before(now - grace):
            checked += 1
            if not self._holds(key):
                self.blobs.delete(key)
                removed += 1
        if self.partials is not None:
            for key in self.partials.stored_before(now - grace):
                checked += 1
                if not self._holds_partial(key):
                    self.partials.delete(key)
                    removed += 1
        return ReconcileReport(
            deletes_finished=finished,
            blobs_checked=checked,
            orphans_removed=removed,
            jobs_requeued=self._requeue_outstanding_jobs(now - grace),
        )

    def _requeue_outstanding_jobs(self, created_before: datetime) -> int:
        if self.jobs is None:
            return 0
        requeued = 0
        for image in self.repository.pending_thumbnails(created_before):
            for job in image.outstanding_jobs:
                self.jobs.enqueue(job)
                requeued += 1
        return requeued

    def _expiry(self, slot: Image) -> datetime:
        if slot.resumable_until is not None:
            return slot.resumable_until
        return slot.created_at + self.url_ttl

    def _holds_partial(self, key: str) -> bool:
        """Whether an open resumable upload holds these partial bytes."""
        owner = blob_keys.owning_image(key)
        if owner is None:
            return True
        image = find_image(self.repository, owner[1])
        return image is not None and image.is_resumable_slot

    def _holds(self, key: str) -> bool:
        """Whether an image that is not yet deleted holds these bytes, as original or derivative;
        a direct-upload slot holds only the client's bytes under ``uploads/``. Keys outside the
        service's layout are not its own, so they are held by definition."""
        owner = blob_keys.owning_image(key)
        if owner is None:
            return True
        prefix, image_id = owner
        image = find_image(self.repository, image_id)
        if image is None or image.state is ImageState.DELETED:
            return False
        if prefix == blob_keys.UPLOADS_PREFIX:
            return image.state is ImageState.UPLOADING
        # The write that makes a slot the image is the one that makes its claim's bytes held:
        # bytes under a slot that is still a slot are those of a claim that died before it.
        return image.state is not ImageState.UPLOADING and blob_keys.is_under(key, image.blob_key)

    def _validated_changes(self, command: UpdateCommand) -> dict[str, Any]:
        rules: dict[str, Callable[[object], object]] = {
            "title": lambda value: validation.title(value, self.limits),
            "description": lambda value: validation.description(value, self.limits),
            "tags": lambda value: validation.tags(value, self.limits),
            "metadata": lambda value: validation.metadata(value, self.limits),
            "visibility": validation.visibility,
            "share_location": validation.share_location,
        }
        changes: dict[str, Any] = {}
        for field, rule in rules.items():
            value = getattr(command, field)
            if value is not UNSET:
                changes[field] = rule(value)
        return changes
