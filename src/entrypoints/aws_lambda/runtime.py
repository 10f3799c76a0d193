"""What every Lambda entrypoint shares: settings from the function's environment, checked for
what a fleet of instances needs, the logs as JSON lines, and the container built from them once
per instance."""

from __future__ import annotations

from entrypoints.container import Container, build_container
from entrypoints.logs import configure_lambda_logging
from entrypoints.settings import Settings, SettingsError


def container_from_environment() -> Container:
    settings = Settings.from_env()
    if settings.token_secret is None and settings.token_secret_parameter is None:
        # Elsewhere a secret is made once in the data dir; instances of a function share none.
        raise SettingsError(
            "IMAGECORE_TOKEN_SECRET_PARAMETER (or IMAGECORE_TOKEN_SECRET) must be set on "
            "Lambda: every instance signs and checks cursors with the same secret (the "
            "Terraform configuration names its SSM parameter)"
        )
    # JSON lines from every logger, at INFO (what a job did is INFO; the Lambda runtime's own
    # handler would log WARNING and above, as plain text).
    configure_lambda_logging()
    container = build_container(settings)
    # Read now, once per cold start: a parameter that is missing or may not be read fails the
    # instance's start with a message that names it, not a request later.
    container.secret()
    return container
