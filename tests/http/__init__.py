"""The HTTP app: each endpoint, the guards and what an operator sees, through a real
``imagecore serve`` on every backend of tests/support/backends.py; and the HTTP layer's own
parts (the streaming form reader, the rate limiter, tokens, logs) on their own."""
