"""The worker and reconcile Lambda handlers over moto server: S3 notifications of direct uploads
arriving through SQS (as moto's S3 sends them), direct S3 events, thumbnail jobs the service puts
on SQS, and scheduled reconciliation."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import time
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import httpx
import pytest
import ulid
from PIL import Image as PillowImage

from adapters.aws import AwsClients
from adapters.sqs import job_from_message, job_message
from entrypoints.aws_lambda.queue_worker import Worker
from entrypoints.container import Container
from imagecore.blob_keys import rendition_key, upload_key
from imagecore.commands import DirectUploadCommand, UploadCommand
from imagecore.errors import NotFound
from imagecore.model import THUMBNAIL_JOB, Image, ImageState, Job, ThumbnailStatus
from imagecore.results import Stored, UploadSlot
from tests.support.aws_deployment import deployed_service, notify_queue_of_uploads, sqs_client
from tests.support.fake_aws import aws_clients, fresh_resources, moto_server, unique_name
from tests.support.lambda_events import (
    LambdaContext,
    fresh_import,
    s3_object_created,
    sqs_event,
    thumbnail_job,
)
from tests.support.sample_images import image_bytes, large_png

SECRET = "worker-tests-secret-of-32-chars!"
PNG = image_bytes("image/png", 6, 5)
MAX_DIRECT_UPLOAD_BYTES = 4096
ATTEMPTS = 3


@attrs.frozen
class Deployment:
    clients: AwsClients
    table: str
    bucket: str
    queue_url: str
    """The jobs queue: the service's thumbnail jobs go to it (and, with `notifying_queue`, the
    bucket's notifications of direct uploads), as in the Terraform deployment."""
    container: Container

    @property
    def worker(self) -> Worker:
        return Worker(self.container.images(), self.bucket, ATTEMPTS)

    def slot(self, owner: str = "alice", **details: object) -> UploadSlot:
        """A direct upload slot, as a client gets one through the API."""
        command = DirectUploadCommand.from_mapping({"content_type": "image/png", **details})
        slot = self.container.images().create_upload(owner, command)
        assert isinstance(slot, UploadSlot), slot
        return slot

    def land(self, data: bytes, owner: str = "alice", **details: object) -> tuple[str, str]:
        """A direct upload's bytes arriving in the bucket under a slot's key; that key and the
        upload id."""
        upload_id = self.slot(owner, **details).upload_id
        key = upload_key(owner, upload_id)
        self.clients.s3.put_object(Bucket=self.bucket, Key=key, Body=data)
        return key, upload_id

    def object_names(self) -> list[str]:
        listing = self.clients.s3.list_objects_v2(Bucket=self.bucket)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def record(self, image_id: str) -> Image | None:
        return self.container.repository().get(image_id)


@pytest.fixture
def deployment() -> Iterator[Deployment]:
    with aws_clients("server") as clients, fresh_resources(clients) as (table, bucket):
        sqs = sqs_client()
        queue_url = sqs.create_queue(QueueName=unique_name("jobs"))["QueueUrl"]
        container = deployed_service(
            clients,
            table,
            bucket,
            queue_url,
            token_secret=SECRET,
            max_direct_upload_bytes=MAX_DIRECT_UPLOAD_BYTES,
            thumbnail_attempts=ATTEMPTS,
        )
        try:
            yield Deployment(clients, table, bucket, queue_url, container)
        finally:
            sqs.delete_queue(QueueUrl=queue_url)


def notifying_queue(deployment: Deployment) -> str:
    """The jobs queue, which the bucket now notifies of every object created under uploads/, as
    Terraform configures it; its URL."""
    notify_queue_of_uploads(deployment.clients, deployment.bucket, deployment.queue_url)
    return deployment.queue_url


def _receive(queue_url: str, enough: Callable[[list[dict[str, Any]]], bool]) -> dict[str, Any]:
    """The queue's messages until ``enough`` of them (or 10 s), as the event source mapping hands
    them over: each with its receipt handle and the attributes SQS gave it."""
    sqs = sqs_client()
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while not enough(messages) and time.monotonic() < deadline:
        response = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"]
        )
        messages += response.get("Messages", [])
    event = sqs_event(*(message["Body"] for message in messages))
    for record, message in zip(event["Records"], messages, strict=True):
        record["messageId"] = message["MessageId"]
        record["receiptHandle"] = message["ReceiptHandle"]
        record["attributes"] = message["Attributes"]
    return event


def received(queue_url: str, notifications: int) -> dict[str, Any]:
    """The queue's messages up to the ``notifications``-th of an object created (S3 sends a test
    event first)."""
    return _receive(
        queue_url,
        lambda messages: sum("Records" in json.loads(m["Body"]) for m in messages) >= notifications,
    )


def received_jobs(queue_url: str, jobs: int = 1) -> dict[str, Any]:
    """The queue's messages up to the ``jobs``-th job."""
    return _receive(
        queue_url, lambda messages: sum("job" in json.loads(m["Body"]) for m in messages) >= jobs
    )


def redeliver(queue_url: str, event: dict[str, Any]) -> dict[str, Any]:
    """The batch's messages again, as SQS redelivers messages reported failed (once their
    visibility timeout is over): their receive counts one higher."""
    sqs = sqs_client()
    for record in event["Records"]:
        sqs.change_message_visibility(
            QueueUrl=queue_url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=0
        )
    return _receive(queue_url, lambda messages: len(messages) >= len(event["Records"]))


# --- direct uploads -----------------------------------------------------------------------------


def test_an_upload_notified_through_sqs_becomes_an_image(deployment: Deployment) -> None:
    queue_url = notifying_queue(deployment)
    key, upload_id = deployment.land(PNG)
    event = received(queue_url, notifications=1)
    notification = json.loads(event["Records"][-1]["body"])
    assert urllib.parse.unquote_plus(notification["Records"][0]["s3"]["object"]["key"]) == key

    assert deployment.worker.handle(event) == {"batchItemFailures": []}

    image = deployment.container.images().get("alice", upload_id)
    assert (image.content_type, image.width, image.height, image.size) == (
        "image/png",
        6,
        5,
        len(PNG),
    )
    assert deployment.object_names() == [image.blob_key]


def test_a_file_posted_to_the_slots_url_becomes_the_slots_image(deployment: Deployment) -> None:
    queue_url = notifying_queue(deployment)
    slot = deployment.slot(title="Beach", tags=["sea", "sand"], filename="beach.png")

    # As a browser or curl posts the form: every field of the slot, then the file, last.
    posted = httpx.post(
        slot.url,
        data={**slot.fields, "Content-Type": "image/png"},
        files={"file": ("beach.png", PNG, "image/png")},
    )
    assert posted.is_success, posted.text
    event = received(queue_url, notifications=1)

    assert deployment.worker.handle(event) == {"batchItemFailures": []}

    image = deployment.container.images().get("alice", slot.upload_id)
    assert (image.image_id, image.title, image.tags, image.filename) == (
        slot.upload_id,
        "Beach",
        ("sea", "sand"),
        "beach.png",
    )
    assert (image.size, image.width, image.height, image.state) == (
        len(PNG),
        6,
        5,
        ImageState.ACTIVE,
    )
    assert deployment.object_names() == [image.blob_key]  # the uploaded object is gone
    stored = deployment.clients.s3.get_object(Bucket=deployment.bucket, Key=image.blob_key)
    assert stored["Body"].read() == PNG

    # SQS delivers at least once: the same notification again changes nothing.
    assert deployment.worker.handle(event) == {"batchItemFailures": []}
    assert deployment.container.images().get("alice", slot.upload_id) == image
    assert deployment.object_names() == [image.blob_key]


def test_the_post_policy_allows_only_the_slots_upload(deployment: Deployment) -> None:
    slot = deployment.slot()
    policy = json.loads(base64.b64decode(slot.fields["policy"]))
    conditions = policy["conditions"]

    assert slot.max_bytes == MAX_DIRECT_UPLOAD_BYTES
    assert ["content-length-range", 1, MAX_DIRECT_UPLOAD_BYTES] in conditions
    assert ["starts-with", "$Content-Type", "image/"] in conditions
    assert {"key": upload_key("alice", slot.upload_id)} in conditions
    assert {"bucket": deployment.bucket} in conditions
    assert {"x-amz-server-side-encryption": "AES256"} in conditions
    assert slot.fields["key"] == upload_key("alice", slot.upload_id)
    assert slot.fields["x-amz-server-side-encryption"] == "AES256"
    expiration = datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    # boto3 dates the policy from its own clock, ExpiresIn whole seconds later: the policy ends
    # within the second before the slot does, never after it.
    assert slot.expires_at - timedelta(seconds=2) < expiration <= slot.expires_at


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(large_png(MAX_DIRECT_UPLOAD_BYTES + 1), id="too-large"),
        pytest.param(b"<!doctype html><html><body>not an image</body></html>", id="html"),
    ],
)
def test_a_refused_upload_is_removed_and_its_slot_closed(
    deployment: Deployment, data: bytes
) -> None:
    key, upload_id = deployment.land(data, title="Refused")
    notification = json.dumps({"Records": [s3_object_created(deployment.bucket, key, len(data))]})

    assert deployment.worker.handle(sqs_event(notification)) == {"batchItemFailures": []}

    assert deployment.object_names() == []
    slot = deployment.record(upload_id)
    assert slot is not None
    assert slot.state is ImageState.DELETED
    assert slot.title == ""
    with pytest.raises(NotFound):
        deployment.container.images().get("alice", upload_id)
    # A late redelivery finds the slot closed and nothing to do.
    assert deployment.worker.handle(sqs_event(notification)) == {"batchItemFailures": []}
    assert deployment.record(upload_id) == slot


def test_an_upload_without_the_slots_sha256_is_removed_and_its_slot_closed(
    deployment: Deployment,
) -> None:
    other = image_bytes("image/png", 7, 5)
    key, upload_id = deployment.land(other, sha256=hashlib.sha256(PNG).hexdigest())
    notification = json.dumps({"Records": [s3_object_created(deployment.bucket, key, len(other))]})

    assert deployment.worker.handle(sqs_event(notification)) == {"batchItemFailures": []}

    assert deployment.object_names() == []
    slot = deployment.record(upload_id)
    assert slot is not None
    assert slot.state is ImageState.DELETED
    with pytest.raises(NotFound):
        deployment.container.images().get("alice", upload_id)


def test_two_slots_filled_with_the_same_bytes_make_one_image(deployment: Deployment) -> None:
    sha256 = hashlib.sha256(PNG).hexdigest()
    first_key, first_id = deployment.land(PNG, sha256=sha256)
    second_key, second_id = deployment.land(PNG, sha256=sha256)
    records = [
        s3_object_created(deployment.bucket, key, len(PNG)) for key in (first_key, second_key)
    ]

    for record in records:
        event = sqs_event(json.dumps({"Records": [record]}))
        assert deployment.worker.handle(event) == {"batchItemFailures": []}

    image = deployment.container.images().get("alice", first_id)
    assert image.sha256 == sha256
    assert deployment.object_names() == [image.blob_key]
    second = deployment.record(second_id)
    assert second is not None
    assert second.state is ImageState.DELETED
    again = deployment.container.images().create_upload(
        "alice", DirectUploadCommand.from_mapping({"content_type": "image/png", "sha256": sha256})
    )
    assert again == Stored(image, created=False)


def test_bytes_without_a_slot_are_removed_and_ignored(deployment: Deployment) -> None:
    upload_id = str(ulid.ULID())
    key = upload_key("alice", upload_id)
    deployment.clients.s3.put_object(Bucket=deployment.bucket, Key=key, Body=PNG)
    notification = json.dumps({"Records": [s3_object_created(deployment.bucket, key, len(PNG))]})

    assert deployment.worker.handle(sqs_event(notification)) == {"batchItemFailures": []}

    assert deployment.object_names() == []
    assert deployment.record(upload_id) is None


def test_the_same_notification_twice_makes_one_image(deployment: Deployment) -> None:
    key, upload_id = deployment.land(PNG)
    notification = json.dumps({"Records": [s3_object_created(deployment.bucket, key, len(PNG))]})

    first = deployment.worker.handle(sqs_event(notification))
    image = deployment.container.images().get("alice", upload_id)
    again = deployment.worker.handle(sqs_event(notification))

    assert first == again == {"batchItemFailures": []}
    assert deployment.container.images().get("alice", upload_id) == image
    assert deployment.object_names() == [image.blob_key]


def test_an_upload_that_is_no_image_is_removed_and_not_retried(deployment: Deployment) -> None:
    data = b"<svg xmlns='http://www.w3.org/2000/svg'/>"
    key, upload_id = deployment.land(data)
    notification = json.dumps({"Records": [s3_object_created(deployment.bucket, key, len(data))]})

    assert deployment.worker.handle(sqs_event(notification)) == {"batchItemFailures": []}

    assert deployment.object_names() == []
    slot = deployment.record(upload_id)
    assert slot is not None
    assert slot.state is ImageState.DELETED


def test_an_owner_with_url_special_characters_is_decoded_from_the_event(
    deployment: Deployment,
) -> None:
    key, upload_id = deployment.land(PNG, owner="ann+b@example.com")
    notification = json.dumps({"Records": [s3_object_created(deployment.bucket, key, len(PNG))]})
    assert "%2B" in notification
    assert "%40" in notification

    assert deployment.worker.handle(sqs_event(notification)) == {"batchItemFailures": []}

    assert deployment.container.images().get("ann+b@example.com", upload_id).user_id == (
        "ann+b@example.com"
    )


def test_only_the_messages_that_fail_are_reported_for_retry(deployment: Deployment) -> None:
    key, upload_id = deployment.land(PNG)
    good = json.dumps({"Records": [s3_object_created(deployment.bucket, key, len(PNG))]})
    other_bucket = json.dumps({"Records": [s3_object_created("elsewhere", key, len(PNG))]})
    unknown_job = json.dumps({"job": "resize", "image_id": upload_id})
    event = sqs_event("not json", json.dumps({"job": "unknown"}), other_bucket, unknown_job, good)

    result = deployment.worker.handle(event)

    failed = [record["messageId"] for record in event["Records"][:4]]
    assert result == {"batchItemFailures": [{"itemIdentifier": mid} for mid in failed]}
    assert deployment.container.images().get("alice", upload_id).image_id == upload_id


def test_s3s_test_event_is_acknowledged(deployment: Deployment) -> None:
    test_event = json.dumps(
        {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": deployment.bucket}
    )
    assert deployment.worker.handle(sqs_event(test_event)) == {"batchItemFailures": []}


def test_an_s3_event_delivered_straight_to_the_function_is_handled(
    deployment: Deployment,
) -> None:
    key, upload_id = deployment.land(PNG)

    deployment.worker.handle({"Records": [s3_object_created(deployment.bucket, key, len(PNG))]})

    assert deployment.container.images().get("alice", upload_id).size == len(PNG)


# --- thumbnails ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "thumbnail_format"), [("image/png", "WEBP"), ("image/jpeg", "JPEG")]
)
def test_an_uploads_thumbnail_job_goes_through_sqs_to_the_worker(
    deployment: Deployment, content_type: str, thumbnail_format: str
) -> None:
    images = deployment.container.images()
    image = images.store_upload(
        "alice", UploadCommand(chunks=[image_bytes(content_type, 600, 400)])
    ).image

    event = received_jobs(deployment.queue_url)
    assert [json.loads(record["body"]) for record in event["Records"]] == [
        {"job": "thumbnail", "image_id": image.image_id, "user_id": "alice"}
    ]
    assert images.get("alice", image.image_id).thumbnail_status is ThumbnailStatus.PENDING

    assert deployment.worker.handle(event) == {"batchItemFailures": []}

    ready = images.get("alice", image.image_id)
    assert ready.thumbnail_status is ThumbnailStatus.READY
    assert deployment.object_names() == sorted([image.blob_key, *rendition_keys(ready)])
    thumbnail = images.thumbnail("alice", image.image_id)
    assert thumbnail.presigned_url is not None
    fetched = httpx.get(thumbnail.presigned_url)
    assert fetched.status_code == 200
    with PillowImage.open(io.BytesIO(fetched.content)) as picture:
        assert picture.format == thumbnail_format
        assert max(picture.size) <= 256
        assert picture.size == (256, 171)


def rendition_keys(image: Image) -> list[str]:
    """Every rendition the image's record names, in every format: six for the two renditions."""
    keys = [
        rendition_key(image.blob_key, rendition, content_type)
        for rendition in image.renditions
        for content_type in rendition.content_types
    ]
    assert len(keys) == 6
    return keys


def test_a_job_message_names_the_owner_and_one_queued_without_it_is_still_a_job() -> None:
    job = Job(THUMBNAIL_JOB, "01JD0000000000000000000009", user_id="alice")

    assert job_from_message(json.loads(job_message(job))) == job
    # Queued by a version of the service from before jobs carried their owner: still done.
    assert job_from_message(json.loads(thumbnail_job(job.image_id))) == Job(
        THUMBNAIL_JOB, job.image_id, user_id=None
    )
    assert job_from_message({"job": "thumbnail", "image_id": job.image_id, "user_id": 7}) == Job(
        THUMBNAIL_JOB, job.image_id, user_id=None
    )


def test_a_direct_uploads_thumbnail_job_follows_its_notification(deployment: Deployment) -> None:
    queue_url = notifying_queue(deployment)
    _, upload_id = deployment.land(PNG)
    assert deployment.worker.handle(received(queue_url, notifications=1)) == {
        "batchItemFailures": []
    }

    event = received_jobs(queue_url)
    assert deployment.worker.handle(event) == {"batchItemFailures": []}

    image = deployment.container.images().get("alice", upload_id)
    assert image.thumbnail_status is ThumbnailStatus.READY
    assert deployment.object_names() == sorted([image.blob_key, *rendition_keys(image)])


def test_a_failing_thumbnail_is_retried_then_marked_failed(deployment: Deployment) -> None:
    images = deployment.container.images()
    image = images.store_upload(
        "alice", UploadCommand(chunks=[image_bytes("image/png", 40, 30)])
    ).image
    # The stored original no longer decodes.
    deployment.clients.s3.put_object(
        Bucket=deployment.bucket, Key=image.blob_key, Body=b"\x89PNG\r\n\x1a\n garbage"
    )

    event = received_jobs(deployment.queue_url)
    for attempt in range(1, ATTEMPTS):
        assert event["Records"][0]["attributes"]["ApproximateReceiveCount"] == str(attempt)
        assert deployment.worker.handle(event) == {
            "batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]
        }
        assert images.get("alice", image.image_id).thumbnail_status is ThumbnailStatus.PENDING
        event = redeliver(deployment.queue_url, event)

    assert event["Records"][0]["attributes"]["ApproximateReceiveCount"] == str(ATTEMPTS)
    assert deployment.worker.handle(event) == {"batchItemFailures": []}

    assert images.get("alice", image.image_id).thumbnail_status is ThumbnailStatus.FAILED
    assert deployment.object_names() == [image.blob_key]
    with pytest.raises(NotFound):
        images.thumbnail("alice", image.image_id)
    # A later delivery of the job has nothing left to do.
    assert deployment.worker.handle(sqs_event(thumbnail_job(image.image_id))) == {
        "batchItemFailures": []
    }
    assert images.get("alice", image.image_id).thumbnail_status is ThumbnailStatus.FAILED


def test_a_thumbnailer_that_raises_is_retried_until_the_final_attempt(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = deployment.container.images()
    image = images.store_upload("alice", UploadCommand(chunks=[PNG])).image

    def broken(*args: object) -> bytes:
        raise RuntimeError("the thumbnailer broke")

    monkeypatch.setattr(deployment.container.renderer(), "render", broken)
    job = thumbnail_job(image.image_id)

    first = sqs_event(job, receive_count=1)
    assert deployment.worker.handle(first) == {
        "batchItemFailures": [{"itemIdentifier": first["Records"][0]["messageId"]}]
    }
    assert images.get("alice", image.image_id).thumbnail_status is ThumbnailStatus.PENDING

    final = sqs_event(job, receive_count=ATTEMPTS)
    assert deployment.worker.handle(final) == {"batchItemFailures": []}
    assert images.get("alice", image.image_id).thumbnail_status is ThumbnailStatus.FAILED


# --- the modules Lambda loads -------------------------------------------------------------------


@pytest.fixture
def lambda_environment(deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> Deployment:
    for name, value in {
        "IMAGECORE_BACKEND": "aws",
        "IMAGECORE_TABLE": deployment.table,
        "IMAGECORE_BUCKET": deployment.bucket,
        "IMAGECORE_TOKEN_SECRET": SECRET,
        "AWS_ENDPOINT_URL": moto_server().url,
        "IMAGECORE_QUEUE_URL": deployment.queue_url,
        "IMAGECORE_THUMBNAIL_ATTEMPTS": "2",
    }.items():
        monkeypatch.setenv(name, value)
    return deployment


def test_the_worker_module_handles_a_batch(lambda_environment: Deployment) -> None:
    deployment = lambda_environment
    module = fresh_import("entrypoints.aws_lambda.worker")
    key, upload_id = deployment.land(PNG)
    notification = json.dumps({"Records": [s3_object_created(deployment.bucket, key, len(PNG))]})

    assert module.handler(sqs_event(notification), LambdaContext()) == {"batchItemFailures": []}
    assert deployment.container.images().get("alice", upload_id)


def test_the_worker_module_counts_a_jobs_attempts_from_the_environment(
    lambda_environment: Deployment,
) -> None:
    deployment = lambda_environment
    image = deployment.container.images().store_upload("alice", UploadCommand(chunks=[PNG])).image
    deployment.clients.s3.put_object(Bucket=deployment.bucket, Key=image.blob_key, Body=b"junk")
    module = fresh_import("entrypoints.aws_lambda.worker")
    job = thumbnail_job(image.image_id)

    first = sqs_event(job, receive_count=1)
    assert module.handler(first, LambdaContext()) == {
        "batchItemFailures": [{"itemIdentifier": first["Records"][0]["messageId"]}]
    }
    assert module.handler(sqs_event(job, receive_count=2), LambdaContext()) == {
        "batchItemFailures": []
    }
    assert deployment.record(image.image_id).thumbnail_status is ThumbnailStatus.FAILED


def test_the_reconcile_module_finishes_deletes_removes_orphans_and_requeues_lost_jobs(
    lambda_environment: Deployment,
) -> None:
    deployment = lambda_environment
    images = deployment.container.images()
    kept = images.store_upload("alice", UploadCommand(chunks=[PNG])).image
    doomed = images.store_upload("alice", UploadCommand(chunks=[PNG])).image
    tombstone = attrs.evolve(doomed, state=ImageState.DELETING, version=doomed.version + 1)
    deployment.container.repository().replace(tombstone, doomed.version)
    deployment.clients.s3.put_object(
        Bucket=deployment.bucket, Key=f"images/alice/{ulid.ULID()}", Body=b"orphan"
    )
    received_jobs(deployment.queue_url, 2)  # the uploads' jobs, taken by a worker that died
    module = fresh_import("entrypoints.aws_lambda.reconcile")

    report = module.handler({"grace_seconds": 0}, LambdaContext())

    assert report == {
        "deletes_finished": 1,
        "blobs_checked": 2,
        "orphans_removed": 1,
        "jobs_requeued": 1,
    }
    assert deployment.object_names() == [kept.blob_key]
    (requeued,) = received_jobs(deployment.queue_url)["Records"]
    assert json.loads(requeued["body"]) == {
        "job": "thumbnail",
        "image_id": kept.image_id,
        "user_id": "alice",
    }


def test_the_scheduled_event_without_input_keeps_young_orphans(
    lambda_environment: Deployment,
) -> None:
    deployment = lambda_environment
    deployment.clients.s3.put_object(
        Bucket=deployment.bucket, Key=f"images/alice/{ulid.ULID()}", Body=b"young"
    )
    module = fresh_import("entrypoints.aws_lambda.reconcile")
    scheduled = {
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-22T12:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/imagecore-reconcile"],
        "detail": {},
    }

    assert module.handler(scheduled, LambdaContext())["orphans_removed"] == 0
    assert len(deployment.object_names()) == 1


def test_reconcile_aborts_the_multipart_upload_of_an_expired_upload_session(
    deployment: Deployment,
) -> None:
    from dependency_injector import providers

    from imagecore.commands import NewMultipartUpload
    from imagecore.upload_sessions import UploadSession
    from tests.support.doubles import FakeClock

    clock = FakeClock(datetime.now(UTC))
    deployment.container.clock.override(providers.Object(clock))
    deployment.container.images.reset()
    images = deployment.container.images()
    session = images.open_multipart("alice", NewMultipartUpload(size=20_000_000))
    assert isinstance(session, UploadSession)
    s3 = deployment.clients.s3
    assert len(s3.list_multipart_uploads(Bucket=deployment.bucket).get("Uploads", [])) == 1
    clock.advance(timedelta(hours=24, seconds=1))

    assert images.reconcile(timedelta(0)).deletes_finished == 1

    assert s3.list_multipart_uploads(Bucket=deployment.bucket).get("Uploads", []) == []
    slot = deployment.record(session.upload_id)
    assert slot is not None
    assert slot.state is ImageState.DELETED
