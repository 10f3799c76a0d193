"""Benchmarks of imagecore against its limits: `python -m bench [--quick]` (see bench/run.py)."""
