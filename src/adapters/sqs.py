"""Background jobs as messages on an SQS queue, done by the worker Lambda (`lambda_worker`).

SQS delivers each message at least once and delivers it again when the worker reports it
failed; the worker reads the delivery count to tell the final attempt.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from imagecore.model import Job

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

JOB_FIELD = "job"


def job_message(job: Job) -> str:
    fields = {JOB_FIELD: job.kind, "image_id": job.image_id}
    if job.user_id is not None:
        fields["user_id"] = job.user_id
    return json.dumps(fields)


def job_from_message(message: Mapping[str, Any]) -> Job | None:
    """The job a queue message carries, or None if it is some other kind of message. A message
    without ``user_id`` (queued before jobs carried their owner) is a job of no known owner."""
    kind = message.get(JOB_FIELD)
    image_id = message.get("image_id")
    if not isinstance(kind, str) or not isinstance(image_id, str):
        return None
    user_id = message.get("user_id")
    return Job(kind=kind, image_id=image_id, user_id=user_id if isinstance(user_id, str) else None)


class SqsJobQueue:
    """The ``JobQueue`` port on an SQS queue (``IMAGECORE_QUEUE_URL``)."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def enqueue(self, job: Job) -> None:
        self._client.send_message(QueueUrl=self._queue_url, MessageBody=job_message(job))
