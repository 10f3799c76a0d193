"""What the tests of the AWS workers share: a deployment's jobs queue on moto server, the
bucket's notifications of direct uploads to it (as Terraform configures them), and the service
wired to the table, bucket and queue."""

from __future__ import annotations

from typing import Any

from dependency_injector import providers

from adapters.aws import AwsClients
from entrypoints.container import Container, build_container
from entrypoints.settings import Settings
from tests.support.fake_aws import REGION, moto_server


def sqs_client(endpoint_url: str | None = None) -> Any:
    import boto3

    return boto3.client("sqs", endpoint_url=endpoint_url or moto_server().url, region_name=REGION)


def deployed_service(
    clients: AwsClients, table: str, bucket: str, queue_url: str, **settings: Any
) -> Container:
    """The service on the deployment's table, bucket and queue, as the API Lambda runs it."""
    container = build_container(
        Settings(
            backend="aws",
            table=table,
            bucket=bucket,
            aws_endpoint_url=moto_server().url,
            aws_region=REGION,
            queue_url=queue_url,
            **settings,
        )
    )
    container.aws.override(providers.Object(clients))
    return container


def notify_queue_of_uploads(clients: AwsClients, bucket: str, queue_url: str) -> None:
    """The bucket notifies the queue of every object created under uploads/, as Terraform
    configures it."""
    queue_arn = sqs_client().get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    clients.s3.put_bucket_notification_configuration(
        Bucket=bucket,
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
