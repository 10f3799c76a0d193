"""The tests of imagecore, one directory per tier; each says in its ``__init__`` what it proves.

- domain/: the use cases and the rules under them, over the memory adapters.
- contract/: every adapter holds to its port (the contract suite on every backend), and what each
  adapter promises beyond it.
- http/: the HTTP app, mostly through a real ``imagecore serve`` on every backend.
- cli/: the server's commands and settings, and the client's commands against a real server.
- aws/: the Lambda handlers, the Lambda package and the Terraform configuration, on moto.
- reliability/: faults injected at every port call, and the server killed mid-request.
- test_architecture.py, test_wiring_is_typed.py: the dependency rule and the typed wiring.

support/ holds the helpers the tiers share (no tests, no fixtures: those live in conftest.py
files). support/backends.py lists the storage backends every per-backend suite runs against.
"""
