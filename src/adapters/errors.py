"""Errors of the adapters that the entrypoints report to a person."""

from __future__ import annotations


class MissingResource(RuntimeError):
    """A table, bucket or service the configuration names does not exist or cannot be reached."""


class UnusableDataDir(RuntimeError):
    """The data dir, or a file in it, cannot be trusted or used: another user owns it, others
    may write to it, or the token secret in it is unreadable or malformed. The message names
    the path and what to do."""
