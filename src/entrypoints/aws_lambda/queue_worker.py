"""The background worker, fed by the jobs queue (SQS) on AWS Lambda (`aws_lambda.worker`), or
by `imagecore worker` polling the queue where no Lambda runs (`cli.worker`).

The queue carries two kinds of message: S3's object-created notifications for direct uploads
(each becomes an image once its bytes pass the same validation as any upload), and jobs the
service enqueued (`adapters.sqs`: thumbnails). The handler takes S3 events delivered straight
to Lambda too. A message that fails is reported back on its own (``batchItemFailures``), so
SQS retries only it; a job's last attempt (its receive count reaching ``job_attempts``) records
the failure instead, and anything else that keeps failing moves to the dead-letter queue.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from adapters.s3 import key_of_object
from adapters.sqs import job_from_message
from imagecore.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from imagecore.service import ImageService

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageTypeDef

    from entrypoints.container import Container

log = logging.getLogger("imagecore.worker")

REFUSED_UPLOADS = (InvalidInput, UnsupportedMediaType, PayloadTooLarge)
"""A direct upload refused for what it is: its object is removed, and a retry cannot help."""


class UnknownMessage(ValueError):
    """A message the worker cannot act on: left to the queue's retries and dead-letter queue."""


class Worker:
    def __init__(self, images: ImageService, bucket: str | None, job_attempts: int = 3) -> None:
        self.images = images
        self.bucket = bucket
        self.job_attempts = job_attempts

    def handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        failures = []
        for record in event.get("Records", []):
            if record.get("eventSource") == "aws:sqs":
                receives = record.get("attributes", {}).get("ApproximateReceiveCount", "1")
                final = int(receives) >= self.job_attempts if str(receives).isdigit() else True
                try:
                    self.on_message(json.loads(record["body"]), final)
                except Exception:
                    log.exception("message %s failed", record.get("messageId"))
                    failures.append({"itemIdentifier": record["messageId"]})
            else:  # S3 invoking the function directly retries the whole event on failure
                self.on_s3_record(record)
        return {"batchItemFailures": failures}

    def on_message(self, message: object, final_attempt: bool = True) -> None:
        if not isinstance(message, Mapping):
            raise UnknownMessage(f"a message must be a JSON object, not {message!r}")
        if message.get("Event") == "s3:TestEvent":  # S3 sends it once when notifications are set
            return
        job = job_from_message(message)
        if job is not None:
            self.images.run_job(job, final_attempt)
            return
        records = message.get("Records")
        if not isinstance(records, list):
            raise UnknownMessage(f"no job of this kind: {sorted(message)}")
        for record in records:
            self.on_s3_record(record)

    def on_s3_record(self, record: Mapping[str, Any]) -> None:
        if record.get("eventSource") != "aws:s3" or not str(record.get("eventName", "")).startswith(
            "ObjectCreated:"
        ):
            raise UnknownMessage(f"not an S3 object-created event: {record.get('eventName')!r}")
        bucket = record["s3"]["bucket"]["name"]
        if bucket != self.bucket:
            raise UnknownMessage(f"an event of bucket {bucket!r}, not of {self.bucket!r}")
        # Event notifications URL-encode object names, with "+" for a space.
        key = key_of_object(urllib.parse.unquote_plus(record["s3"]["object"]["key"]))
        try:
            image = self.images.complete_upload(key)
        except REFUSED_UPLOADS as exc:
            log.warning("direct upload %s refused and removed: %s", key, exc)
            return
        if image is not None:
            log.info("direct upload %s is image %s of %s", key, image.image_id, image.user_id)


def worker_for(container: Container) -> Worker:
    """The worker of a container's service and settings: the worker Lambda's, and the one
    `imagecore worker` runs where no Lambda does."""
    return Worker(
        container.images(), container.config.bucket(), container.config.thumbnail_attempts()
    )


def sqs_event(messages: Sequence[MessageTypeDef]) -> dict[str, Any]:
    """Messages as SQS's ``ReceiveMessage`` returns them (with their system attributes), in the
    shape Lambda's event source mapping hands such a batch to the worker: what a process that
    polls the queue itself passes to ``Worker.handle``."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": dict(message.get("Attributes", {})),
                "messageAttributes": {},
                "md5OfBody": message.get("MD5OfBody"),
                "eventSource": "aws:sqs",
            }
            for message in messages
        ]
    }
