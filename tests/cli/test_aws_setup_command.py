"""`imagecore aws-setup` on a moto server: the table from the Terraform module and the bucket,
encrypted and private, made once and left alone when run again; a bucket or table that a failure
left half made is repaired by running it again; a name AWS refuses is reported without a
traceback. And `imagecore aws-empty-bucket`, which tearing a moto deployment down needs."""

from __future__ import annotations

from typing import Any

from click.testing import CliRunner

from adapters.aws import AwsClients
from adapters.aws_resources import ABORT_MULTIPART_RULE, TTL_KEY, empty_bucket, table_definition
from adapters.dynamodb import CONTENT_INDEX, OWNER_INDEX, PUBLIC_INDEX
from entrypoints.cli import main
from tests.support.fake_aws import (
    METADATA_MODULE,
    aws_environment,
    moto_server,
    table_schema,
    unique_name,
)


def test_aws_setup_makes_the_table_from_the_terraform_module_and_is_repeatable() -> None:
    clients = moto_server().clients()
    table, bucket = unique_name("table"), unique_name("bucket")
    arguments = ["aws-setup", "--table", table, "--bucket", bucket]
    env = aws_environment()

    first = CliRunner().invoke(main, arguments, env=env)
    again = CliRunner().invoke(main, arguments, env=env)

    assert first.exit_code == 0, first.output
    assert first.output == f"table {table}: created\nbucket {bucket}: created\n"
    assert again.output == f"table {table}: already there\nbucket {bucket}: already there\n"
    ttl = clients.dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")
    described = clients.dynamodb.describe_table(TableName=table)["Table"]
    assert {index["IndexName"] for index in described["GlobalSecondaryIndexes"]} == {
        OWNER_INDEX,
        PUBLIC_INDEX,
        CONTENT_INDEX,
    }
    encryption = clients.s3.get_bucket_encryption(Bucket=bucket)
    rule = encryption["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert clients.s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"][
        "BlockPublicAcls"
    ]
    clients.dynamodb.delete_table(TableName=table)
    clients.s3.delete_bucket(Bucket=bucket)


def test_aws_setup_with_a_name_aws_refuses_says_so_without_a_traceback() -> None:
    table = unique_name("table")
    arguments = ["aws-setup", "--table", table, "--bucket", "b"]

    result = CliRunner().invoke(main, arguments, env=aws_environment())

    assert result.exit_code == 1
    assert "InvalidBucketName" in result.output
    assert isinstance(result.exception, SystemExit), "a message, not a traceback"
    moto_server().clients().dynamodb.delete_table(TableName=table)


def test_aws_setup_gives_a_table_made_before_it_had_a_time_to_live_one() -> None:
    clients = moto_server().clients()
    table, bucket = unique_name("table"), unique_name("bucket")
    older = {
        key: value
        for key, value in table_definition(METADATA_MODULE).items()
        if key != "TimeToLiveSpecification"
    }
    clients.dynamodb.create_table(TableName=table, **older)

    result = CliRunner().invoke(
        main, ["aws-setup", "--table", table, "--bucket", bucket], env=aws_environment()
    )

    assert result.exit_code == 0, result.output
    assert f"table {table}: already there; put back: time to live" in result.output
    ttl = clients.dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")
    clients.dynamodb.delete_table(TableName=table)


def set_up(table: str, bucket: str) -> Any:
    return CliRunner().invoke(
        main, ["aws-setup", "--table", table, "--bucket", bucket], env=aws_environment()
    )


def remove(clients: AwsClients, table: str, bucket: str) -> None:
    clients.dynamodb.delete_table(TableName=table)
    empty_bucket(clients.s3, bucket)
    clients.s3.delete_bucket(Bucket=bucket)


def test_aws_setup_repairs_a_bucket_a_failure_left_half_made() -> None:
    clients = moto_server().clients()
    table, bucket = unique_name("table"), unique_name("bucket")
    clients.s3.create_bucket(Bucket=bucket)  # and then aws-setup failed: nothing else was set

    repaired = set_up(table, bucket)
    again = set_up(table, bucket)

    assert repaired.exit_code == 0, repaired.output
    assert (
        f"bucket {bucket}: already there; put back: ownership controls, public access block, "
        "encryption, lifecycle rule aborting incomplete multipart uploads\n" in repaired.output
    )
    block = clients.s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert block == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    encryption = clients.s3.get_bucket_encryption(Bucket=bucket)
    rule = encryption["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    ownership = clients.s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]
    assert ownership["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    (lifecycle,) = clients.s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert lifecycle["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert again.exit_code == 0, again.output
    assert again.output == f"table {table}: already there\nbucket {bucket}: already there\n"
    remove(clients, table, bucket)


def test_aws_setup_puts_back_only_what_was_lost_and_keeps_the_buckets_other_rules() -> None:
    clients = moto_server().clients()
    table, bucket = unique_name("table"), unique_name("bucket")
    assert set_up(table, bucket).exit_code == 0
    clients.s3.delete_public_access_block(Bucket=bucket)
    own_rule = {
        "ID": "expire-scratch",
        "Status": "Enabled",
        "Filter": {"Prefix": "scratch/"},
        "Expiration": {"Days": 7},
    }
    clients.s3.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": [own_rule]}
    )

    result = set_up(table, bucket)

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1] == (
        f"bucket {bucket}: already there; put back: public access block, "
        "lifecycle rule aborting incomplete multipart uploads"
    )
    assert clients.s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"][
        "RestrictPublicBuckets"
    ]
    rules = clients.s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert [rule["ID"] for rule in rules] == ["expire-scratch", ABORT_MULTIPART_RULE]
    remove(clients, table, bucket)


def test_aws_setup_adds_the_indexes_a_table_lacks() -> None:
    clients = moto_server().clients()
    table, bucket = unique_name("table"), unique_name("bucket")
    definition = table_schema()
    without_content = [
        index
        for index in definition["GlobalSecondaryIndexes"]
        if index["IndexName"] != CONTENT_INDEX
    ]
    (content_key,) = [
        key["AttributeName"]
        for index in definition["GlobalSecondaryIndexes"]
        if index["IndexName"] == CONTENT_INDEX
        for key in index["KeySchema"]
        if key["KeyType"] == "HASH"
    ]
    attributes = [
        attribute
        for attribute in definition["AttributeDefinitions"]
        if attribute["AttributeName"] != content_key
    ]
    # As a table made before the index was added to the definition.
    made_then = {key: value for key, value in definition.items() if key != TTL_KEY}
    clients.dynamodb.create_table(
        TableName=table,
        **{
            **made_then,
            "AttributeDefinitions": attributes,
            "GlobalSecondaryIndexes": without_content,
        },
    )

    result = set_up(table, bucket)

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == (
        f"table {table}: already there; put back: index {CONTENT_INDEX}, time to live"
    )
    described = clients.dynamodb.describe_table(TableName=table)["Table"]
    (content,) = [
        index
        for index in described["GlobalSecondaryIndexes"]
        if index["IndexName"] == CONTENT_INDEX
    ]
    (wanted,) = [
        index
        for index in definition["GlobalSecondaryIndexes"]
        if index["IndexName"] == CONTENT_INDEX
    ]
    assert (content["KeySchema"], content["Projection"]) == (
        wanted["KeySchema"],
        wanted["Projection"],
    )
    assert set_up(table, bucket).output.splitlines()[0] == f"table {table}: already there"
    remove(clients, table, bucket)


def test_aws_setup_refuses_a_table_whose_keys_differ_and_says_what_to_do() -> None:
    clients = moto_server().clients()
    table, bucket = unique_name("table"), unique_name("bucket")
    clients.dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )

    result = set_up(table, bucket)

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit), "a message, not a traceback"
    assert f"table {table} has the keys id HASH" in result.output
    assert "delete the table" in result.output
    clients.dynamodb.delete_table(TableName=table)


def test_aws_empty_bucket_deletes_every_version_so_the_bucket_can_go() -> None:
    clients = moto_server().clients()
    bucket = unique_name("bucket")
    clients.s3.create_bucket(Bucket=bucket)
    clients.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for body in (b"one", b"two"):
        clients.s3.put_object(Bucket=bucket, Key="images/alice/a", Body=body)
    clients.s3.delete_object(Bucket=bucket, Key="images/alice/a")  # a delete marker

    refused = CliRunner().invoke(
        main, ["aws-empty-bucket", bucket], env=aws_environment(), input="n\n"
    )
    emptied = CliRunner().invoke(main, ["aws-empty-bucket", "--yes", bucket], env=aws_environment())

    assert refused.exit_code == 1
    assert emptied.exit_code == 0, emptied.output
    assert emptied.output == f"bucket {bucket}: 3 object versions and delete markers deleted\n"
    versions = clients.s3.list_object_versions(Bucket=bucket)
    assert versions.get("Versions", []) == versions.get("DeleteMarkers", []) == []
    clients.s3.delete_bucket(Bucket=bucket)
