"""The worker and reconcile Lambda handlers over moto server: S3 notifications of direct uploads
arriving through SQS (as moto's S3 sends them), direct S3 events, and scheduled reconciliation."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
import ulid
from dependency_injector import providers

from adapters.aws import AwsClients
from entrypoints.container import Container, build_container
from entrypoints.queue_worker import Worker
from entrypoints.settings import Settings
from imagecore.model import ImageState
from imagecore.service import upload_key

from ..aws import aws_clients, fresh_resources, moto_server, unique_name
from ..images import image_bytes
from ..lambda_events import LambdaContext, s3_object_created, sqs_event
from .test_lambda_api import fresh_import

SECRET = "worker-tests-secret-of-32-chars!"
PNG = image_bytes("image/png", 6, 5)


@attrs.frozen
class Deployment:
    clients: AwsClients
    table: str
    bucket: str
    container: Container

    @property
    def worker(self) -> Worker:
        return Worker(self.container.images(), self.bucket)

    def land(self, data: bytes, owner: str = "alice") -> tuple[str, str]:
        """A direct upload's bytes arriving in the bucket; its key and upload id."""
        upload_id = str(ulid.ULID())
        key = upload_key(owner, upload_id)
        self.clients.s3.put_object(Bucket=self.bucket, Key=key, Body=data)
        return key, upload_id

    def object_names(self) -> list[str]:
        listing = self.clients.s3.list_objects_v2(Bucket=self.bucket)
        return sorted(item["Key"] for item in listing.get("Contents", []))


@pytest.fixture
def deployment() -> Iterator[Deployment]:
    with aws_clients("server") as clients, fresh_resources(clients) as (table, bucket):
        container = build_container(
            Settings(backend="aws", token_secret=SECRET, table=table, bucket=bucket)
        )
        container.aws.override(providers.Object(clients))
        yield Deployment(clients, table, bucket, container)


def notifying_queue(deployment: Deployment) -> str:
    """An SQS queue the bucket notifies of every object created under uploads/, as Terraform
    configures it; its URL."""
    import boto3

    sqs = boto3.client("sqs", endpoint_url=moto_server().url, region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName=unique_name("jobs"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    deployment.clients.s3.put_bucket_notification_configuration(
        Bucket=deployment.bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/"}]}},
                }
            ]
        },
    )
    return queue_url


def received(queue_url: str, notifications: int) -> dict[str, Any]:
    """The queue's messages up to the ``notifications``-th of an object created (S3 sends a test
    event first), as the event source mapping hands them over."""
    import boto3

    sqs = boto3.client("sqs", endpoint_url=moto_server().url, region_name="us-east-1")
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10

    def count() -> int:
        return sum("Records" in json.loads(message["Body"]) for message in messages)

    while count() < notifications and time.monotonic() < deadline:
        response = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        messages += response.get("Messages", [])
    event = sqs_event(*(message["Body"] for message in messages))
    for record, message in zip(event["Records"], messages, strict=True):
        record["messageId"] = message["MessageId"]
        record["receiptHandle"] = message["ReceiptHandle"]
    return event


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
    assert deployment.object_names() == [f"images/alice/{upload_id}"]


def test_the_same_notification_twice_makes_one_image(deployment: Deployment) -> None:
    key, upload_id = deployment.land(PNG)
    notification = json.dumps({"Records": [s3_object_created(deployment.bucket, key, len(PNG))]})

    first = deployment.worker.handle(sqs_event(notification))
    again = deployment.worker.handle(sqs_event(notification))

    assert first == again == {"batchItemFailures": []}
    assert deployment.container.images().get("alice", upload_id).version == 1
    assert deployment.object_names() == [f"images/alice/{upload_id}"]


def test_an_upload_that_is_no_image_is_removed_and_not_retried(deployment: Deployment) -> None:
    key, upload_id = deployment.land(b"<svg xmlns='http://www.w3.org/2000/svg'/>")
    notification = json.dumps({"Records": [s3_object_created(deployment.bucket, key, 40)]})

    assert deployment.worker.handle(sqs_event(notification)) == {"batchItemFailures": []}

    assert deployment.object_names() == []
    assert deployment.container.repository().get(upload_id) is None


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
    event = sqs_event("not json", json.dumps({"job": "unknown"}), other_bucket, good)

    result = deployment.worker.handle(event)

    failed = [record["messageId"] for record in event["Records"][:3]]
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


# --- the modules Lambda loads -------------------------------------------------------------------


@pytest.fixture
def lambda_environment(deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> Deployment:
    for name, value in {
        "IMAGECORE_BACKEND": "aws",
        "IMAGECORE_TABLE": deployment.table,
        "IMAGECORE_BUCKET": deployment.bucket,
        "IMAGECORE_TOKEN_SECRET": SECRET,
        "AWS_ENDPOINT_URL": moto_server().url,
    }.items():
        monkeypatch.setenv(name, value)
    return deployment


def test_the_worker_module_handles_a_batch(lambda_environment: Deployment) -> None:
    deployment = lambda_environment
    module = fresh_import("entrypoints.lambda_worker")
    key, upload_id = deployment.land(PNG)
    notification = json.dumps({"Records": [s3_object_created(deployment.bucket, key, len(PNG))]})

    assert module.handler(sqs_event(notification), LambdaContext()) == {"batchItemFailures": []}
    assert deployment.container.images().get("alice", upload_id)


def test_the_reconcile_module_finishes_deletes_and_removes_orphans(
    lambda_environment: Deployment,
) -> None:
    deployment = lambda_environment
    images = deployment.container.images()
    from imagecore.service import UploadCommand

    kept = images.upload("alice", UploadCommand(chunks=[PNG]))
    doomed = images.upload("alice", UploadCommand(chunks=[PNG]))
    tombstone = attrs.evolve(doomed, state=ImageState.DELETING, version=doomed.version + 1)
    deployment.container.repository().replace(tombstone, doomed.version)
    deployment.clients.s3.put_object(
        Bucket=deployment.bucket, Key=f"images/alice/{ulid.ULID()}", Body=b"orphan"
    )
    module = fresh_import("entrypoints.lambda_reconcile")

    report = module.handler({"grace_seconds": 0}, LambdaContext())

    assert report == {"deletes_finished": 1, "blobs_checked": 2, "orphans_removed": 1}
    assert deployment.object_names() == [kept.blob_key]


def test_the_scheduled_event_without_input_keeps_young_orphans(
    lambda_environment: Deployment,
) -> None:
    deployment = lambda_environment
    deployment.clients.s3.put_object(
        Bucket=deployment.bucket, Key=f"images/alice/{ulid.ULID()}", Body=b"young"
    )
    module = fresh_import("entrypoints.lambda_reconcile")
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
