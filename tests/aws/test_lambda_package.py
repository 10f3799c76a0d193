"""`imagecore build-lambda`: the deployment zip holds the service and all it needs, nothing more.

The zip is built for this machine (wheels from PyPI for the running Python), so the handlers can
be imported from it alone; one module-scoped build, on one xdist worker, since pip takes a while.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from entrypoints.cli import lambda_package, main
from entrypoints.cli.lambda_package import LambdaRuntime, runtime_requirements
from tests.support.fake_aws import FAKE_AWS_ENVIRONMENT, fresh_resources, moto_server
from tests.support.lambda_events import http_api_event

pytestmark = pytest.mark.xdist_group("lambda_package")

HANDLER_MODULES = (
    "entrypoints.aws_lambda.api",
    "entrypoints.aws_lambda.worker",
    "entrypoints.aws_lambda.reconcile",
)


def _build(output: Path) -> Path:
    result = CliRunner().invoke(
        main, ["build-lambda", "--for-this-machine", "--output", str(output)]
    )
    assert result.exit_code == 0, result.output
    assert f"{output}: " in result.stdout
    assert "MiB zipped" in result.stdout
    return output


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("lambda") / "imagecore-lambda.zip")


@pytest.fixture(scope="module")
def names(built: Path) -> list[str]:
    with zipfile.ZipFile(built) as archive:
        return archive.namelist()


@pytest.fixture(scope="module")
def top_level(names: list[str]) -> set[str]:
    return {name.split("/", 1)[0] for name in names}


def test_the_requirements_are_the_runtime_ones_without_local_tools() -> None:
    names = {
        requirement.split(">", 1)[0].split("=", 1)[0]
        for requirement in runtime_requirements(LambdaRuntime())
    }
    assert {"mangum", "boto3", "starlette", "pillow", "dependency-injector", "pyjwt"} <= names
    assert not names & {"granian", "click", "python-hcl2", "httpx", "imagecore"}
    assert not names & {"pytest", "moto", "mypy", "ruff", "import-linter", "hypothesis"}


def test_the_zip_holds_the_service_and_its_runtime_dependencies(top_level: set[str]) -> None:
    assert {"imagecore", "adapters", "entrypoints"} <= top_level
    assert {"mangum", "boto3", "botocore", "starlette", "PIL", "dependency_injector"} <= top_level
    assert {"jwt", "ulid", "cattrs", "python_multipart", "swagger_ui"} <= top_level


def test_the_zip_has_no_local_tools_or_tests(names: list[str], top_level: set[str]) -> None:
    assert not top_level & {"tests", "test", "bin", "granian", "click", "hcl2"}
    assert not top_level & {"pip", "setuptools", "_distutils_hack", "pkg_resources"}
    assert not any(name.startswith(("granian-", "click-", "python_hcl2-")) for name in names)
    assert "entrypoints/aws_lambda/api.py" in names


def test_the_zip_holds_bytecode_the_runtime_loads_without_checking_sources(
    built: Path, names: list[str]
) -> None:
    """A Lambda's code directory is read-only: without bytecode in the zip, every cold start
    compiles every module again."""
    sources = [name for name in names if name.endswith(".py")]
    compiled = {name for name in names if name.endswith(".pyc")}
    expected = {importlib.util.cache_from_source(name) for name in sources}
    tag = f"cpython-{sys.version_info.major}{sys.version_info.minor}"
    assert f"entrypoints/aws_lambda/__pycache__/api.{tag}.pyc" in compiled
    assert len(expected & compiled) >= 0.99 * len(sources)  # a few vendored files may not compile
    assert compiled <= expected
    with zipfile.ZipFile(built) as archive:
        header = archive.read(importlib.util.cache_from_source("entrypoints/aws_lambda/api.py"))[:8]
    assert header[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(header[4:8], "little") == 0b01  # hash-based, source never checked


def test_without_the_runtimes_python_the_zip_has_no_bytecode_and_says_why(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(lambda_package, "_python_for", lambda version: None)
    monkeypatch.setattr(lambda_package, "_pip_install", lambda *arguments: None)
    output = tmp_path / "no-bytecode.zip"
    result = CliRunner().invoke(
        main, ["build-lambda", "--for-this-machine", "--output", str(output)]
    )
    assert result.exit_code == 0, result.output
    assert "without bytecode" in result.stderr
    with zipfile.ZipFile(output) as archive:
        assert not any(name.endswith(".pyc") for name in archive.namelist())
        assert "entrypoints/aws_lambda/api.py" in archive.namelist()


def test_the_zip_alone_runs_the_lambda_handlers(built: Path, tmp_path: Path) -> None:
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(built) as archive:
        archive.extractall(unpacked)
    server = moto_server()
    with fresh_resources(server.clients()) as (table, bucket):
        environment = {
            **{name: value for name, value in os.environ.items() if name in {"PATH", "TMPDIR"}},
            **FAKE_AWS_ENVIRONMENT,
            "AWS_ENDPOINT_URL": server.url,
            "IMAGECORE_BACKEND": "aws",
            "IMAGECORE_TABLE": table,
            "IMAGECORE_BUCKET": bucket,
            "IMAGECORE_TOKEN_SECRET": "s" * 40,
        }
        # -I -S: no site-packages and no PYTHON* variables, only the stdlib and the zip's content.
        script = (
            "import json, sys\n"
            f"sys.path[:0] = [{str(unpacked)!r}]\n"
            f"for name in {HANDLER_MODULES!r}: __import__(name)\n"
            "from entrypoints.aws_lambda.api import handler\n"
            "response = handler(json.loads(sys.argv[1]), None)\n"
            "print(json.dumps(response))\n"
        )
        health = json.dumps(http_api_event("GET", "/health", user=None))
        result = subprocess.run(
            [sys.executable, "-I", "-S", "-c", script, health],
            capture_output=True,
            text=True,
            env=environment,
            cwd=tmp_path,
            timeout=120,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["statusCode"] == 200


def test_building_twice_gives_the_same_bytes(built: Path, tmp_path: Path) -> None:
    again = _build(tmp_path / "again.zip")
    assert again.read_bytes() == built.read_bytes()
    with zipfile.ZipFile(again) as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_a_failing_pip_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(lambda_package, "runtime_requirements", lambda runtime: ["not a req!!"])
    output = tmp_path / "never.zip"
    result = CliRunner().invoke(
        main, ["build-lambda", "--for-this-machine", "--output", str(output)]
    )
    assert result.exit_code == 1
    assert "pip could not install the dependencies" in result.output
    assert "not a req!!" in result.output
    assert not output.exists()


def test_the_python_version_is_checked() -> None:
    result = CliRunner().invoke(main, ["build-lambda", "--python-version", "twelve"])
    assert result.exit_code == 2
    assert "3.12" in result.output
