"""The token secret of an AWS deployment, kept in SSM Parameter Store as a SecureString.

Terraform writes the parameter and gives the functions its name only (never the value, which
would then sit in their configuration and in the Terraform state). A process reads it once, when
it starts, and keeps it in memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, cast

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

from adapters.aws import client_config
from adapters.errors import MissingResource

__all__ = [
    "ParameterReader",
    "ParameterStore",
    "ParameterWriter",
    "make_ssm_client",
    "read_secret_parameter",
    "write_secret_parameter",
]

if TYPE_CHECKING:
    from collections.abc import Mapping

# What the reader is told to check or set when the parameter cannot be read.
_SETTING = "IMAGECORE_TOKEN_SECRET_PARAMETER"
_REMEDY = (
    "apply the Terraform configuration, or name the parameter it made (its output "
    "token_secret_parameter)"
)


class ParameterReader(Protocol):
    """The one call of an SSM client this needs (boto3's client has it)."""

    def get_parameter(self, *, Name: str, WithDecryption: bool) -> Mapping[str, Any]: ...


class ParameterWriter(Protocol):
    """The one call of an SSM client that keeps a secret (boto3's client has it)."""

    def put_parameter(self, **request: Any) -> Mapping[str, Any]: ...


class ParameterStore(ParameterReader, ParameterWriter, Protocol):
    """Both calls: what ``make_ssm_client`` hands out."""


def make_ssm_client(endpoint_url: str | None = None, region: str | None = None) -> ParameterStore:
    """An SSM client for the region and credentials of the standard AWS variables and files."""
    session = boto3.session.Session(region_name=region)
    try:
        client = session.client(
            "ssm", endpoint_url=endpoint_url, config=client_config(endpoint_url)
        )
        return cast("ParameterStore", client)
    except NoRegionError:
        raise MissingResource(
            "no AWS region is set: set AWS_REGION (or AWS_DEFAULT_REGION, or a profile's region)"
        ) from None


def read_secret_parameter(
    client: ParameterReader, name: str, setting: str = _SETTING, remedy: str = _REMEDY
) -> str:
    """The decrypted value of the parameter ``name``; MissingResource, naming the parameter and
    the ``setting`` that named it, if it does not exist (saying ``remedy``), may not be read or
    is empty."""
    try:
        response = client.get_parameter(Name=name, WithDecryption=True)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ParameterNotFound":
            raise MissingResource(
                f"the SSM parameter {name!r} ({setting}) does not exist in this account and "
                f"region: {remedy}"
            ) from None
        raise MissingResource(
            f"cannot read the SSM parameter {name!r} ({setting}): "
            f"{error.get('Code', 'error')}: {error.get('Message', exc)}"
        ) from None
    except BotoCoreError as exc:  # no credentials, no endpoint
        raise MissingResource(
            f"cannot read the SSM parameter {name!r} ({setting}): {exc}"
        ) from None
    value = response.get("Parameter", {}).get("Value")
    if not isinstance(value, str) or not value:
        raise MissingResource(f"the SSM parameter {name!r} ({setting}) holds no value")
    return value


def write_secret_parameter(
    client: ParameterWriter, name: str, value: str, kms_key_id: str | None, overwrite: bool
) -> None:
    """Keep ``value`` in the SecureString parameter ``name``, encrypted with ``kms_key_id``
    (None: the account's alias/aws/ssm); MissingResource, saying why, if SSM refuses (the
    parameter exists and ``overwrite`` is not set, no permission, no endpoint)."""
    request: dict[str, Any] = {
        "Name": name,
        "Value": value,
        "Type": "SecureString",
        "Overwrite": overwrite,
        "Description": "imagecore: a private key or secret, read by the service at its start",
    }
    if kms_key_id is not None:
        request["KeyId"] = kms_key_id
    try:
        client.put_parameter(**request)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ParameterAlreadyExists":
            raise MissingResource(
                f"the SSM parameter {name!r} exists already: name another one, or replace its "
                "value (and so every link signed with the old key) with --overwrite"
            ) from None
        raise MissingResource(
            f"cannot write the SSM parameter {name!r}: "
            f"{error.get('Code', 'error')}: {error.get('Message', exc)}"
        ) from None
    except BotoCoreError as exc:
        raise MissingResource(f"cannot write the SSM parameter {name!r}: {exc}") from None
