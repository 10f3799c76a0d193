"""The commands for AWS: `aws-setup` makes (or repairs) the table and bucket for development,
`aws-empty-bucket` empties a bucket before a local deployment is destroyed, and
`terraform-env` reads the service's settings from a Terraform deployment's outputs, so that the
names Terraform chose (table, bucket, region) are never typed a second time into a local
configuration."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from adapters.errors import MissingResource

ENVIRONMENT_OUTPUT = "imagecore_environment"
"""The root configuration's output that holds the service's environment variables."""


class TerraformOutputError(Exception):
    """The outputs could not be read; the message says why."""


def environment_from_terraform(directory: Path, terraform: str = "terraform") -> dict[str, str]:
    """The variables of the ``imagecore_environment`` output of the state in ``directory``."""
    command = [terraform, f"-chdir={directory}", "output", "-json", ENVIRONMENT_OUTPUT]
    try:
        # The user's own Terraform binary, on their own configuration.
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    except FileNotFoundError:
        raise TerraformOutputError(f"cannot run {terraform!r}: is Terraform installed?") from None
    if result.returncode != 0:
        raise TerraformOutputError(
            f"`terraform output` failed in {directory} (was it applied there?): "
            + (result.stderr.strip() or result.stdout.strip())
        )
    try:
        values = json.loads(result.stdout)
    except ValueError:
        raise TerraformOutputError(f"the output {ENVIRONMENT_OUTPUT} is not JSON") from None
    if not isinstance(values, dict) or not all(
        isinstance(name, str) and isinstance(value, str) for name, value in values.items()
    ):
        raise TerraformOutputError(f"the output {ENVIRONMENT_OUTPUT} is not a map of strings")
    return values


def dotenv(environment: Mapping[str, str]) -> str:
    """``NAME=value`` lines, quoted so that a shell can source them (``set -a; . ./.env``)."""
    return "".join(f"{name}={shlex.quote(value)}\n" for name, value in sorted(environment.items()))


def _aws_clients() -> Any:
    """The AWS clients of the environment (AWS_ENDPOINT_URL, AWS_REGION), or a ClickException
    saying what is missing."""
    try:
        from adapters.aws import make_clients
    except ImportError as exc:
        raise click.ClickException(
            f"this command needs the aws extra: pip install 'imagecore[aws]' ({exc})"
        ) from None
    environ = os.environ
    try:
        return make_clients(
            endpoint_url=environ.get("AWS_ENDPOINT_URL") or None,
            region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or None,
        )
    except MissingResource as exc:
        raise click.ClickException(str(exc)) from None


@click.command("aws-setup")
@click.option("--table", envvar="IMAGECORE_TABLE", required=True, help="[env IMAGECORE_TABLE]")
@click.option("--bucket", envvar="IMAGECORE_BUCKET", required=True, help="[env IMAGECORE_BUCKET]")
@click.option(
    "--terraform-module",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="The Terraform metadata module [default: terraform/modules/metadata of this checkout]",
)
def aws_setup(table: str, bucket: str, terraform_module: Path | None) -> None:
    """Make the DynamoDB table and S3 bucket for development, e.g. on moto server, or repair them.

    The table is made from the definition in the Terraform metadata module, the one Terraform
    applies in AWS. Run again, it converges: a table missing an index of the definition gets it,
    and a bucket gets back whichever of its settings (ownership controls, public access block,
    encryption, the lifecycle rule) it lacks. Point AWS_ENDPOINT_URL at the local endpoint; in
    AWS, use Terraform.
    """
    try:
        from adapters.aws_resources import (
            DefinitionError,
            TableMismatch,
            find_metadata_module,
            set_up_bucket,
            set_up_table,
            table_definition,
        )
    except ImportError as exc:
        raise click.ClickException(
            f"aws-setup needs the aws extra: pip install 'imagecore[aws]' ({exc})"
        ) from None
    try:
        definition = table_definition(terraform_module or find_metadata_module())
    except DefinitionError as exc:
        raise click.ClickException(str(exc)) from None
    clients = _aws_clients()
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        made_table = set_up_table(clients.dynamodb, table, definition)
        click.echo(f"table {table}: {made_table.describe()}")
        made_bucket = set_up_bucket(clients.s3, bucket)
        click.echo(f"bucket {bucket}: {made_bucket.describe()}")
    except TableMismatch as exc:
        raise click.ClickException(str(exc)) from None
    except (ClientError, BotoCoreError) as exc:  # a name AWS refuses, no access, no endpoint
        raise click.ClickException(str(exc)) from None


@click.command("aws-empty-bucket")
@click.argument("bucket")
@click.option("--yes", is_flag=True, help="Delete without asking first")
def aws_empty_bucket(bucket: str, yes: bool) -> None:
    """Delete every object of BUCKET, each version and delete marker included, as tearing a
    local deployment down needs on moto server (see docs/deployment.md). Asks first unless
    --yes is given."""
    if not yes:
        click.confirm(f"delete every object and version in the bucket {bucket}?", abort=True)
    clients = _aws_clients()  # first: it says so if the aws extra is missing
    from botocore.exceptions import BotoCoreError, ClientError

    from adapters.aws_resources import empty_bucket

    try:
        deleted = empty_bucket(clients.s3, bucket)
    except (ClientError, BotoCoreError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"bucket {bucket}: {deleted} object versions and delete markers deleted")


@click.command("cdn-key")
@click.option(
    "--parameter",
    required=True,
    help="The SSM parameter (SecureString) to keep the private key in, e.g. "
    "/imagecore/cdn-signing-key; Terraform's cdn_private_key_parameter names it",
)
@click.option(
    "--kms-key-id",
    default=None,
    help="KMS key (id, ARN or alias) that encrypts the parameter [default: alias/aws/ssm]; "
    "give Terraform's kms_key_arn here if you set one",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace the key an existing parameter holds (links signed with it stop working once "
    "Terraform has the new public key)",
)
def cdn_key(parameter: str, kms_key_id: str | None, overwrite: bool) -> None:
    """Make the CDN's signing key: an RSA-2048 key pair whose private key goes straight into
    the SSM parameter PARAMETER (a SecureString, never a file or the Terraform state), and whose
    public key is printed, PEM, for Terraform's cdn_public_key variable."""
    try:
        from adapters.cloudfront import new_signing_key
        from adapters.ssm_secret import make_ssm_client, write_secret_parameter
    except ImportError as exc:
        raise click.ClickException(
            f"cdn-key needs the aws extra: pip install 'imagecore[aws]' ({exc})"
        ) from None
    if not parameter.startswith("/"):
        raise click.BadParameter("a parameter path such as /imagecore/cdn-signing-key")
    environ = os.environ
    private_pem, public_pem = new_signing_key()
    try:
        client = make_ssm_client(
            environ.get("AWS_ENDPOINT_URL") or None,
            environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or None,
        )
        write_secret_parameter(
            client, parameter, private_pem, kms_key_id=kms_key_id, overwrite=overwrite
        )
    except MissingResource as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(public_pem, nl=False)
    click.echo(f"the private key is in the SSM parameter {parameter}", err=True)


@click.command("terraform-env")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=Path("terraform"),
    show_default=True,
    help="The applied root configuration",
)
@click.option("--terraform", default="terraform", show_default=True, help="The Terraform binary")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the lines to this file (such as .env) instead of printing them",
)
def terraform_env(directory: Path, terraform: str, output: Path | None) -> None:
    """Print the service's settings from a Terraform deployment, as NAME=value lines."""
    try:
        lines = dotenv(environment_from_terraform(directory, terraform))
    except TerraformOutputError as exc:
        raise click.ClickException(str(exc)) from None
    if output is None:
        click.echo(lines, nl=False)
    else:
        write_private(output, lines)
        click.echo(f"wrote {output}", err=True)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, readable and writable by its owner alone (0600), an existing
    file included: a .env is where secrets get added (IMAGECORE_TOKEN_SECRET, AWS keys), and a
    file others may read must not be the place for them."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        os.fchmod(file.fileno(), 0o600)  # O_CREAT's mode applies to a new file only
        file.write(text)
