"""`imagecore aws-setup` on a moto server: the table from the Terraform module and the bucket,
encrypted and private, made once and left alone when run again; a name AWS refuses is reported
without a traceback."""

from __future__ import annotations

from click.testing import CliRunner

from adapters.aws_resources import table_definition
from adapters.dynamodb import CONTENT_INDEX, OWNER_INDEX, PUBLIC_INDEX
from entrypoints.cli import main
from tests.support.fake_aws import METADATA_MODULE, aws_environment, moto_server, unique_name


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
    assert f"table {table}: already there" in result.output
    ttl = clients.dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")
    clients.dynamodb.delete_table(TableName=table)
    clients.s3.delete_bucket(Bucket=bucket)
