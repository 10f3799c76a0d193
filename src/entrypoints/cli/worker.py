"""`imagecore worker`: the worker Lambda's job, done by a process that polls the queue itself.

Where the Terraform deployment runs on moto server (or anywhere no Lambda code runs), nothing
else consumes the jobs queue: direct uploads would never become images and thumbnails would stay
pending. This command receives the queue's messages in batches, as Lambda's event source mapping
does, hands each batch to the same ``Worker.handle`` as the worker Lambda, and then deletes the
messages that succeeded. A message that failed is left alone: SQS delivers it again once the
queue's visibility timeout is over, its receive count one higher, and moves it to the
dead-letter queue after the redrive policy's ``maxReceiveCount``, exactly as for the Lambda.
"""

from __future__ import annotations

import json
import logging
import signal
import time
from types import FrameType
from typing import TYPE_CHECKING, Any

import attrs
import click

from adapters.errors import MissingResource
from entrypoints.cli.server import _container, _settings
from entrypoints.logs import configure_logging

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

    from entrypoints.aws_lambda.queue_worker import Worker

log = logging.getLogger("imagecore.worker")

BATCH_SIZE = 10
"""The most messages SQS hands over in one receive, and the event source mapping's batch."""

LONGEST_WAIT_SECONDS = 20
"""SQS's longest long poll."""

RETRY_PAUSE_SECONDS = 5.0
"""How long to wait before polling again after the queue could not be reached."""


class _StopWaiting(BaseException):
    """Raised by a stop signal into a receive that waits for messages: none is in hand, so the
    process may stop at once. A BaseException, so that no ``except Exception`` on the way up
    (botocore's retries) takes it for a failed request."""


class StopSignals:
    """SIGINT and SIGTERM stop the worker after the batch in hand: a signal while it waits for
    messages ends the wait; one while it works on a batch lets it finish and delete what
    succeeded first. A second signal during a batch stops at once; that batch's messages come
    back after their visibility timeout, as after a crash."""

    def __init__(self) -> None:
        self.requested = False
        self.waiting = False

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, number: int, frame: FrameType | None) -> None:
        name = signal.Signals(number).name
        if self.waiting:
            self.requested = True
            raise _StopWaiting
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        log.info("%s: stopping after the batch in hand", name)


@attrs.define
class Totals:
    received: int = 0
    done: int = 0
    failed: int = 0
    batches: int = 0


class QueuePoller:
    """Receives the queue's messages in batches of up to ``BATCH_SIZE``, hands each batch to
    ``worker`` and deletes the messages it did not report failed."""

    def __init__(
        self,
        sqs: SQSClient,
        queue_url: str,
        worker: Worker,
        wait_seconds: int,
        stop: StopSignals,
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.worker = worker
        self.wait_seconds = wait_seconds
        self.stop = stop
        self.totals = Totals()
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["VisibilityTimeout"]
        )["Attributes"]
        self.visibility_timeout = int(attributes.get("VisibilityTimeout", "30"))

    def receive(self) -> list[Any]:
        try:
            self.stop.waiting = True
            if self.stop.requested:
                return []
            response = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=BATCH_SIZE,
                WaitTimeSeconds=self.wait_seconds,
                # The receive count tells the worker a job's final attempt.
                MessageSystemAttributeNames=["All"],
            )
        except _StopWaiting:
            return []
        finally:
            self.stop.waiting = False
        return list(response.get("Messages", []))

    def handle(self, messages: list[Any]) -> None:
        started = time.monotonic()
        from entrypoints.aws_lambda.queue_worker import sqs_event  # see worker()

        event = sqs_event(messages)
        failures = {
            failure["itemIdentifier"] for failure in self.worker.handle(event)["batchItemFailures"]
        }
        succeeded = [message for message in messages if message["MessageId"] not in failures]
        if succeeded:
            self.delete(succeeded)
        elapsed = time.monotonic() - started
        self.totals.batches += 1
        self.totals.received += len(messages)
        self.totals.done += len(succeeded)
        self.totals.failed += len(messages) - len(succeeded)
        log.info(
            "batch of %d messages: %d done, %d failed (left for SQS to deliver again)",
            len(messages),
            len(succeeded),
            len(messages) - len(succeeded),
            extra={"seconds": round(elapsed, 3)},
        )
        if elapsed > self.visibility_timeout:
            log.warning(
                "the batch took %.1f s, more than the queue's visibility timeout (%d s): its "
                "messages may have been delivered again meanwhile",
                elapsed,
                self.visibility_timeout,
            )

    def delete(self, messages: list[Any]) -> None:
        response = self.sqs.delete_message_batch(
            QueueUrl=self.queue_url,
            Entries=[
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                for index, message in enumerate(messages)
            ],
        )
        for failure in response.get("Failed", []):
            # The work is done; a message delivered again finds nothing left to do.
            log.warning(
                "could not delete message %s: %s",
                messages[int(failure["Id"])]["MessageId"],
                failure.get("Message", failure["Code"]),
            )

    def run(self, once: bool) -> None:
        """Poll until a stop signal, or with ``once`` until a receive brings nothing new."""
        from botocore.exceptions import BotoCoreError, ClientError

        seen: set[str] = set()
        while not self.stop.requested:
            try:
                messages = self.receive()
            except (BotoCoreError, ClientError) as exc:
                if once:
                    raise click.ClickException(f"cannot receive from the queue: {exc}") from None
                log.error("cannot receive from the queue, trying again: %s", exc)
                self._pause(RETRY_PAUSE_SECONDS)
                continue
            if once and all(message["MessageId"] in seen for message in messages):
                # Empty, or only what failed already (a queue without visibility timeout).
                return
            seen.update(message["MessageId"] for message in messages)
            if messages:
                self.handle(messages)

    def _pause(self, seconds: float) -> None:
        try:
            self.stop.waiting = True
            time.sleep(seconds)
        except _StopWaiting:
            pass
        finally:
            self.stop.waiting = False


def _sqs_client(endpoint_url: str | None, region: str | None) -> SQSClient:
    from adapters.aws import make_sqs_client

    return make_sqs_client(endpoint_url, region)


@click.command()
@click.option("--queue-url", help="The jobs queue (a Terraform output) [env IMAGECORE_QUEUE_URL]")
@click.option(
    "--once",
    is_flag=True,
    help="Handle what the queue holds, then exit (messages that failed stay on the queue)",
)
@click.option(
    "--wait-seconds",
    type=click.IntRange(0, LONGEST_WAIT_SECONDS),
    default=LONGEST_WAIT_SECONDS,
    show_default=True,
    help="How long each receive waits for messages (SQS long polling)",
)
def worker(queue_url: str | None, once: bool, wait_seconds: int) -> None:
    """Take the jobs queue's messages and do them, as the worker Lambda does: direct uploads
    become images, thumbnails are made. For the aws backend where no Lambda runs (Terraform
    applied on moto server). Prints the totals as JSON when it stops."""
    settings = _settings(queue_url=queue_url)
    if settings.backend != "aws":
        raise click.UsageError(
            "imagecore worker takes jobs from an SQS queue and needs IMAGECORE_BACKEND=aws, "
            f"not {settings.backend!r} (imagecore serve does its own jobs on that backend)"
        )
    if settings.queue_url is None:
        raise click.UsageError(
            "imagecore worker needs the jobs queue: set IMAGECORE_QUEUE_URL (a Terraform "
            "output, in the .env of `imagecore terraform-env`) or pass --queue-url"
        )
    # Only now: the settings have checked that the aws extra (boto3) is installed, which the
    # service alone is not installed with, and every `imagecore` command imports this module.
    from botocore.exceptions import BotoCoreError, ClientError

    from entrypoints.aws_lambda.queue_worker import worker_for

    container = _container(settings)
    stop = StopSignals()
    try:
        poller = QueuePoller(
            _sqs_client(settings.aws_endpoint_url, settings.aws_region),
            settings.queue_url,
            worker_for(container),
            wait_seconds,
            stop,
        )
    except MissingResource as exc:
        raise click.ClickException(str(exc)) from None
    except (BotoCoreError, ClientError) as exc:
        raise click.ClickException(
            f"cannot use the queue IMAGECORE_QUEUE_URL={settings.queue_url}: {exc}"
        ) from None
    configure_logging()
    stop.install()
    log.info(
        "imagecore worker polling %s (table %s, bucket %s, visibility timeout %d s)",
        settings.queue_url,
        settings.table,
        settings.bucket,
        poller.visibility_timeout,
    )
    poller.run(once)
    log.info("imagecore worker stopped", extra=attrs.asdict(poller.totals))
    click.echo(json.dumps(attrs.asdict(poller.totals)))
