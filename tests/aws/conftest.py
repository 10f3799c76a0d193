"""What the Lambda tests share."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from entrypoints import logs


@pytest.fixture(autouse=True, scope="module")
def logging_left_as_found() -> Iterator[None]:
    """A handler module configures the logging of the whole process on import, as a Lambda
    instance should (JSON lines, named as Lambda reads them): put back what the process had,
    so that no test of another module sees it. Per module, as modules import the handlers in
    module-scoped fixtures."""
    root = logging.getLogger()
    handlers, level, time_field = list(root.handlers), root.level, logs._time_field
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        if handler not in handlers:
            handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    logs._time_field = time_field
