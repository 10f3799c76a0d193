"""The settings, from the environment and the flags: defaults that need no configuration, a wrong
setting named in its error, the aws backend configured by the standard variables, and the same
settings handed to the server's workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from entrypoints.settings import Settings, SettingsError


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
        (
            {"IMAGECORE_TOKEN_SECRET": "s" * 40, "IMAGECORE_TOKEN_SECRET_PARAMETER": "/p"},
            "IMAGECORE_TOKEN_SECRET and IMAGECORE_TOKEN_SECRET_PARAMETER are both set",
        ),
    ],
)
def test_a_wrong_setting_is_named_in_the_error(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(env)


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
        job_workers=3,
        rate_limit_per_second=3,
        rate_limit_burst=4,
        client_timeout_seconds=2,
    )
    assert Settings.from_env(given.to_environ()) == given
    assert "AWS_ENDPOINT_URL" not in given.to_environ()  # boto3's own: inherited, never copied


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ({"workers": 1}, "in_process"),
        ({"backend": "memory"}, "in_process"),
        ({"workers": 2}, "shared"),
        ({"workers": 3, "backend": "filesystem"}, "shared"),
    ],
)
def test_the_limits_are_shared_only_by_a_server_of_several_workers(
    given: dict[str, object], kept: str
) -> None:
    # One worker counts in its memory (the cheaper take); several must see one count.
    assert Settings(**given).as_config()["limits_kept"] == kept  # type: ignore[arg-type]


def test_the_secrets_parameter_is_handed_on_by_name_and_needs_no_secret_beside_it() -> None:
    settings = Settings.from_env({"IMAGECORE_TOKEN_SECRET_PARAMETER": "/imagecore/token-secret"})
    assert settings.token_secret is None
    assert settings.to_environ()["IMAGECORE_TOKEN_SECRET_PARAMETER"] == "/imagecore/token-secret"
    assert "IMAGECORE_TOKEN_SECRET" not in settings.to_environ()
