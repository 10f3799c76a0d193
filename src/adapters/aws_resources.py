"""The table and bucket of the AWS backend, made for development and tests from the definition
the Terraform module holds: the table's keys and indexes are written down once, in HCL.

In AWS (or LocalStack) Terraform makes them; against moto server, or to try the backend quickly,
``imagecore aws-setup`` makes them from the same file. Running it again converges: whatever a
failure left out (the bucket's settings, an index) is put back, and what is in place is left.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
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


@attrs.frozen
class SetUp:
    """What making sure of a resource did: made it, or found it and put back what it lacked."""

    created: bool
    repaired: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.created:
            return "created"
        if self.repaired:
            return f"already there; put back: {', '.join(self.repaired)}"
        return "already there"


class TableMismatch(Exception):
    """The table exists but differs from its definition in a way no call can change in place."""


INDEX_BUILD_TIMEOUT = 30 * 60.0
"""How long an index being added may take to build: on a big table, minutes."""


def set_up_table(
    client: DynamoDBClient,
    name: str,
    definition: dict[str, Any],
    *,
    poll_seconds: float = 5.0,
) -> SetUp:
    """Make the table and wait until it is usable. If it is there already, check its keys and
    add the indexes of the definition it lacks, and its time to live; TableMismatch if its keys
    or an index's keys differ from the definition's, which only a new table (or index) can fix."""
    arguments = dict(definition)
    ttl: TimeToLiveSpecificationTypeDef | None = arguments.pop(TTL_KEY, None)
    try:
        client.create_table(TableName=name, **arguments)
    except ClientError as exc:
        if _code(exc) != "ResourceInUseException":
            raise
    else:
        client.get_waiter("table_exists").wait(TableName=name)
        if ttl is not None:
            enable_time_to_live(client, name, ttl)
        return SetUp(created=True)
    table = client.describe_table(TableName=name)["Table"]
    if table["KeySchema"] != definition["KeySchema"]:
        raise TableMismatch(
            f"table {name} has the keys {_keys(table['KeySchema'])}, its definition "
            f"{_keys(definition['KeySchema'])}: keys cannot change, so delete the table (its "
            "items go with it) and run this again, or give another name"
        )
    present = {index["IndexName"]: index for index in table.get("GlobalSecondaryIndexes", [])}
    added: list[str] = []
    for index in definition.get("GlobalSecondaryIndexes", []):
        found = present.get(index["IndexName"])
        if found is None:
            _add_index(client, name, definition, index, poll_seconds)
            added.append(f"index {index['IndexName']}")
        elif found["KeySchema"] != index["KeySchema"] or _projection(found) != _projection(index):
            raise TableMismatch(
                f"table {name} has an index {index['IndexName']} with the keys "
                f"{_keys(found['KeySchema'])} and projection {_projection(found)}, its "
                f"definition {_keys(index['KeySchema'])} and {_projection(index)}: an index "
                "cannot change, so delete that index (or the table) and run this again"
            )
    if ttl is not None and enable_time_to_live(client, name, ttl):
        added.append("time to live")
    return SetUp(created=False, repaired=tuple(added))


def _add_index(
    client: DynamoDBClient,
    table: str,
    definition: dict[str, Any],
    index: Any,
    poll_seconds: float,
) -> None:
    # One index per UpdateTable, and none while another is building: DynamoDB refuses both.
    _wait_until_active(client, table, poll_seconds)
    client.update_table(
        TableName=table,
        AttributeDefinitions=definition["AttributeDefinitions"],
        GlobalSecondaryIndexUpdates=[{"Create": index}],
    )
    _wait_until_active(client, table, poll_seconds)


def _wait_until_active(client: DynamoDBClient, table: str, poll_seconds: float) -> None:
    """Until the table and each of its indexes are ACTIVE (an index being added backfills)."""
    deadline = time.monotonic() + INDEX_BUILD_TIMEOUT
    while True:
        described = client.describe_table(TableName=table)["Table"]
        statuses = [described.get("TableStatus")] + [
            index.get("IndexStatus") for index in described.get("GlobalSecondaryIndexes", [])
        ]
        if all(status == "ACTIVE" for status in statuses):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"table {table} is not ACTIVE yet: {statuses}")
        time.sleep(poll_seconds)


def _keys(schema: Any) -> str:
    return ", ".join(f"{key['AttributeName']} {key['KeyType']}" for key in schema)


def _projection(index: Mapping[str, Any]) -> str:
    projection = index.get("Projection", {})
    attributes = sorted(projection.get("NonKeyAttributes", []))
    kind = str(projection.get("ProjectionType", "ALL"))
    return f"{kind} {', '.join(attributes)}".strip() if attributes else kind


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


# The bucket's settings, as Terraform's storage module makes them, less what only a deployment
# needs (versioning, access logs, notifications, CORS, the TLS-only policy).
_OWNERSHIP: Any = {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
_PUBLIC_ACCESS_BLOCK: Any = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
_ENCRYPTION: Any = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}
_ENCRYPTING = frozenset({"AES256", "aws:kms", "aws:kms:dsse"})
ABORT_MULTIPART_RULE = "abort-incomplete-multipart-uploads"
_ABORT_MULTIPART: Any = {
    "ID": ABORT_MULTIPART_RULE,
    "Status": "Enabled",
    "Filter": {"Prefix": ""},
    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
}


@attrs.frozen
class _BucketSetting:
    """One setting of the bucket: how to read it (None where the bucket has none), whether what
    was read is as wanted, and how to put it, given what was read."""

    name: str
    read: Callable[[S3Client, str], Any]
    holds: Callable[[Any], bool]
    put: Callable[[S3Client, str, Any], object]


def _read(operation: str, field: str, missing: str) -> Callable[[S3Client, str], Any]:
    def read(client: S3Client, bucket: str) -> Any:
        try:
            return getattr(client, operation)(Bucket=bucket)[field]
        except ClientError as exc:
            if _code(exc) != missing:
                raise
            return None

    return read


def _encrypts(found: Any) -> bool:
    # A key of the owner's own (aws:kms) is kept: never turned back into S3's.
    return any(
        rule.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") in _ENCRYPTING
        for rule in (found or {}).get("Rules", [])
    )


def _aborts_multipart_uploads(found: Any) -> bool:
    return any(
        rule.get("Status") == "Enabled"
        and not (rule.get("Filter") or {}).get("Prefix", rule.get("Prefix", ""))
        and rule.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation", 2) <= 1
        for rule in found or []
    )


def _put_lifecycle(client: S3Client, bucket: str, found: Any) -> object:
    # A PUT replaces every rule: the bucket's others are kept beside this one.
    kept = [rule for rule in found or [] if rule.get("ID") != ABORT_MULTIPART_RULE]
    return client.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": [*kept, _ABORT_MULTIPART]}
    )


_BUCKET_SETTINGS = (
    _BucketSetting(
        "ownership controls",
        _read(
            "get_bucket_ownership_controls", "OwnershipControls", "OwnershipControlsNotFoundError"
        ),
        lambda found: found == _OWNERSHIP,
        lambda client, bucket, _: client.put_bucket_ownership_controls(
            Bucket=bucket, OwnershipControls=_OWNERSHIP
        ),
    ),
    _BucketSetting(
        "public access block",
        _read(
            "get_public_access_block",
            "PublicAccessBlockConfiguration",
            "NoSuchPublicAccessBlockConfiguration",
        ),
        lambda found: found == _PUBLIC_ACCESS_BLOCK,
        lambda client, bucket, _: client.put_public_access_block(
            Bucket=bucket, PublicAccessBlockConfiguration=_PUBLIC_ACCESS_BLOCK
        ),
    ),
    _BucketSetting(
        "encryption",
        _read(
            "get_bucket_encryption",
            "ServerSideEncryptionConfiguration",
            "ServerSideEncryptionConfigurationNotFoundError",
        ),
        _encrypts,
        lambda client, bucket, _: client.put_bucket_encryption(
            Bucket=bucket, ServerSideEncryptionConfiguration=_ENCRYPTION
        ),
    ),
    _BucketSetting(
        "lifecycle rule aborting incomplete multipart uploads",
        _read("get_bucket_lifecycle_configuration", "Rules", "NoSuchLifecycleConfiguration"),
        _aborts_multipart_uploads,
        _put_lifecycle,
    ),
)


def set_up_bucket(client: S3Client, name: str) -> SetUp:
    """Make a private, encrypted bucket in the client's region, or find it; either way, read
    each of its settings and put again those it lacks (each PUT is idempotent), so that a bucket
    a failure left half made is repaired by running this again."""
    created = _create_bucket(client, name)
    repaired = []
    for setting in _BUCKET_SETTINGS:
        found = None if created else setting.read(client, name)
        if created or not setting.holds(found):
            setting.put(client, name, found)
            repaired.append(setting.name)
    return SetUp(created=created, repaired=() if created else tuple(repaired))


def _create_bucket(client: S3Client, name: str) -> bool:
    """Make the bucket; False if it was there already."""
    try:
        # Asked first: in us-east-1, S3 answers a repeated CreateBucket with success.
        client.head_bucket(Bucket=name)
    except ClientError as exc:
        if _code(exc) not in ("404", "NoSuchBucket"):
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
        if _code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
        return False
    return True


def empty_bucket(client: S3Client, name: str) -> int:
    """Delete every object version and delete marker of the bucket; returns how many went."""
    deleted = 0
    for page in client.get_paginator("list_object_versions").paginate(Bucket=name):
        doomed: list[Any] = [
            {"Key": entry["Key"], "VersionId": entry["VersionId"]}
            for entry in [*page.get("DeleteMarkers", []), *page.get("Versions", [])]
        ]
        for start in range(0, len(doomed), 1000):  # DeleteObjects takes 1000 at most
            client.delete_objects(
                Bucket=name, Delete={"Objects": doomed[start : start + 1000], "Quiet": True}
            )
        deleted += len(doomed)
    return deleted
