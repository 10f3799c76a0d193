"""The token secret of an AWS deployment lives in an SSM parameter (a SecureString) whose name the
functions get: read decrypted, once, when a Lambda instance or `imagecore serve` starts; a
parameter that is missing or holds too short a secret stops the start with its name."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws

from adapters.errors import MissingResource
from adapters.ssm_secret import make_ssm_client, read_secret_parameter
from entrypoints.cli import main
from entrypoints.http.auth import TokenAuthority
from entrypoints.settings import SettingsError
from tests.support.fake_aws import REGION
from tests.support.lambda_events import fresh_import

NAME = "/imagecore/token-secret"
SECRET = "kept-in-parameter-store-and-nowhere-else-0123456789"
NAMED = re.escape(f"'{NAME}'") + r".*IMAGECORE_TOKEN_SECRET_PARAMETER"


def put_parameter(value: str, name: str = NAME) -> None:
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name=name, Value=value, Type="SecureString"
    )


@pytest.fixture
def lambda_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A function's environment as Terraform makes it: the parameter's name, no secret."""
    monkeypatch.setenv("IMAGECORE_BACKEND", "memory")
    monkeypatch.setenv("IMAGECORE_TOKEN_SECRET_PARAMETER", NAME)
    monkeypatch.delenv("IMAGECORE_TOKEN_SECRET", raising=False)


@pytest.fixture
def restored_environment() -> Iterator[None]:
    """`serve` hands its settings to its workers through os.environ (TMPDIR too): put it back."""
    before = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(before)


@mock_aws
def test_the_secret_is_read_decrypted_from_its_parameter() -> None:
    put_parameter(SECRET)
    assert read_secret_parameter(make_ssm_client(region=REGION), NAME) == SECRET


@mock_aws
def test_a_missing_parameter_is_named_with_the_setting_that_named_it() -> None:
    put_parameter(SECRET, name="/other/token-secret")
    with pytest.raises(MissingResource, match=NAMED + ".*does not exist"):
        read_secret_parameter(make_ssm_client(region=REGION), NAME)


@mock_aws
@pytest.mark.usefixtures("lambda_environment")
def test_a_lambda_instance_reads_the_parameter_once_when_it_starts() -> None:
    put_parameter(SECRET)

    worker = fresh_import("entrypoints.aws_lambda.worker")

    assert worker._container.secret() == SECRET.encode()
    # Read at the start and kept: the instance goes on without asking SSM again.
    boto3.client("ssm", region_name=REGION).delete_parameter(Name=NAME)
    assert worker._container.secret() == SECRET.encode()
    assert worker._container.tokens().verify(TokenAuthority(SECRET.encode()).issue("alice"))


@mock_aws
@pytest.mark.usefixtures("lambda_environment")
def test_a_lambda_instance_without_its_parameter_fails_to_start_naming_it() -> None:
    with pytest.raises(MissingResource, match=NAMED):
        fresh_import("entrypoints.aws_lambda.api")


@mock_aws
@pytest.mark.usefixtures("lambda_environment")
def test_a_parameter_holding_a_short_secret_is_refused_at_the_start() -> None:
    put_parameter("too-short")
    with pytest.raises(SettingsError, match=NAMED + ".*at least 32 characters"):
        fresh_import("entrypoints.aws_lambda.reconcile")


@mock_aws
def test_imagecore_token_signs_with_the_secret_of_the_parameter(tmp_path: Path) -> None:
    put_parameter(SECRET)
    result = CliRunner().invoke(
        main,
        ["token", "alice", "--data-dir", str(tmp_path / "nowhere")],
        env={"IMAGECORE_TOKEN_SECRET_PARAMETER": NAME, "IMAGECORE_TOKEN_SECRET": None},
    )
    assert result.exit_code == 0, result.output
    assert TokenAuthority(SECRET.encode()).verify(result.output.strip()) == "alice"
    assert not (tmp_path / "nowhere").exists(), "no secret of its own made in a data dir"


@mock_aws
@pytest.mark.usefixtures("restored_environment")
def test_imagecore_serve_reads_the_parameter_and_names_it_when_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("granian.Granian", _NotServing)
    arguments = ["serve", "--port", "0", "--backend", "memory", "--data-dir", str(tmp_path)]
    env = {"IMAGECORE_TOKEN_SECRET_PARAMETER": NAME, "IMAGECORE_TOKEN_SECRET": None}

    missing = CliRunner().invoke(main, arguments, env=env)
    assert missing.exit_code == 1
    assert re.search(NAMED, missing.output), missing.output
    assert "Traceback" not in missing.output

    put_parameter(SECRET)
    served = CliRunner().invoke(main, arguments, env=env)
    assert served.exit_code == 0, served.output


class _NotServing:
    def __init__(self, *_: object, **__: object) -> None:
        pass

    def serve(self) -> None:
        pass
