"""Authentication, the service endpoints and the error format through a real server."""

from __future__ import annotations

import base64
import json
import time

import httpx
import jwt
import pytest
from openapi_spec_validator import validate

from tests.http.conftest import Api
from tests.http.helpers import assert_error


def _unsigned(claims: dict[str, object]) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def _bad_tokens(api: Api) -> dict[str, str]:
    now = int(time.time())
    good = {"sub": "alice", "iss": "imagecore", "iat": now, "exp": now + 600}
    other_key = "k" * 64
    real = api.token("alice")
    return {
        "another key": jwt.encode(good, other_key, algorithm="HS256"),
        "alg none": _unsigned(good),
        "expired": api.server.token("alice", "--ttl", "1"),
        "no sub": jwt.encode({k: v for k, v in good.items() if k != "sub"}, other_key),
        "tampered": real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB"),
        "garbage": "not.a.token",
    }


@pytest.mark.parametrize(
    "case", ["another key", "alg none", "expired", "no sub", "tampered", "garbage"]
)
def test_requests_with_unacceptable_tokens_are_401(api: Api, case: str) -> None:
    token = _bad_tokens(api)[case]
    if case == "expired":
        time.sleep(1.1)
    response = api.client.get("/images", headers={"Authorization": f"Bearer {token}"})
    assert_error(response, 401, "Unauthenticated")


@pytest.mark.parametrize("header", ["Basic YWxpY2U6cHc=", "Bearer", "token abc", "Bearer\tx"])
def test_other_authorization_schemes_are_401(api: Api, header: str) -> None:
    assert_error(
        api.client.get("/images", headers={"Authorization": header}), 401, "Unauthenticated"
    )


def test_a_token_for_a_subject_that_is_no_user_id_is_401(api: Api) -> None:
    secret = (api.server.data_dir / "secret.key").read_text().strip()
    now = int(time.time())
    claims = {"sub": "../../etc", "iss": "imagecore", "iat": now, "exp": now + 60}
    token = jwt.encode(claims, secret, algorithm="HS256")
    assert_error(api.client.get("/images", headers={"Authorization": f"Bearer {token}"}), 401,
                 "Unauthenticated")  # fmt: skip


def test_health_needs_no_token(api: Api) -> None:
    response = api.client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"metadata": "ok", "blobs": "ok"}}
    assert response.headers["x-request-id"]


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


def test_docs_page_renders_the_document_with_local_assets(api: Api) -> None:
    page = api.client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for asset in ("/docs/static/swagger-ui.css", "/docs/static/swagger-ui-bundle.js",
                  "/docs/static/docs.js"):  # fmt: skip
        assert asset in page.text
        assert api.client.get(asset).status_code == 200
    assert "/openapi.json" in api.client.get("/docs/static/docs.js").text


def test_unknown_routes_and_methods_answer_in_the_error_format(api: Api, alice: str) -> None:
    assert_error(api.client.get("/nowhere"), 404, "NotFound")
    not_allowed = api.client.put("/images", headers=api.auth(alice))
    assert_error(not_allowed, 405, "MethodNotAllowed")
    assert set(not_allowed.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}
    on_an_image = api.client.post("/images/01JAAAAAAAAAAAAAAAAAAAAAAA", headers=api.auth(alice))
    assert_error(on_an_image, 405, "MethodNotAllowed")
    assert set(on_an_image.headers["allow"].split(", ")) == {"GET", "HEAD", "PATCH", "DELETE"}


def test_the_server_answers_garbage_requests_without_falling_over(api: Api) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", api.server.port), timeout=5) as sock:
        sock.sendall(b"\x00\xff GARBAGE \r\n\r\n")
        sock.recv(1024)
    assert httpx.get(f"{api.server.url}/health").status_code == 200


def _chromium() -> str | None:
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(
    _chromium() is None, reason="no chromium on this machine (apt-get install chromium)"
)
def test_docs_page_renders_every_operation_in_a_browser(api: Api, tmp_path) -> None:
    import subprocess

    dom = subprocess.run(
        [
            _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={tmp_path}", "--virtual-time-budget=10000",
            "--dump-dom", f"{api.server.url}/docs",
        ],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    assert "Unable to render" not in dom
    for path in ("/images", "/images/{image_id}", "/images/{image_id}/download", "/health"):
        assert f'class="opblock-summary-path" data-path="{path}"' in dom
