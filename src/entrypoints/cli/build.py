"""The commands that build what ships: `build-lambda` writes the AWS Lambda deployment zip
(`lambda_package`), `api-reference` the Markdown reference of the HTTP API (`api_reference`)."""

from __future__ import annotations

from pathlib import Path

import click
from click.core import ParameterSource

from entrypoints.cli.lambda_package import LambdaPackageError, LambdaRuntime, build_lambda_package


@click.command("build-lambda")
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


@click.command("api-reference")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("docs/api.md"),
    show_default=True,
    help="Where to write it ('-' for standard output)",
)
def api_reference(output: Path) -> None:
    """Write the HTTP API reference in Markdown, from the OpenAPI document the server serves."""
    from entrypoints.cli.api_reference import markdown
    from entrypoints.http.openapi import openapi_document

    text = markdown(openapi_document())
    if str(output) == "-":
        click.echo(text, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    click.echo(f"wrote {output}", err=True)
