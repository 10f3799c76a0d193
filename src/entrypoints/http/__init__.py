"""The HTTP API: a Starlette app that parses requests into use-case calls and renders their
results or errors. `app.create_app` puts it together; `asgi` builds it from the environment."""
