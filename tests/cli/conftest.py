"""What the command tests share."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def environment_left_as_found() -> Iterator[None]:
    """`serve` run in the test's process writes its settings, and TMPDIR (a scratch dir inside
    a data dir the test removes), to the environment for its workers; left there, they would
    reach every later test of the process and what it starts (a browser that cannot make a
    temporary file aborts)."""
    saved = dict(os.environ)
    yield
    for name in set(os.environ) - set(saved):
        del os.environ[name]
    os.environ.update(saved)
