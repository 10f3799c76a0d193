"""The table and bucket of the AWS backend, made for development and tests from the definition
the Terraform module holds: the table's keys and indexes are written down once, in HCL.

In AWS (or LocalStack) Terraform makes them; against moto server, or to try the backend quickly,
``imagecore aws-setup`` makes them from the same file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TimeToLiveSpecificationTypeDef
    from mypy_boto3_s3 import S3Client

METADATA_MODULE = Path("terraform/modules/metadata")
_TABLE_RESOURCE = "aws_dynamodb_table"
TTL_KEY = "TimeToLiveSpecification"


class DefinitionError(ValueError):
    """The Terraform file holds no table definition this code can read."""


def find_metadata_module(start: Path | None = None) -> Path:
    """The metadata module of the checkout that ``start`` (default: the working directory) is in."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / METADATA_MODULE
        if (candidate / "main.tf").is_file():
            return candidate
    raise DefinitionError(
        f"no {METADATA_MODULE}/main.tf in {here} or above it: run from an imagecore checkout"
    )


def table_definition(module: Path) -> dict[str, Any]:
    """CreateTable's arguments, but the name, from the module's ``aws_dynamodb_table``; and,
    when the table has one, its time to live as ``TimeToLiveSpecification`` (UpdateTimeToLive's
    argument, which CreateTable does not take: ``create_table`` applies it)."""
    import hcl2  # only development needs it; the service itself never reads HCL

    options = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False)
    with (module / "main.tf").open() as file:
        document = hcl2.load(file, serialization_options=options)
    tables = [
        body
        for resource in document.get("resource", [])
        for kind, named in resource.items()
        if kind == _TABLE_RESOURCE
        for body in named.values()
    ]
    if len(tables) != 1:
        raise DefinitionError(f"{module}/main.tf must define one {_TABLE_RESOURCE}")
    table = tables[0]

    def key_schema(block: dict[str, Any]) -> list[dict[str, str]]:
        schema = [{"AttributeName": block["hash_key"], "KeyType": "HASH"}]
        if block.get("range_key"):
            schema.append({"AttributeName": block["range_key"], "KeyType": "RANGE"})
        return schema

    def projection(block: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {"ProjectionType": block["projection_type"]}
        if block.get("non_key_attributes"):
            result["NonKeyAttributes"] = list(block["non_key_attributes"])
        return result

    definition: dict[str, Any] = {
        "KeySchema": key_schema(table),
        "AttributeDefinitions": [
            {"AttributeName": attribute["name"], "AttributeType": attribute["type"]}
            for attribute in table.get("attribute", [])
        ],
        "BillingMode": table.get("billing_mode", "PAY_PER_REQUEST"),
    }
    indexes = [
        {
            "IndexName": index["name"],
            "KeySchema": key_schema(index),
            "Projection": projection(index),
        }
        for index in table.get("global_secondary_index", [])
    ]
    if indexes:
        definition["GlobalSecondaryIndexes"] = indexes
    ttl = [block for block in table.get("ttl", []) if block.get("enabled") is True]
    if ttl:
        definition[TTL_KEY] = {"AttributeName": ttl[0]["attribute_name"], "Enabled": True}
    return definition


def enable_time_to_live(
    client: DynamoDBClient, name: str, specification: TimeToLiveSpecificationTypeDef
) -> bool:
    """Have DynamoDB remove the table's items once the time in the specification's attribute
    (epoch seconds) has passed; False if it already does."""
    described = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    if (
        described.get("TimeToLiveStatus") in ("ENABLED", "ENABLING")
        and described.get("AttributeName") == specification["AttributeName"]
    ):
        return False
    client.update_time_to_live(TableName=name, TimeToLiveSpecification=specification)
    return True


def create_table(client: DynamoDBClient, name: str, definition: dict[str, Any]) -> bool:
    """Make the table and wait until it is usable, with the definition's time to live (also
    on a table that was there already, made before it had one); False if it was there."""
    arguments = dict(definition)
    ttl: TimeToLiveSpecificationTypeDef | None = arguments.pop(TTL_KEY, None)
    try:
        client.create_table(TableName=name, **arguments)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
            raise
        created = False
    else:
        created = True
    client.get_waiter("table_exists").wait(TableName=name)
    if ttl is not None:
        enable_time_to_live(client, name, ttl)
    return created


def create_bucket(client: S3Client, name: str) -> bool:
    """Make a private, encrypted bucket in the client's region; False if it was there already."""
    try:
        # Asked first: in us-east-1, S3 answers a repeated CreateBucket with success.
        client.head_bucket(Bucket=name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
            raise
    else:
        return False
    region = client.meta.region_name
    arguments: dict[str, Any] = {"Bucket": name}
    if region and region != "us-east-1":
        arguments["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        client.create_bucket(**arguments)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in (
            "BucketAlreadyOwnedByYou",
            "BucketAlreadyExists",
        ):
            raise
        return False
    client.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    client.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    return True
