"""The `imagecore` command line."""

from __future__ import annotations

import json
import logging
import os
from datetime import timedelta
from pathlib import Path

import attrs
import click
from click.core import ParameterSource

from adapters.errors import MissingResource
from entrypoints.auth import DEFAULT_TOKEN_TTL
from entrypoints.client_cli import CLIENT_COMMANDS
from entrypoints.container import Container, build_container
from entrypoints.lambda_package import LambdaPackageError, LambdaRuntime, build_lambda_package
from entrypoints.logs import LOG_CONFIG, configure_logging
from entrypoints.settings import BACKENDS, Settings, SettingsError
from entrypoints.terraform_outputs import TerraformOutputError, dotenv, environment_from_terraform
from imagecore.errors import InvalidInput
from imagecore.service import ORPHAN_GRACE

READ_BUFFER_BYTES = 408 * 1024
"""The server's read buffer per connection (granian's default, named here because it is a
limit): request heads beyond it, or with over 100 fields, get the server's own 431. It is also
the largest piece of a body the app is handed at once; a buffer of 32 KiB made 50 MiB uploads
take 1,700 hops between threads, and run at 110 MiB/s. The app's own limit on headers is
``http.MAX_HEADER_BYTES``."""

_DATA_DIR_HELP = "Where blobs, SQLite and the token secret live [env IMAGECORE_DATA_DIR]"


def _settings(**overrides: object) -> Settings:
    try:
        settings = Settings.from_env(None, **overrides)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None
    # Absolute, so the server's worker and later commands agree whatever their directory.
    return attrs.evolve(settings, data_dir=settings.data_dir.resolve())


def _container(settings: Settings) -> Container:
    container = build_container(settings)
    try:
        # Opening the stores now makes a bad data dir fail here, with its name, not on a request.
        container.images()
        container.tokens()
    except OSError as exc:
        raise click.ClickException(f"cannot use the data dir {settings.data_dir}: {exc}") from None
    except MissingResource as exc:
        raise click.ClickException(str(exc)) from None
    return container


@click.group()
@click.version_option(package_name="imagecore")
def main() -> None:
    """imagecore: an image service. `imagecore serve` runs it; `imagecore token USER` lets in."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help=_DATA_DIR_HELP)
@click.option(
    "--backend", type=click.Choice(BACKENDS), help="Where images are kept [env IMAGECORE_BACKEND]"
)
@click.option(
    "--max-upload-bytes", type=click.IntRange(min=1), help="[env IMAGECORE_MAX_UPLOAD_BYTES]"
)
def serve(
    host: str,
    port: int,
    data_dir: Path | None,
    backend: str | None,
    max_upload_bytes: int | None,
) -> None:
    """Run the HTTP API."""
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings

    settings = _settings(data_dir=data_dir, backend=backend, max_upload_bytes=max_upload_bytes)
    _container(settings)
    os.environ.update(settings.to_environ())  # the server's worker builds its app from these
    # Uploads are spooled while the form is parsed; keep even those files inside the data dir.
    scratch = settings.data_dir / "tmp"
    scratch.mkdir(mode=0o700, exist_ok=True)
    os.environ["TMPDIR"] = str(scratch)
    where = (
        f"table {settings.table}, bucket {settings.bucket}"
        if settings.backend == "aws"
        else f"data dir {settings.data_dir}"
    )
    configure_logging()
    logging.getLogger("imagecore.serve").info(
        "imagecore serving http://%s:%d (backend %s, %s)", host, port, settings.backend, where
    )
    Granian(
        "entrypoints.http:app_from_environment",
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        factory=True,
        workers=1,
        http=HTTPModes.http1,
        http1_settings=HTTP1Settings(
            header_read_timeout=settings.client_timeout_seconds * 1000,
            max_buffer_size=READ_BUFFER_BYTES,
        ),
        log_dictconfig=LOG_CONFIG,
        log_access=False,  # the app logs each request, with its id
    ).serve()


@main.command()
@click.argument("user")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help=_DATA_DIR_HELP)
@click.option(
    "--ttl",
    type=click.IntRange(min=1),
    default=int(DEFAULT_TOKEN_TTL.total_seconds()),
    show_default=True,
    help="Seconds the token stays valid",
)
def token(user: str, data_dir: Path | None, ttl: int) -> None:
    """Print a bearer token for USER, valid on the server that uses the same data dir."""
    settings = _settings(data_dir=data_dir)
    tokens = _container(settings).tokens()
    try:
        click.echo(tokens.issue(user, timedelta(seconds=ttl)))
    except InvalidInput as exc:
        raise click.BadParameter(exc.message, param_hint="USER") from None


@main.command()
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help=_DATA_DIR_HELP)
@click.option(
    "--backend", type=click.Choice(BACKENDS), help="Where images are kept [env IMAGECORE_BACKEND]"
)
@click.option(
    "--grace-seconds",
    type=click.IntRange(min=0),
    default=int(ORPHAN_GRACE.total_seconds()),
    show_default=True,
    help="Bytes no image holds are removed once they are this old (younger may be an upload)",
)
def reconcile(data_dir: Path | None, backend: str | None, grace_seconds: int) -> None:
    """Finish interrupted deletes and remove orphaned bytes; print what was done as JSON."""
    settings = _settings(data_dir=data_dir, backend=backend)
    report = _container(settings).images().reconcile(timedelta(seconds=grace_seconds))
    click.echo(json.dumps(attrs.asdict(report)))


@main.command("aws-setup")
@click.option("--table", envvar="IMAGECORE_TABLE", required=True, help="[env IMAGECORE_TABLE]")
@click.option("--bucket", envvar="IMAGECORE_BUCKET", required=True, help="[env IMAGECORE_BUCKET]")
@click.option(
    "--terraform-module",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="The Terraform metadata module [default: terraform/modules/metadata of this checkout]",
)
def aws_setup(table: str, bucket: str, terraform_module: Path | None) -> None:
    """Create the DynamoDB table and S3 bucket for development, e.g. on moto server.

    The table is made from the definition in the Terraform metadata module, the one Terraform
    applies in AWS. Point AWS_ENDPOINT_URL at the local endpoint; in AWS, use Terraform.
    """
    try:
        from adapters.aws import make_clients
        from adapters.aws_resources import (
            DefinitionError,
            create_bucket,
            create_table,
            find_metadata_module,
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
    environ = os.environ
    try:
        clients = make_clients(
            endpoint_url=environ.get("AWS_ENDPOINT_URL") or None,
            region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or None,
        )
    except MissingResource as exc:
        raise click.ClickException(str(exc)) from None
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        made_table = create_table(clients.dynamodb, table, definition)
        made_bucket = create_bucket(clients.s3, bucket)
    except (ClientError, BotoCoreError) as exc:  # a name AWS refuses, no access, no endpoint
        raise click.ClickException(str(exc)) from None
    click.echo(f"table {table}: {'created' if made_table else 'already there'}")
    click.echo(f"bucket {bucket}: {'created' if made_bucket else 'already there'}")


@main.command("terraform-env")
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
        output.write_text(lines)
        click.echo(f"wrote {output}", err=True)


@main.command("api-reference")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("docs/api.md"),
    show_default=True,
    help="Where to write it ('-' for standard output)",
)
def api_reference(output: Path) -> None:
    """Write the HTTP API reference in Markdown, from the OpenAPI document the server serves."""
    from entrypoints.api_reference import markdown
    from entrypoints.openapi import openapi_document

    text = markdown(openapi_document())
    if str(output) == "-":
        click.echo(text, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    click.echo(f"wrote {output}", err=True)


@main.command("build-lambda")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("dist/imagecore-lambda.zip"),
    show_default=True,
    help="Where to write the zip",
)
@click.option(
    "--python-version",
    default="3.12",
    show_default=True,
    help="The Python of the Lambda runtime (3.12 for python3.12)",
)
@click.option(
    "--architecture",
    type=click.Choice(["x86_64", "arm64"]),
    default="x86_64",
    show_default=True,
    help="The Lambda function's architecture",
)
@click.option(
    "--for-this-machine",
    is_flag=True,
    hidden=True,
    help="Build the dependencies for this interpreter and platform, to import the zip locally",
)
def build_lambda(
    output: Path, python_version: str, architecture: str, for_this_machine: bool
) -> None:
    """Write the AWS Lambda deployment zip: imagecore and its runtime dependencies.

    The dependencies are wheels for the Lambda runtime, downloaded by pip from its index.
    """
    runtime: LambdaRuntime | None = None
    if for_this_machine:
        context = click.get_current_context()
        for name in ("python_version", "architecture"):
            if context.get_parameter_source(name) is not ParameterSource.DEFAULT:
                option = "--" + name.replace("_", "-")
                raise click.UsageError(f"--for-this-machine and {option} exclude each other")
    else:
        try:
            runtime = LambdaRuntime(python_version=python_version, architecture=architecture)
        except LambdaPackageError as exc:
            raise click.BadParameter(str(exc), param_hint="--python-version") from None
    target = runtime.name if runtime else "this machine"
    click.echo(f"building the Lambda zip for {target} (pip downloads the wheels)...", err=True)
    try:
        report = build_lambda_package(output, runtime)
    except LambdaPackageError as exc:
        raise click.ClickException(str(exc)) from None
    mebibyte = 1024 * 1024
    click.echo(
        f"{report.path}: {report.zipped_bytes / mebibyte:.1f} MiB zipped, "
        f"{report.unzipped_bytes / mebibyte:.1f} MiB unzipped, {report.files} files"
    )
    if report.bytecode_for:
        click.echo(f"with bytecode for Python {report.bytecode_for}", err=True)
    else:
        version = runtime.python_version if runtime else "this"
        click.echo(
            f"without bytecode: no python{version} here to compile it, so each cold start "
            "compiles every module (about half a second); build with that Python for faster "
            "cold starts",
            err=True,
        )


for _client_command in CLIENT_COMMANDS:
    main.add_command(_client_command)
