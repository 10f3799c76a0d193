"""The command line: the server's commands (serve, token, reconcile, aws-setup, terraform-env,
api-reference) and its settings, and the client's commands against a real ``imagecore serve``."""
