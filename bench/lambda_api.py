"""Row 5: the API Lambda's cold import and warm handler latency, against a moto server.

The cold import is timed on what the Lambda runs: the zip `imagecore build-lambda` writes (for
this machine's Python), unpacked, imported by an interpreter that sees nothing else (`-S`: no
site-packages). Importing from the dev environment instead would time what the zip leaves out:
with moto installed, PyJWT loads `cryptography` and dependency-injector loads pydantic, 140 ms.

`python -m bench.lambda_api warm N` is the warm half, run in the dev environment (its event
builder uses the test helpers).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from bench.common import BIN, REPOSITORY_ROOT, Row, median, percentile

FAMILY = "5 Lambda"
_IMPORT = (
    "import time; started = time.perf_counter(); import entrypoints.aws_lambda.api; "
    "print(time.perf_counter() - started)"
)


def _warm(calls: int) -> None:
    """Upload one image through the handler, then time GETs of it; prints seconds, one a line."""
    from tests.support.lambda_events import LambdaContext, http_api_event

    from bench.common import small_jpeg
    from entrypoints.aws_lambda.api import handler

    created = handler(
        http_api_event(
            "POST", "/images", headers={"content-type": "image/jpeg"}, body=small_jpeg()
        ),
        LambdaContext(),
    )
    assert created["statusCode"] == 201, created
    image_id = json.loads(created["body"])["image_id"]
    for _ in range(calls):
        event = http_api_event("GET", f"/images/{image_id}")
        started = time.perf_counter()
        answer = handler(event, LambdaContext())
        print(time.perf_counter() - started)
        assert answer["statusCode"] == 200, answer


def _unpacked_lambda_package(work: Path) -> Path:
    archive = work / "lambda.zip"
    subprocess.run(
        [BIN / "imagecore", "build-lambda", "--for-this-machine", "--output", str(archive)],
        check=True,
        capture_output=True,
    )
    unpacked = work / "lambda"
    with zipfile.ZipFile(archive) as package:
        package.extractall(unpacked)
    return unpacked


def run(quick: bool) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="bench-lambda-") as temp:
        return _measure(_unpacked_lambda_package(Path(temp)), quick)


def _measure(package: Path, quick: bool) -> list[Row]:
    from tests.support.fake_aws import FAKE_AWS_ENVIRONMENT, MotoServer

    server = MotoServer()
    try:
        env = {
            **os.environ,
            **FAKE_AWS_ENVIRONMENT,
            "AWS_ENDPOINT_URL": server.url,
            "IMAGECORE_BACKEND": "aws",
            "IMAGECORE_TABLE": "bench-lambda",
            "IMAGECORE_BUCKET": "bench-lambda",
            "IMAGECORE_TOKEN_SECRET": "bench-secret-" + "x" * 32,
            "PYTHONPATH": os.pathsep.join([str(REPOSITORY_ROOT), str(REPOSITORY_ROOT / "src")]),
        }
        subprocess.run([BIN / "imagecore", "aws-setup"], env=env, check=True, capture_output=True)
        imports = [
            float(
                subprocess.run(
                    [sys.executable, "-S", "-c", _IMPORT],
                    env={**env, "PYTHONPATH": str(package)},
                    check=True,
                    capture_output=True,
                    text=True,
                    cwd=package,
                ).stdout.split()[-1]
            )
            for _ in range(5 if quick else 15)
        ]
        calls = 200 if quick else 1000
        warm = [
            float(line)
            for line in subprocess.run(
                [sys.executable, "-m", "bench.lambda_api", "warm", str(calls)],
                env=env,
                check=True,
                capture_output=True,
                text=True,
                cwd=REPOSITORY_ROOT,
            ).stdout.split()
        ]
    finally:
        server.stop()
    cold = median(imports) * 1000
    p50, p99 = median(warm) * 1000, percentile(warm, 0.99) * 1000
    return [
        Row(
            FAMILY,
            "cold import of entrypoints.aws_lambda.api",
            cold,
            "ms",
            "< 500 ms",
            cold < 500,
            f"median of {len(imports)} fresh interpreters importing the built zip",
        ),
        Row(
            FAMILY,
            "warm handler GET /images/{id} p50",
            p50,
            "ms",
            "",
            None,
            f"p99 {p99:.2f} ms over {len(warm)} calls (moto server)",
            {"p99_ms": p99},
        ),
    ]


if __name__ == "__main__":
    if sys.argv[1:2] == ["warm"]:
        _warm(int(sys.argv[2]))
