from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from entrypoints.cli import main
from entrypoints.cli.api_reference import METHODS, markdown
from entrypoints.http.openapi import openapi_document

API_REFERENCE = Path(__file__).parents[2] / "docs" / "api.md"


def test_the_reference_in_docs_is_the_one_the_served_document_gives() -> None:
    assert API_REFERENCE.read_text(encoding="utf-8") == markdown(openapi_document()), (
        "docs/api.md is out of date: run `imagecore api-reference`"
    )


def test_the_reference_names_every_operation_status_and_schema() -> None:
    document = openapi_document()
    text = markdown(document)
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                section = text.split(f"### `{method.upper()} {path}`\n", 1)[1].split("\n### ")[0]
                for status in item[method]["responses"]:
                    assert f"\n| {status} |" in section, (method, path, status)
    for name in document["components"]["schemas"]:
        assert f"\n### {name}\n" in text


def test_the_command_writes_the_reference(tmp_path: Path) -> None:
    target = tmp_path / "api.md"
    result = CliRunner().invoke(main, ["api-reference", "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8") == markdown(openapi_document())
