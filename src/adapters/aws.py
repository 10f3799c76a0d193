"""The boto3 clients of the AWS backend: made once per process and shared by every request.

Low-level boto3 clients are thread-safe, so one of each serves all the server's threads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import boto3
from botocore.config import Config
from botocore.exceptions import NoRegionError

from adapters.errors import MissingResource

__all__ = ["AwsClients", "MissingResource", "client_config", "make_clients", "make_sqs_client"]

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

# botocore's standard retry mode retries throttling and transient errors with exponential
# backoff and jitter; 5 attempts in all ride out a short burst without hiding an outage.
_RETRIES = {"mode": "standard", "total_max_attempts": 5}
# Enough pooled connections for the server's request threads plus S3's transfer threads.
_MAX_POOL_CONNECTIONS = 64


@attrs.frozen
class AwsClients:
    dynamodb: DynamoDBClient
    s3: S3Client


def client_config(endpoint_url: str | None, service: str = "dynamodb") -> Config:
    """Retries and pools; for S3, Signature Version 4 (presigned URLs included) and, against a
    local endpoint (LocalStack, moto server), path-style addressing: ``http://host:port/bucket/
    key`` needs no DNS name per bucket."""
    config = Config(
        retries=_RETRIES,  # type: ignore[arg-type]
        max_pool_connections=_MAX_POOL_CONNECTIONS,
        connect_timeout=5,
        read_timeout=60,
    )
    if service == "s3":
        config = config.merge(
            Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"} if endpoint_url else None,
            )
        )
    return config


def make_clients(endpoint_url: str | None = None, region: str | None = None) -> AwsClients:
    """Clients for the region and credentials of the standard AWS variables and files."""
    session = boto3.session.Session(region_name=region)
    try:
        return AwsClients(
            dynamodb=session.client(
                "dynamodb", endpoint_url=endpoint_url, config=client_config(endpoint_url)
            ),
            s3=session.client(
                "s3", endpoint_url=endpoint_url, config=client_config(endpoint_url, "s3")
            ),
        )
    except NoRegionError:
        raise MissingResource(
            "no AWS region is set: set AWS_REGION (or AWS_DEFAULT_REGION, or a profile's region)"
        ) from None


def make_sqs_client(endpoint_url: str | None = None, region: str | None = None) -> SQSClient:
    """A client for the jobs queue; made only where jobs go to SQS, as each client costs start-up
    time on Lambda."""
    session = boto3.session.Session(region_name=region)
    try:
        return session.client("sqs", endpoint_url=endpoint_url, config=client_config(endpoint_url))
    except NoRegionError:
        raise MissingResource(
            "no AWS region is set: set AWS_REGION (or AWS_DEFAULT_REGION, or a profile's region)"
        ) from None
