"""Every error the API can answer with is a class with a status and a code of its own, and the
OpenAPI document lists exactly those codes."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from types import ModuleType

import entrypoints.http
import imagecore
from entrypoints.http.errors import STATUS_BY_ERROR, status_of
from entrypoints.http.openapi import openapi_document
from imagecore.errors import ImageCoreError, InvalidCursor, InvalidInput


def _import_all(package: ModuleType) -> None:
    for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        importlib.import_module(module.name)


def every_error_class() -> list[type[ImageCoreError]]:
    """Each subclass of ImageCoreError, at any depth, once the domain and the HTTP layer (every
    place an error the API answers with may be defined) are imported."""
    _import_all(imagecore)
    _import_all(entrypoints.http)

    def below(error: type[ImageCoreError]) -> Iterator[type[ImageCoreError]]:
        for subclass in error.__subclasses__():
            yield subclass
            yield from below(subclass)

    return list(dict.fromkeys(below(ImageCoreError)))


def test_every_error_class_has_a_status() -> None:
    missing = [error.__name__ for error in every_error_class() if status_of(error) is None]
    assert missing == [], f"add these to STATUS_BY_ERROR: {missing}"


def test_every_error_has_a_code_of_its_own() -> None:
    codes = [error.code for error in every_error_class()]
    assert len(codes) == len(set(codes)), sorted(codes)
    assert ImageCoreError.code not in codes, "a subclass that forgot to set its code"


def test_a_subclass_not_listed_has_the_status_of_its_base() -> None:
    assert InvalidCursor not in STATUS_BY_ERROR
    assert status_of(InvalidCursor) == STATUS_BY_ERROR[InvalidInput] == 400


def test_the_document_lists_exactly_the_codes_of_the_error_classes() -> None:
    expected = {error.code for error in every_error_class()}
    listed = openapi_document()["components"]["schemas"]["Error"]["properties"]["error"]["enum"]
    assert len(listed) == len(set(listed))
    assert set(listed) == expected
