"""Errors of the adapters that the entrypoints report to a person."""

from __future__ import annotations


class MissingResource(RuntimeError):
    """A table, bucket or service the configuration names does not exist or cannot be reached."""
