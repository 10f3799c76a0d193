"""Implementations of imagecore's ports: memory, filesystem, SQLite, Pillow, clock and ids."""
