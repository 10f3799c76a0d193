"""Terraform for the tests: the AWS provider from a local mirror (no registry), an offline CLI
configuration, the environment that points ``tflocal`` at a moto server on loopback (the stand-in
for LocalStack), and a copy of the root configuration, so that no test ever writes state,
``.terraform`` or tflocal's override file into the repository.

How tflocal (terraform-local) picks its endpoints: it writes ``localstack_providers_override.tf``
into the directory it runs in, with one endpoint per service. Every endpoint is
``http://<LOCALSTACK_HOSTNAME>:<EDGE_PORT>``, both taken from ``AWS_ENDPOINT_URL`` when it is set;
S3 alone uses ``S3_HOSTNAME`` (by default ``s3.localhost.localstack.cloud``, which does not
resolve here), and path-style addressing whenever that host does not start with ``s3.``. A
``<SERVICE>_ENDPOINT`` variable overrides one service. tflocal reads the ``*.tf`` files of its
working directory (not of ``-chdir``), so it is run with ``cwd`` set to the configuration.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
TERRAFORM_ROOT = REPOSITORY_ROOT / "terraform"

MIRROR_VARIABLE = "IMAGECORE_TF_PROVIDER_MIRROR"
DEFAULT_PROVIDER_MIRROR = Path("/opt/tf-plugins")
AWS_PROVIDER = "registry.terraform.io/hashicorp/aws"
OVERRIDE_FILE = "localstack_providers_override.tf"
REGION = "us-east-1"

HANDLERS = ("aws_lambda.api", "aws_lambda.worker", "aws_lambda.reconcile")
"""The modules of entrypoints/ whose ``handler`` the Lambda functions name."""

# What a working directory of Terraform or tflocal holds that is not configuration.
_NOT_CONFIGURATION = (
    ".terraform",
    ".terraform.lock.hcl",
    "*.tfstate",
    "*.tfstate.*",
    "*.tfplan",
    "crash.log",
    "crash.*.log",
    OVERRIDE_FILE,
    "__pycache__",
    # A developer's own variable files (docs/deployment.md): Terraform would read them.
    "*.tfvars",
)

# Variables of the calling environment that would send tflocal or Terraform elsewhere, or change
# what they do, whatever the test asked for.
_INHERITED_NOT = frozenset(
    {
        "AWS_PROFILE",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "LOCALSTACK_HOSTNAME",
        "EDGE_PORT",
        "S3_HOSTNAME",
        "USE_EXEC",
        "DRY_RUN",
        "CUSTOMIZE_ACCESS_KEY",
        "SKIP_ALIASES",
        "LS_PROVIDERS_FILE",
        "ADDITIONAL_TF_OVERRIDE_LOCATIONS",
        "TF_UNPROXIED_CMDS",
        "TF_WORKSPACE",
        "TF_DATA_DIR",
        "TF_PLUGIN_CACHE_DIR",
    }
)
_INHERITED_NOT_PREFIXES = ("TF_VAR_", "TF_CLI_ARGS")


class TflocalError(RuntimeError):
    """tflocal (or Terraform under it) failed; the message carries its output."""

    def __init__(self, args: Sequence[str], returncode: int, stdout: str, stderr: str) -> None:
        super().__init__(
            f"tflocal {' '.join(args)} exited with {returncode}\n"
            f"--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
        )
        self.args_run = list(args)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


def provider_mirror() -> Path | None:
    """The directory holding the hashicorp/aws provider for offline installs: the one named by
    IMAGECORE_TF_PROVIDER_MIRROR, else /opt/tf-plugins; None if it holds no AWS provider."""
    configured = os.environ.get(MIRROR_VARIABLE, "").strip()
    mirror = Path(configured) if configured else DEFAULT_PROVIDER_MIRROR
    return mirror if (mirror / AWS_PROVIDER).is_dir() else None


def terraform_binary() -> str | None:
    """The terraform executable on PATH, if any."""
    return shutil.which("terraform")


def tflocal_binary() -> str | None:
    """The tflocal executable of this Python's environment, else the one on PATH, if any."""
    beside = Path(sys.executable).parent / "tflocal"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("tflocal")


def cli_config(tmp_dir: Path, mirror: Path | None = None) -> Path:
    """Write a Terraform CLI configuration that installs the AWS provider from the mirror only
    (no registry); returns its path, for TF_CLI_CONFIG_FILE."""
    mirror = mirror or provider_mirror()
    if mirror is None:
        raise FileNotFoundError(
            f"no {AWS_PROVIDER} provider in {DEFAULT_PROVIDER_MIRROR} or ${MIRROR_VARIABLE}"
        )
    path = Path(tmp_dir) / "terraform.tfrc"
    path.write_text(
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f"    path    = {json.dumps(str(mirror.resolve()))}\n"
        f"    include = [{json.dumps(AWS_PROVIDER)}]\n"
        "  }\n"
        "}\n",
        encoding="utf-8",
    )
    return path


def tflocal_environment(endpoint_url: str, cli_config: Path) -> dict[str, str]:
    """The environment for tflocal against the moto server at ``endpoint_url``
    (``http://127.0.0.1:PORT``): every service, S3 included (path-style), at that URL; fake
    credentials; the offline CLI configuration; ``require_tls = false`` and ``edge = false``
    (see below); nothing inherited that could point elsewhere (other TF_VAR_ variables
    included: pass ``-var``)."""
    parts = urlsplit(endpoint_url)
    if parts.scheme != "http" or not parts.hostname or parts.port is None:
        raise ValueError(f"the endpoint must look like http://127.0.0.1:PORT, not {endpoint_url!r}")
    if ":" in parts.hostname:
        # tflocal builds http://{host}:{port} without brackets.
        raise ValueError(f"tflocal cannot use an IPv6 endpoint: {endpoint_url!r}")
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in _INHERITED_NOT
        and not name.startswith(_INHERITED_NOT_PREFIXES)
        and not name.endswith("_ENDPOINT")  # tflocal's per-service endpoint overrides
    }
    environment.update(
        {
            # tflocal: LOCALSTACK_HOSTNAME and EDGE_PORT come from this; the provider honours
            # it too, for any service the override file does not name.
            "AWS_ENDPOINT_URL": f"http://{parts.hostname}:{parts.port}",
            # Not s3.<something>: tflocal then uses this host and path-style addressing.
            "S3_HOSTNAME": parts.hostname,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "TF_CLI_CONFIG_FILE": str(cli_config),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
            "DISABLE_DEPRECATION_NOTICE": "1",
        }
    )
    terraform = terraform_binary()
    if terraform is not None:
        environment["TF_CMD"] = terraform
    return environment


def run_tflocal(
    args: Sequence[str],
    workdir: Path,
    env: Mapping[str, str],
    *,
    ok_returncodes: Collection[int] = (0,),
    timeout: float | None = 900,
) -> subprocess.CompletedProcess[str]:
    """Run ``tflocal ARGS`` in ``workdir``; raise TflocalError, with its output, unless it exits
    with one of ``ok_returncodes`` (add 2 for ``plan -detailed-exitcode`` with changes)."""
    tflocal = tflocal_binary()
    if tflocal is None:
        raise FileNotFoundError("tflocal is not installed (pip install terraform-local)")
    # A tflocal that was killed leaves its override file behind, and refuses to run again.
    (Path(workdir) / OVERRIDE_FILE).unlink(missing_ok=True)
    completed = subprocess.run(
        [tflocal, *args],
        cwd=workdir,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode not in ok_returncodes:
        raise TflocalError(args, completed.returncode, completed.stdout, completed.stderr)
    return completed


def copy_root_config(destination: Path) -> Path:
    """Copy terraform/ (the root configuration and its modules, without state, .terraform or
    override files) to ``destination``/terraform; returns the copy, to run Terraform in."""
    target = Path(destination) / "terraform"
    shutil.copytree(TERRAFORM_ROOT, target, ignore=shutil.ignore_patterns(*_NOT_CONFIGURATION))
    return target


def write_stub_lambda_zip(path: Path) -> Path:
    """A tiny deployment zip whose handlers return {}: enough for Terraform to create the
    functions (moto never runs them unless invoked)."""
    path = Path(path)
    stub = "def handler(event, context):\n    return {}\n"
    files = {"entrypoints/__init__.py": "", "entrypoints/aws_lambda/__init__.py": ""} | {
        f"entrypoints/{handler.replace('.', '/')}.py": stub for handler in HANDLERS
    }
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            # A fixed date: the same bytes every time, so source_code_hash never changes.
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), text)
    return path
