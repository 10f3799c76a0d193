"""Helpers the test tiers share: the backends registry (backends.py), servers and clients for
the HTTP tests, moto, Lambda events, Terraform, and the images and test doubles the tests use.
Nothing here is a test or a fixture: fixtures live in the conftest.py files."""
