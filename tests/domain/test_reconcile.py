"""Reconciliation, the scheduled job: it finishes interrupted deletes, removes bytes no image
holds once they are older than the grace period, queues again the thumbnails whose job was lost,
and changes nothing in a consistent store.
(Slots never used are closed too: test_direct_uploads.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs

from adapters.memory import MemoryBlobStore, MemoryImageRepository
from imagecore.blob_keys import upload_key
from imagecore.commands import UploadCommand
from imagecore.lifecycle import ORPHAN_GRACE
from imagecore.model import THUMBNAIL_JOB, Image, ImageState, Job, ThumbnailStatus
from imagecore.results import ReconcileReport
from imagecore.service import ImageService
from tests.support.blob_bytes import has_blob
from tests.support.doubles import FakeClock, RecordingJobs, crockford


def after_grace(clock: FakeClock) -> None:
    """Moves the service's clock past the grace period of every blob stored so far."""
    clock.current = datetime.now(UTC) + ORPHAN_GRACE + timedelta(minutes=1)


def test_reconcile_finishes_interrupted_deletes(
    service: ImageService, repository: MemoryImageRepository, blobs: MemoryBlobStore, png: bytes
) -> None:
    image = service.store_upload("alice", UploadCommand(chunks=[png])).image
    tombstone = attrs.evolve(image, state=ImageState.DELETING, version=image.version + 1)
    repository.replace(tombstone, image.version)  # the process died right after the tombstone

    report = service.reconcile()

    assert report.deletes_finished == 1
    stored = repository.get(image.image_id)
    assert stored is not None
    assert stored.state is ImageState.DELETED
    assert not has_blob(blobs, image.blob_key)


def test_reconcile_removes_old_orphans_and_keeps_every_image_and_foreign_key(
    service: ImageService, clock: FakeClock, blobs: MemoryBlobStore, png: bytes
) -> None:
    kept = service.store_upload("alice", UploadCommand(chunks=[png])).image
    blobs.put(kept.blob_key + "/thumbnail", [b"a derivative"])
    orphans = [
        "images/alice/" + crockford(7),  # bytes whose metadata was never written
        kept.blob_key[:-1] + "Z/thumbnail",  # a derivative of an image that does not exist
        upload_key("bob", crockford(8)),  # a direct upload that never completed
    ]
    for orphan in orphans:
        blobs.put(orphan, [b"nobody's"])
    foreign = "backups/not-ours"
    blobs.put(foreign, [b"someone else's"])
    after_grace(clock)

    report = service.reconcile()

    assert report == ReconcileReport(deletes_finished=0, blobs_checked=6, orphans_removed=3)
    assert sorted(blobs.keys()) == sorted([kept.blob_key, kept.blob_key + "/thumbnail", foreign])
    assert b"".join(service.download("alice", kept.image_id).open()) == png


def test_reconcile_keeps_unheld_bytes_younger_than_the_grace_period(
    service: ImageService, clock: FakeClock, blobs: MemoryBlobStore
) -> None:
    young = "images/carol/" + crockford(9)
    blobs.put(young, [b"an upload under way: its metadata comes next"])
    clock.current = datetime.now(UTC) + ORPHAN_GRACE - timedelta(minutes=1)

    assert service.reconcile() == ReconcileReport(0, 0, 0)
    assert blobs.keys() == [young]


def test_reconcile_removes_bytes_left_by_a_delete_that_died_after_the_tombstone_was_done(
    service: ImageService, clock: FakeClock, blobs: MemoryBlobStore, png: bytes
) -> None:
    image = service.store_upload("alice", UploadCommand(chunks=[png])).image
    service.delete("alice", image.image_id)
    blobs.put(image.blob_key, [png])  # bytes back under a deleted image's key
    after_grace(clock)

    assert service.reconcile().orphans_removed == 1
    assert blobs.keys() == []


def test_reconcile_of_a_consistent_store_changes_nothing(
    service: ImageService, clock: FakeClock, blobs: MemoryBlobStore, png: bytes
) -> None:
    images = [
        service.store_upload(user, UploadCommand(chunks=[png])).image for user in ("alice", "bob")
    ]
    after_grace(clock)

    assert service.reconcile() == ReconcileReport(0, 2, 0)
    assert sorted(blobs.keys()) == sorted(image.blob_key for image in images)


def test_reconcile_queues_again_the_thumbnails_still_pending_after_the_grace_period(
    service_with_worker: ImageService,
    jobs: RecordingJobs,
    clock: FakeClock,
    png: bytes,
) -> None:
    service = service_with_worker

    def upload(user: str) -> Image:
        return service.store_upload(user, UploadCommand(chunks=[png])).image

    lost = upload("alice")  # its job was lost: the server died before it ran
    made = upload("bob")
    service.run_job(Job(THUMBNAIL_JOB, made.image_id), final_attempt=True)
    deleted = upload("carol")
    service.delete("carol", deleted.image_id)
    clock.advance(ORPHAN_GRACE + timedelta(seconds=1))
    upload("dave")  # younger than the grace period: its job may be queued yet
    jobs.jobs.clear()

    report = service.reconcile()

    assert report.jobs_requeued == 1
    assert jobs.jobs == [Job(THUMBNAIL_JOB, lost.image_id, user_id="alice")]
    assert service.get("bob", made.image_id).thumbnail_status is ThumbnailStatus.READY


def test_reconcile_without_a_job_queue_queues_nothing(
    service: ImageService, clock: FakeClock, png: bytes
) -> None:
    service.store_upload("alice", UploadCommand(chunks=[png]))
    clock.advance(ORPHAN_GRACE + timedelta(seconds=1))

    assert service.reconcile().jobs_requeued == 0
