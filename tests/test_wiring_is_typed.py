"""The container is typed: an adapter that no longer fits its port fails `mypy --strict`.

Each case copies the source tree, breaks one adapter the way a refactoring would (a method
renamed), and type-checks the container over the copy: mypy must point at the container's
provider of that adapter. The unbroken tree type-checks clean in `tox -e type`."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

BROKEN_ADAPTERS = [
    # (the adapter's module, the method renamed in it, the name mypy must report)
    ("adapters/sqlite.py", "find_by_content", "SqliteImageRepository"),
    ("adapters/dynamodb/repository.py", "unsettled", "DynamoDbImageRepository"),
    ("adapters/filesystem.py", "local_path", "FilesystemBlobStore"),
    ("adapters/thumbnails.py", "render", "VipsRenderer"),
    ("adapters/expiring_records.py", "update", "SharedRecords"),
    ("adapters/upload_places.py", "take", "SharedPlaces"),
]


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mypy-cache")  # shared: the untouched modules check once


@pytest.mark.parametrize(("module", "method", "adapter"), BROKEN_ADAPTERS)
def test_an_adapter_that_no_longer_fits_its_port_fails_the_type_check(
    tmp_path: Path, mypy_cache: Path, module: str, method: str, adapter: str
) -> None:
    source = tmp_path / "src"
    shutil.copytree(ROOT / "src", source, ignore=shutil.ignore_patterns("__pycache__", "static"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    broken = source / module
    text = broken.read_text(encoding="utf-8")
    renamed, count = re.subn(rf"\bdef {method}\(", f"def {method}_renamed(", text)
    assert count >= 1, f"{module} has no method {method}: update this test"
    broken.write_text(renamed, encoding="utf-8")

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--cache-dir",
            str(mypy_cache),
            "src/entrypoints/container.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 1, result.stdout + result.stderr
    in_container = [
        line
        for line in result.stdout.splitlines()
        if line.startswith("src/entrypoints/container.py:") and ": error:" in line
    ]
    assert any(adapter in line for line in in_container), result.stdout
