"""The dependency rule of docs/architecture.md, enforced by import-linter's contracts in
pyproject.toml."""

from __future__ import annotations

from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]


def test_the_domain_adapters_and_entrypoints_keep_the_dependency_rule(monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    assert (
        lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True) == 0
    )
