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
        # Starlette serves HEAD wherever it serves GET; a HEAD of its own is documented.
        for method in (route.methods or set()) - ({"HEAD"} if "GET" in route.methods else set())
    }
    assert documented == served


def test_every_operation_is_in_one_tag_declared_with_a_description(api: Api) -> None:
    document = api.client.get("/openapi.json").json()
    declared = [tag["name"] for tag in document["tags"]]
    assert len(set(declared)) == len(declared)
    assert all(tag["description"].strip() for tag in document["tags"])
    tag_of = {
        operation["operationId"]: operation.get("tags")
        for item in document["paths"].values()
        for method, operation in item.items()
        if method != "parameters"
    }
    assert {operation: tags for operation, tags in tag_of.items() if len(tags or []) != 1} == {}
    used = {tags[0] for tags in tag_of.values()}
    assert used == set(declared), "a declared tag groups nothing, or a used one is undeclared"
    # The groups say what an operation works on.
    assert tag_of["listImages"] == tag_of["deleteImage"] == ["images"]
    assert tag_of["imageThumbnail"] == ["thumbnails"]
    assert tag_of["createUpload"] == tag_of["sendUpload"] == ["uploads"]
    assert tag_of["health"] == ["health"]
