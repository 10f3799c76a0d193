"""The security headers on every kind of response (no sniffing, no framing, no referrer, a
content security policy), and the docs page's policy, which runs only its own scripts."""

from __future__ import annotations

import re

import httpx

from tests.support.api_client import Api


def assert_security_headers(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-request-id"]


def test_every_kind_of_response_carries_the_security_headers(api: Api, alice: str) -> None:
    image = api.uploaded(alice, filename='evil"\r\nname<script>.png')
    responses = [
        api.client.get("/health"),
        api.client.get("/openapi.json"),
        api.client.get("/docs"),
        api.client.get("/favicon.ico"),
        api.list(alice),
        api.client.get(f"/images/{image['image_id']}", headers=api.auth(alice)),
        api.client.get("/images/nope", headers=api.auth(alice)),
        api.client.get("/images"),
        api.client.put("/images"),
        api.client.get("/no/such/path"),
        api.client.post("/images", headers=api.auth(alice), content=b"x"),
    ]
    for response in responses:
        assert_security_headers(response)
    for response in responses[:2] + responses[3:]:
        assert response.headers["content-security-policy"].startswith("default-src 'none'")

    first, download = api.download(alice, image["image_id"])
    assert_security_headers(first)
    if first is download:  # served by us, not by a presigned S3 URL
        assert "sandbox" in download.headers["content-security-policy"]
        assert re.fullmatch(
            r"""attachment; filename="[ !#-\[\]-~]+"; filename\*=UTF-8''[A-Za-z0-9%._~-]+""",
            download.headers["content-disposition"],
        ), download.headers["content-disposition"]


def test_the_docs_page_may_run_only_its_own_scripts(api: Api) -> None:
    policy = api.client.get("/docs").headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-eval" not in policy
    assert "script-src 'self' 'unsafe-inline'" not in policy
