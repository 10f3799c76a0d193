"""The `imagecore` command line: the server's commands (`server`, `worker`, `aws`, `build`) and the
client's (`entrypoints.client.commands`), in one group."""

from __future__ import annotations

import click

from entrypoints.cli.aws import aws_empty_bucket, aws_setup, cdn_key, terraform_env
from entrypoints.cli.build import api_reference, build_lambda
from entrypoints.cli.server import reconcile, serve, token
from entrypoints.cli.worker import worker
from entrypoints.client.commands import CLIENT_COMMANDS


@click.group()
@click.version_option(package_name="imagecore")
def main() -> None:
    """imagecore: an image service. `imagecore serve` runs it; `imagecore token USER` lets in."""


for _command in (
    serve,
    token,
    reconcile,
    worker,
    aws_setup,
    aws_empty_bucket,
    cdn_key,
    terraform_env,
    build_lambda,
    api_reference,
):
    main.add_command(_command)
for _command in CLIENT_COMMANDS:
    main.add_command(_command)
