"""The command line and the settings, as a shell user meets them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from adapters.aws_resources import table_definition
from adapters.dynamodb import CONTENT_INDEX, OWNER_INDEX, PUBLIC_INDEX
from entrypoints.cli import main
from entrypoints.http.auth import TokenAuthority
from entrypoints.settings import Settings, SettingsError
from imagecore.errors import Unauthenticated
from tests.aws import (
    FAKE_AWS_ENVIRONMENT,
    METADATA_MODULE,
    fresh_resources,
    moto_server,
    unique_name,
)


def test_the_defaults_need_no_configuration() -> None:
    settings = Settings.from_env({})
    assert settings.backend == "filesystem"
    assert settings.data_dir == Path("imagecore-data")
    assert settings.max_upload_bytes == 50 * 1024 * 1024
    assert settings.url_ttl_seconds == 900
    assert settings.token_secret is None


def test_settings_come_from_the_environment_and_flags_win() -> None:
    env = {
        "IMAGECORE_BACKEND": "memory",
        "IMAGECORE_DATA_DIR": "/srv/images",
        "IMAGECORE_MAX_UPLOAD_BYTES": "1000",
        "IMAGECORE_URL_TTL_SECONDS": "60",
        "IMAGECORE_TOKEN_SECRET": "s" * 40,
    }
    settings = Settings.from_env(env, data_dir=Path("/elsewhere"), backend=None)
    assert settings.backend == "memory"
    assert settings.data_dir == Path("/elsewhere")
    assert settings.max_upload_bytes == 1000
    assert settings.url_ttl_seconds == 60
    assert settings.token_secret == "s" * 40
    assert "s" * 40 not in repr(settings)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"IMAGECORE_BACKEND": "postgres"}, "IMAGECORE_BACKEND"),
        ({"IMAGECORE_BACKEND": "aws"}, "IMAGECORE_TABLE and IMAGECORE_BUCKET"),
        ({"IMAGECORE_BACKEND": "aws", "IMAGECORE_TABLE": "t"}, "IMAGECORE_BUCKET"),
        ({"IMAGECORE_BACKEND": "aws", "IMAGECORE_BUCKET": "b"}, "IMAGECORE_TABLE"),
        ({"IMAGECORE_MAX_UPLOAD_BYTES": "lots"}, "IMAGECORE_MAX_UPLOAD_BYTES"),
        ({"IMAGECORE_MAX_UPLOAD_BYTES": "0"}, "IMAGECORE_MAX_UPLOAD_BYTES"),
        ({"IMAGECORE_URL_TTL_SECONDS": "-5"}, "IMAGECORE_URL_TTL_SECONDS"),
        ({"IMAGECORE_TOKEN_SECRET": "short"}, "IMAGECORE_TOKEN_SECRET"),
    ],
)
def test_a_wrong_setting_is_named_in_the_error(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(env)


def test_token_prints_a_token_the_server_accepts(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["token", "alice", "--data-dir", str(tmp_path)], env={})
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    secret = (tmp_path / "secret.key").read_text().encode()
    assert TokenAuthority(secret).verify(token) == "alice"
    with pytest.raises(Unauthenticated):
        TokenAuthority(b"x" * 64).verify(token)


def test_token_for_an_invalid_user_id_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["token", "../root", "--data-dir", str(tmp_path)], env={})
    assert result.exit_code == 2
    assert "user id" in result.output


def test_reconcile_removes_orphaned_bytes_and_reports_it_as_json(tmp_path: Path) -> None:
    from adapters.filesystem import FilesystemBlobStore
    from entrypoints.container import BLOB_DIR

    FilesystemBlobStore(tmp_path / BLOB_DIR).put("images/alice/01JD0000000000000000000001", [b"x"])
    runner = CliRunner()
    arguments = ["reconcile", "--data-dir", str(tmp_path)]

    kept = runner.invoke(main, arguments, env={})
    removed = runner.invoke(main, [*arguments, "--grace-seconds", "0"], env={})

    assert kept.exit_code == 0, kept.output
    assert json.loads(kept.stdout) == {
        "deletes_finished": 0,
        "blobs_checked": 0,
        "orphans_removed": 0,
    }, "younger than the default grace period: may be an upload under way"
    assert removed.exit_code == 0, removed.output
    assert json.loads(removed.stdout)["orphans_removed"] == 1
    assert list((tmp_path / BLOB_DIR).rglob("*")) == [
        path for path in (tmp_path / BLOB_DIR).rglob("*") if path.is_dir()
    ]


def fake_terraform(directory: Path, stdout: str, exit_code: int = 0) -> Path:
    """A stand-in `terraform` that prints ``stdout`` for `output -json imagecore_environment`."""
    script = directory / "terraform"
    script.write_text(
        "#!/bin/sh\n"
        '[ "$2 $3 $4" = "output -json imagecore_environment" ] || exit 9\n'
        f"cat <<'END'\n{stdout}\nEND\nexit {exit_code}\n"
    )
    script.chmod(0o755)
    return script


def test_terraform_env_writes_the_outputs_as_a_sourceable_env_file(tmp_path: Path) -> None:
    outputs = {"IMAGECORE_TABLE": "images", "IMAGECORE_BUCKET": "b-1", "ODD": "it's $HOME"}
    terraform = fake_terraform(tmp_path, json.dumps(outputs))
    env_file = tmp_path / ".env"

    result = CliRunner().invoke(
        main,
        ["terraform-env", "--dir", str(tmp_path), "--terraform", str(terraform),
         "--output", str(env_file)],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    sourced = subprocess.run(
        ["sh", "-c", f"set -a; . {env_file}; env"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert {f"{name}={value}" for name, value in outputs.items()} <= set(sourced)


@pytest.mark.parametrize(
    ("stdout", "exit_code", "message"),
    [
        ("No outputs found", 1, "was it applied there?"),
        ('["not", "a", "map"]', 0, "not a map of strings"),
        ("{", 0, "is not JSON"),
    ],
)
def test_terraform_env_explains_what_went_wrong(
    tmp_path: Path, stdout: str, exit_code: int, message: str
) -> None:
    terraform = fake_terraform(tmp_path, stdout, exit_code)
    result = CliRunner().invoke(
        main, ["terraform-env", "--dir", str(tmp_path), "--terraform", str(terraform)]
    )
    assert result.exit_code == 1
    assert message in result.output


def test_serve_with_a_bad_setting_exits_with_the_reason(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["serve", "--data-dir", str(tmp_path)], env={"IMAGECORE_MAX_UPLOAD_BYTES": "huge"}
    )
    assert result.exit_code == 2
    assert "IMAGECORE_MAX_UPLOAD_BYTES" in result.output


def test_serve_with_an_unusable_data_dir_names_it(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = CliRunner().invoke(main, ["serve", "--data-dir", str(blocker / "data")], env={})
    assert result.exit_code == 1
    assert str(blocker / "data") in result.output


def test_the_secret_is_made_once_and_then_kept(tmp_path: Path) -> None:
    runner = CliRunner()
    runner.invoke(main, ["token", "alice", "--data-dir", str(tmp_path)], env={})
    first = (tmp_path / "secret.key").read_text()
    runner.invoke(main, ["token", "bob", "--data-dir", str(tmp_path)], env={})
    assert (tmp_path / "secret.key").read_text() == first


def test_a_configured_secret_is_used_instead_of_the_data_dir(tmp_path: Path) -> None:
    secret = "c" * 48
    result = CliRunner().invoke(
        main,
        ["token", "alice", "--data-dir", str(tmp_path)],
        env={"IMAGECORE_TOKEN_SECRET": secret},
    )
    assert TokenAuthority(secret.encode()).verify(result.output.strip()) == "alice"
    assert not (tmp_path / "secret.key").exists()


def test_the_aws_backend_is_configured_by_the_standard_variables() -> None:
    settings = Settings.from_env(
        {
            "IMAGECORE_BACKEND": "aws",
            "IMAGECORE_TABLE": "images",
            "IMAGECORE_BUCKET": "blobs",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:4566",
            "AWS_DEFAULT_REGION": "eu-west-1",
        }
    )
    assert (settings.table, settings.bucket) == ("images", "blobs")
    assert settings.aws_endpoint_url == "http://127.0.0.1:4566"
    assert settings.aws_region == "eu-west-1"
    assert settings.to_environ()["IMAGECORE_TABLE"] == "images"


def aws_environment(**names: str) -> dict[str, str]:
    return {**FAKE_AWS_ENVIRONMENT, "AWS_ENDPOINT_URL": moto_server().url, **names}


@pytest.mark.parametrize("missing", ["table", "bucket"])
def test_serve_with_a_missing_table_or_bucket_names_it_before_serving(
    tmp_path: Path, missing: str
) -> None:
    with fresh_resources(moto_server().clients()) as (table, bucket):
        names = {"IMAGECORE_TABLE": table, "IMAGECORE_BUCKET": bucket}
        names[f"IMAGECORE_{missing.upper()}"] = "not-there"
        result = CliRunner().invoke(
            main,
            ["serve", "--backend", "aws", "--data-dir", str(tmp_path)],
            env=aws_environment(**names),
        )
    assert result.exit_code == 1
    assert "not-there" in result.output
    assert "does not exist" in result.output
    assert "Traceback" not in result.output


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


def test_the_terraform_table_has_exactly_the_keys_and_indexes_the_adapter_queries() -> None:
    definition = table_definition(METADATA_MODULE)
    keys = {key["AttributeName"]: key["KeyType"] for key in definition["KeySchema"]}
    assert keys == {"pk": "HASH", "sk": "RANGE"}
    indexes = {index["IndexName"]: index for index in definition["GlobalSecondaryIndexes"]}
    assert set(indexes) == {OWNER_INDEX, PUBLIC_INDEX, CONTENT_INDEX}
    content = indexes.pop(CONTENT_INDEX)
    # Duplicate detection reads the key of a match, then the image itself.
    assert [key["AttributeName"] for key in content["KeySchema"]] == ["content_key", "position"]
    assert content["Projection"]["ProjectionType"] == "KEYS_ONLY"
    for name, index in indexes.items():
        assert [key["AttributeName"] for key in index["KeySchema"]] == [name, "position"]
        # The filters the adapter applies in the index read these without touching the table.
        assert set(index["Projection"]["NonKeyAttributes"]) >= {"content_type", "title_folded"}
    assert definition["BillingMode"] == "PAY_PER_REQUEST"


def test_settings_handed_to_the_server_workers_are_the_same_settings() -> None:
    given = Settings(
        backend="aws",
        data_dir=Path("/srv/images"),
        max_upload_bytes=7,
        token_secret="t" * 40,
        url_ttl_seconds=60,
        table="images",
        bucket="blobs",
        queue_url="https://sqs.example/queue",
        max_direct_upload_bytes=9,
        max_image_pixels=11,
        thumbnail_side=64,
        thumbnail_attempts=5,
        rate_limit_per_second=3,
        rate_limit_burst=4,
        client_timeout_seconds=2,
    )
    assert Settings.from_env(given.to_environ()) == given
    assert "AWS_ENDPOINT_URL" not in given.to_environ()  # boto3's own: inherited, never copied
