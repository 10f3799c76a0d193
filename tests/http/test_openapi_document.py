"""The OpenAPI document at /openapi.json: valid OpenAPI 3, and describing exactly the routes the
app serves."""

from __future__ import annotations

from openapi_spec_validator import validate

from tests.support.api_client import Api


def test_openapi_document_is_valid_openapi_3(api: Api) -> None:
    document = api.client.get("/openapi.json").json()
    validate(document)
    assert document["openapi"].startswith("3.")


def test_openapi_document_describes_exactly_the_served_routes(api: Api) -> None:
    from starlette.routing import Route

    from entrypoints.container import build_container
    from entrypoints.settings import Settings

    document = api.client.get("/openapi.json").json()
    documented = {
        (path, method.upper())
        for path, item in document["paths"].items()
        for method in item
        if method != "parameters"
    }
    app = build_container(Settings(backend="memory", token_secret="s" * 32)).http_app()
    served = {
        (route.path, method)
        for route in app.routes
        if isinstance(route, Route) and not route.path.startswith("/docs/static")
        for method in (route.methods or set()) - {"HEAD"}
    }
    assert documented == served
