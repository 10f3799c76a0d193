"""Schemathesis against the document the server serves at /openapi.json, on every backend.

It runs as its command line (`st run`), the interface it documents and keeps stable: examples,
coverage (boundary and invalid values), fuzzing (positive and negative), and stateful sequences
along the document's links (an upload's image_id into get, download, thumbnail, patch and
delete; an upload slot into its own upload URL). Every response must be documented: no 5xx, a
documented status, the documented content type, headers and body schema.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.api_client import Api

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
PHASES = ("examples", "coverage", "fuzzing", "stateful")
MAX_EXAMPLES_PER_OPERATION = 60
MIN_REQUESTS_PER_BACKEND = 1_000
REQUEST_COUNTER = Path(__file__).with_name("schemathesis_request_counter.py")
"""Hooks for the `st` process only (importing them here would register them in pytest's)."""
REQUEST_COUNT_FILE = "IMAGECORE_FUZZ_REQUEST_COUNT_FILE"


def schemathesis_command() -> str:
    return str(Path(sys.executable).with_name("st"))


def test_every_answer_to_generated_requests_is_the_documented_one(
    api: Api, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    backend = api.server.environ["IMAGECORE_BACKEND"]
    count_file = tmp_path / "requests-sent"
    token = api.token(f"fuzz-{secrets.token_hex(4)}")
    command = [
        schemathesis_command(),
        "run",
        f"{api.server.url}/openapi.json",
        f"--header=Authorization: Bearer {token}",
        f"--checks={','.join(CHECKS)}",
        f"--phases={','.join(PHASES)}",
        f"--max-examples={MAX_EXAMPLES_PER_OPERATION}",
        # The same requests on every run, so CI is stable and a failure reproduces.
        "--generation-deterministic",
        # One: Python 3.11's ast.parse, which hypothesis calls to describe strategies, is not
        # thread-safe ("AST constructor recursion depth mismatch").
        "--workers=1",
        "--request-timeout=30",
        "--no-color",
    ]
    result = subprocess.run(
        command,
        # Its own directory: schemathesis reads a schemathesis.toml and writes reports there.
        cwd=tmp_path,
        env={
            **os.environ,
            "SCHEMATHESIS_HOOKS": str(REQUEST_COUNTER),
            REQUEST_COUNT_FILE: str(count_file),
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = f"{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, report
    sent = int(count_file.read_text())
    print(f"schemathesis requests sent ({backend}): {sent}")
    record_property("schemathesis_requests_sent", sent)
    assert sent >= MIN_REQUESTS_PER_BACKEND, report
