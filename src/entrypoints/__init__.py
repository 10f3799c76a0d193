"""Thin translators between the outside world and imagecore: HTTP, CLI, and the DI container."""
