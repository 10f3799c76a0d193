"""`imagecore worker` on moto server, the stand-in for the worker Lambda that moto does not run:
direct uploads announced on the queue become images, pending thumbnails are made, a message
that fails stays on the queue for SQS to deliver again while the rest of its batch is deleted,
and it refuses to start, naming the setting, without a queue. Run as a process of its own, as a
developer runs it, so that its signals and logs are its own."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from click.testing import CliRunner

from adapters.aws import AwsClients
from adapters.aws_resources import set_up_bucket, set_up_table
from entrypoints.cli import main
from entrypoints.container import Container
from imagecore.blob_keys import upload_key
from imagecore.commands import DirectUploadCommand, UploadCommand
from imagecore.model import ImageState, ThumbnailStatus
from imagecore.results import UploadSlot
from tests.support.aws_deployment import deployed_service, notify_queue_of_uploads, sqs_client
from tests.support.fake_aws import (
    MotoServer,
    aws_environment,
    fresh_resources,
    moto_server,
    table_schema,
    unique_name,
)
from tests.support.http_server import imagecore_command
from tests.support.sample_images import image_bytes

SECRET = "worker-command-secret-of-32-chars"
PNG = image_bytes("image/png", 6, 5)


@attrs.frozen
class Deployment:
    clients: AwsClients
    table: str
    bucket: str
    queue_url: str
    container: Container
    """The service on the same table, bucket and queue, as the API would be."""

    def environment(self, **names: str) -> dict[str, str]:
        """The worker's environment, as `imagecore terraform-env` writes it, with ``names``."""
        settings = {
            "IMAGECORE_BACKEND": "aws",
            "IMAGECORE_TABLE": self.table,
            "IMAGECORE_BUCKET": self.bucket,
            "IMAGECORE_QUEUE_URL": self.queue_url,
            "IMAGECORE_TOKEN_SECRET": SECRET,
        }
        return aws_environment(**{**settings, **names})

    def queue_counts(self) -> tuple[int, int]:
        """Messages waiting, and messages received but neither deleted nor visible again."""
        attributes = sqs_client(moto_server().url).get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return (
            int(attributes["ApproximateNumberOfMessages"]),
            int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        )


@pytest.fixture
def deployment() -> Iterator[Deployment]:
    with fresh_resources(moto_server().clients()) as (table, bucket):
        clients = moto_server().clients()
        sqs = sqs_client(moto_server().url)
        queue_url = sqs.create_queue(
            # Short, so a test sees a failed message delivered again without waiting long.
            QueueName=unique_name("jobs"),
            Attributes={"VisibilityTimeout": "2"},
        )["QueueUrl"]
        container = deployed_service(clients, table, bucket, queue_url, token_secret=SECRET)
        try:
            yield Deployment(clients, table, bucket, queue_url, container)
        finally:
            sqs.delete_queue(QueueUrl=queue_url)


def announce_uploads(deployment: Deployment) -> None:
    """The bucket notifies the queue of objects created under uploads/, as Terraform sets it."""
    notify_queue_of_uploads(deployment.clients, deployment.bucket, deployment.queue_url)


def run_worker(
    deployment: Deployment, tmp_path: Path, *arguments: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [imagecore_command(), "worker", "--once", *arguments],
        env=deployment.environment(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def totals(result: subprocess.CompletedProcess[str]) -> dict[str, int]:
    assert result.returncode == 0, result.stderr
    log_lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert any(line["message"].startswith("imagecore worker polling") for line in log_lines)
    counts: dict[str, int] = json.loads(result.stdout)
    return counts


def test_a_direct_upload_filled_on_s3_becomes_an_image_with_its_thumbnail(
    deployment: Deployment, tmp_path: Path
) -> None:
    announce_uploads(deployment)
    command = DirectUploadCommand.from_mapping({"content_type": "image/png", "title": "beach"})
    slot = deployment.container.images().create_upload("alice", command)
    assert isinstance(slot, UploadSlot)
    deployment.clients.s3.put_object(
        Bucket=deployment.bucket, Key=upload_key("alice", slot.upload_id), Body=PNG
    )

    result = run_worker(deployment, tmp_path, "--wait-seconds", "1")

    image = deployment.container.images().get("alice", slot.upload_id)
    assert (image.state, image.title, image.size) == (ImageState.ACTIVE, "beach", len(PNG))
    # The upload's thumbnail job, queued by the worker itself, is done in the same run.
    assert image.thumbnail_status is ThumbnailStatus.READY
    # S3's test event, the upload's notification, its thumbnail job: all done and deleted.
    assert totals(result) == {"received": 3, "done": 3, "failed": 0, "batches": 2}
    assert deployment.queue_counts() == (0, 0)


def test_a_pending_thumbnail_becomes_ready(deployment: Deployment, tmp_path: Path) -> None:
    images = deployment.container.images()
    image = images.store_upload("alice", UploadCommand(chunks=[image_bytes("image/png", 60, 40)]))
    image_id = image.image.image_id
    assert images.get("alice", image_id).thumbnail_status is ThumbnailStatus.PENDING

    result = run_worker(deployment, tmp_path, "--wait-seconds", "1")

    assert totals(result) == {"received": 1, "done": 1, "failed": 0, "batches": 1}
    assert images.get("alice", image_id).thumbnail_status is ThumbnailStatus.READY
    assert images.thumbnail("alice", image_id).presigned_url is not None
    assert deployment.queue_counts() == (0, 0)


def test_messages_that_fail_stay_on_the_queue_and_the_rest_of_the_batch_is_deleted(
    deployment: Deployment, tmp_path: Path
) -> None:
    images = deployment.container.images()
    image_id = images.store_upload("alice", UploadCommand(chunks=[PNG])).image.image_id
    sqs = sqs_client(moto_server().url)
    poison = ["not json", json.dumps({"job": "resize", "image_id": image_id})]
    for body in poison:
        sqs.send_message(QueueUrl=deployment.queue_url, MessageBody=body)

    # No wait: the run ends before the failed messages' visibility timeout (2 s) is over.
    result = run_worker(deployment, tmp_path, "--wait-seconds", "0")

    assert totals(result) == {"received": 3, "done": 1, "failed": 2, "batches": 1}
    assert images.get("alice", image_id).thumbnail_status is ThumbnailStatus.READY
    assert deployment.queue_counts() == (0, 2), "the failed ones are in flight, not deleted"
    failed = [
        line
        for line in map(json.loads, result.stderr.splitlines())
        if line["message"].startswith("message ") and line["level"] == "ERROR"
    ]
    assert len(failed) == 2, result.stderr
    # SQS delivers them again once their visibility timeout is over, one receive more each.
    again: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while len(again) < 2 and time.monotonic() < deadline:
        again += sqs.receive_message(
            QueueUrl=deployment.queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        ).get("Messages", [])
    assert sorted(message["Body"] for message in again) == sorted(poison)
    assert [message["Attributes"]["ApproximateReceiveCount"] for message in again] == ["2", "2"]


def test_a_stop_signal_ends_the_wait_for_messages(tmp_path: Path) -> None:
    # A moto server of its own, thrown away with all it holds: a receive that waits 20 s holds
    # the shared one (which serves one request at a time) for as long.
    server = MotoServer()
    try:
        clients = server.clients()
        table, bucket = unique_name("table"), unique_name("bucket")
        set_up_table(clients.dynamodb, table, table_schema())
        set_up_bucket(clients.s3, bucket)
        queue_url = sqs_client(server.url).create_queue(QueueName=unique_name("jobs"))["QueueUrl"]
        environment = {
            **aws_environment(
                IMAGECORE_BACKEND="aws",
                IMAGECORE_TABLE=table,
                IMAGECORE_BUCKET=bucket,
                IMAGECORE_QUEUE_URL=queue_url,
                IMAGECORE_TOKEN_SECRET=SECRET,
            ),
            "AWS_ENDPOINT_URL": server.url,
        }
        process = subprocess.Popen(
            [imagecore_command(), "worker"],  # waits 20 s per receive
            env=environment,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stderr is not None
        try:
            first = json.loads(process.stderr.readline())
            assert first["message"].startswith("imagecore worker polling"), first
            time.sleep(0.5)  # into the receive
            signalled = time.monotonic()
            process.send_signal(signal.SIGTERM)
            stdout, stderr = process.communicate(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert time.monotonic() - signalled < 5, "stopped without waiting for the receive"
        assert process.returncode == 0, stderr
        assert json.loads(stdout) == {"received": 0, "done": 0, "failed": 0, "batches": 0}
        assert json.loads(stderr.splitlines()[-1])["message"] == "imagecore worker stopped"
    finally:
        server.stop()


def test_the_worker_refuses_to_start_without_a_queue_naming_the_setting(
    deployment: Deployment,
) -> None:
    environment = deployment.environment(IMAGECORE_QUEUE_URL="")  # empty is unset

    result = CliRunner().invoke(main, ["worker", "--once"], env=environment)

    assert result.exit_code == 2
    assert "IMAGECORE_QUEUE_URL" in result.output
    assert "Traceback" not in result.output


def test_the_worker_refuses_another_backend_than_aws(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["worker", "--once"],
        env={"IMAGECORE_BACKEND": "filesystem", "IMAGECORE_DATA_DIR": str(tmp_path)},
    )

    assert result.exit_code == 2
    assert "IMAGECORE_BACKEND=aws" in result.output
    assert not list(tmp_path.iterdir()), "refused before anything was made"


def test_a_queue_that_does_not_exist_is_named(deployment: Deployment, tmp_path: Path) -> None:
    missing = f"{moto_server().url}/123456789012/{unique_name('nothing')}"

    result = subprocess.run(
        [imagecore_command(), "worker", "--once", "--wait-seconds", "0"],
        env=deployment.environment(IMAGECORE_QUEUE_URL=missing),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1
    assert f"IMAGECORE_QUEUE_URL={missing}" in result.stderr
    assert "Traceback" not in result.stderr
