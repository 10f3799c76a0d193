"""The service's settings from a Terraform deployment's outputs, so that the names Terraform chose
(table, bucket, region) are never typed a second time into a local configuration."""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Mapping
from pathlib import Path

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
