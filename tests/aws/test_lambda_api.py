"""The API Lambda handler with API Gateway events: HTTP API payload 2.0 and REST API payload 1.0,
base64 bodies both ways, the caller from the authorizer's claims; the same answers as the HTTP
server gives, because it is the same app."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from adapters.s3 import ObjectLinks
from entrypoints.aws_lambda.api_gateway import create_handler
from entrypoints.container import Container, build_container
from entrypoints.settings import Settings, SettingsError
from imagecore.service import ImageService
from tests.support.api_assertions import assert_matches_schema
from tests.support.fake_aws import aws_clients, fresh_resources
from tests.support.lambda_events import (
    GatewayResponse,
    LambdaContext,
    fresh_import,
    http_api_event,
    multipart,
    rest_api_event,
)
from tests.support.sample_images import image_bytes

SECRET = "lambda-tests-secret-of-32-chars!"
PNG = image_bytes("image/png", 9, 4)

Invoke = Callable[[dict[str, Any]], GatewayResponse]


def memory_container() -> Container:
    return build_container(Settings(backend="memory", token_secret=SECRET))


def invoker(container: Container) -> Invoke:
    handler = create_handler(container)
    return lambda event: GatewayResponse(handler(event, LambdaContext()))


@pytest.fixture
def invoke() -> Invoke:
    return invoker(memory_container())


def assert_error(response: GatewayResponse, status: int, code: str) -> None:
    assert response.status == status, response.body
    body = response.json()
    assert_matches_schema(body, "Error")
    assert body["error"] == code
    assert body["request_id"] == response.headers["x-request-id"]


def upload_v2(invoke: Invoke, user: str = "alice", image: bytes = PNG, **fields: str) -> Any:
    body, headers = multipart(image, **fields)
    response = invoke(
        http_api_event(
            "POST", "/images", user=user, headers=headers, body=body, route_key="POST /images"
        )
    )
    assert response.status == 201, response.body
    return response.json()


# --- HTTP API, payload 2.0 ----------------------------------------------------------------------


def test_v2_upload_takes_a_base64_multipart_body_and_answers_the_resource(invoke: Invoke) -> None:
    body, headers = multipart(PNG, title="Dunes", tags="sand,sea", visibility="public")
    response = invoke(
        http_api_event("POST", "/images", headers=headers, body=body, route_key="POST /images")
    )

    assert response.status == 201
    image = response.json()
    assert_matches_schema(image, "Image")
    assert (image["user_id"], image["title"], image["tags"]) == ("alice", "Dunes", ["sand", "sea"])
    assert (image["width"], image["height"], image["size"]) == (9, 4, len(PNG))
    assert response.headers["location"] == f"/images/{image['image_id']}"
    assert response.headers["etag"]
    assert response.raw["isBase64Encoded"] is False, "JSON goes back as text"


def test_v2_list_reads_filters_from_the_raw_query_string(invoke: Invoke) -> None:
    beach = upload_v2(invoke, tags="beach,sun")
    upload_v2(invoke, tags="city")
    upload_v2(invoke, user="bob", tags="beach")  # private: alice never sees it

    response = invoke(
        http_api_event("GET", "/images", query="tags=beach&limit=10", route_key="GET /images")
    )

    assert response.status == 200
    page = response.json()
    assert_matches_schema(page, "ImagePage")
    assert [image["image_id"] for image in page["images"]] == [beach["image_id"]]


def test_v2_paging_follows_the_cursor_to_the_end(invoke: Invoke) -> None:
    uploaded = [upload_v2(invoke)["image_id"] for _ in range(5)]
    seen: list[str] = []
    query = "limit=2"
    while True:
        page = invoke(http_api_event("GET", "/images", query=query)).json()
        seen += [image["image_id"] for image in page["images"]]
        if page["next_cursor"] is None:
            break
        query = f"limit=2&cursor={page['next_cursor']}"
    assert seen == uploaded[::-1]


def test_v2_download_sends_the_bytes_base64_encoded(invoke: Invoke) -> None:
    image = upload_v2(invoke, filename="dunes.png")
    path = f"/images/{image['image_id']}/download"

    response = invoke(
        http_api_event(
            "GET",
            path,
            route_key="GET /images/{image_id}/download",
            path_parameters={"image_id": image["image_id"]},
        )
    )

    assert response.status == 200
    assert response.raw["isBase64Encoded"] is True
    assert response.body == PNG
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-disposition"].startswith("attachment")


def test_v2_download_of_a_range_and_a_revalidation(invoke: Invoke) -> None:
    image = upload_v2(invoke)
    path = f"/images/{image['image_id']}/download"

    partial = invoke(http_api_event("GET", path, headers={"Range": "bytes=0-9"}))
    assert (partial.status, partial.body) == (206, PNG[:10])

    etag = partial.headers["etag"]
    assert invoke(http_api_event("GET", path, headers={"If-None-Match": etag})).status == 304


def test_v2_update_with_if_match_then_delete(invoke: Invoke) -> None:
    image = upload_v2(invoke)
    path = f"/images/{image['image_id']}"

    updated = invoke(
        http_api_event(
            "PATCH",
            path,
            body='{"title": "Renamed", "tags": ["a"]}',
            headers={"Content-Type": "application/json", "If-Match": "1"},
        )
    )
    assert updated.status == 200, updated.body
    changed = updated.json()
    # One edit on top of version 1, and one more if the thumbnail job settled before it.
    settled = changed["thumbnail_status"] != "pending"
    assert (changed["title"], changed["version"]) == ("Renamed", 2 + settled)

    stale = invoke(
        http_api_event(
            "PATCH",
            path,
            body='{"title": "Again"}',
            headers={"Content-Type": "application/json", "If-Match": "1"},
        )
    )
    assert_error(stale, 412, "PreconditionFailed")

    assert invoke(http_api_event("DELETE", path)).status == 204
    assert invoke(http_api_event("DELETE", path)).status == 204
    assert_error(invoke(http_api_event("GET", path)), 404, "NotFound")


def test_v2_another_users_private_image_is_not_found(invoke: Invoke) -> None:
    image = upload_v2(invoke, user="alice")
    response = invoke(http_api_event("GET", f"/images/{image['image_id']}", user="bob"))
    assert_error(response, 404, "NotFound")


def test_v2_path_with_encoded_characters_reaches_the_same_route(invoke: Invoke) -> None:
    response = invoke(http_api_event("GET", "/images/%2E%2E%2Fsecret"))
    assert_error(response, 404, "NotFound")


# --- who the caller is ----------------------------------------------------------------------------


def test_without_authorizer_claims_the_caller_is_unauthenticated(invoke: Invoke) -> None:
    response = invoke(http_api_event("GET", "/images", user=None))
    assert_error(response, 401, "Unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_bearer_token_without_claims_lets_no_one_in(invoke: Invoke) -> None:
    """A route left without an authorizer must not fall back to trusting the header."""
    container = memory_container()
    token = container.tokens().issue("alice")
    response = invoke(
        http_api_event("GET", "/images", user=None, headers={"Authorization": f"Bearer {token}"})
    )
    assert_error(response, 401, "Unauthenticated")


@pytest.mark.parametrize("subject", ["", " alice", "a/b", "x" * 200])
def test_claims_whose_subject_is_no_user_id_are_unauthenticated(
    invoke: Invoke, subject: str
) -> None:
    event = http_api_event("GET", "/images")
    event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = subject
    assert_error(invoke(event), 401, "Unauthenticated")


def test_claims_without_a_subject_are_unauthenticated(invoke: Invoke) -> None:
    event = http_api_event("GET", "/images")
    del event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"]
    assert_error(invoke(event), 401, "Unauthenticated")


def test_health_and_the_document_need_no_claims(invoke: Invoke) -> None:
    health = invoke(http_api_event("GET", "/health", user=None)).json()
    assert health == {
        "status": "ok",
        "checks": {"metadata": "ok", "blobs": "ok", "space": "ok"},
    }
    document = invoke(http_api_event("GET", "/openapi.json", user=None))
    assert document.status == 200
    assert document.json()["openapi"].startswith("3.")


# --- only through CloudFront (IMAGECORE_ORIGIN_VERIFY_SECRET) ------------------------------------

ORIGIN_SECRET = "origin-secret-that-cloudfront-adds"


@pytest.fixture
def behind_cloudfront() -> Invoke:
    return invoker(
        build_container(
            Settings(backend="memory", token_secret=SECRET, origin_verify_secret=ORIGIN_SECRET)
        )
    )


def test_behind_cloudfront_a_request_with_its_header_is_served(behind_cloudfront: Invoke) -> None:
    body, headers = multipart(PNG, title="Through the edge")
    created = behind_cloudfront(
        http_api_event(
            "POST", "/images", headers={**headers, "X-Origin-Verify": ORIGIN_SECRET}, body=body
        )
    )
    assert created.status == 201, created.body

    listed = behind_cloudfront(
        http_api_event("GET", "/images", headers={"x-origin-verify": ORIGIN_SECRET})
    )
    assert [image["title"] for image in listed.json()["images"]] == ["Through the edge"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Origin-Verify": ""},
        {"X-Origin-Verify": "origin-secret-that-cloudfront-add"},
        {"X-Origin-Verify": ORIGIN_SECRET.upper()},
        {"X-Origin-Verify": f"{ORIGIN_SECRET},{ORIGIN_SECRET}"},
        {"X-Origin-Secret": ORIGIN_SECRET},
    ],
    ids=["missing", "empty", "a-prefix", "other-case", "twice", "other-header"],
)
def test_behind_cloudfront_a_request_around_it_is_refused_whatever_it_asks(
    behind_cloudfront: Invoke, headers: dict[str, str]
) -> None:
    body, form = multipart(PNG)
    requests = [
        http_api_event("POST", "/images", headers={**form, **headers}, body=body),
        http_api_event("GET", "/images", headers=headers),
        http_api_event("GET", "/health", user=None, headers=headers),
        http_api_event("GET", "/no/such/path", user=None, headers=headers),
    ]
    for event in requests:
        response = behind_cloudfront(event)
        assert_error(response, 403, "Forbidden")
        assert "CloudFront URL" in response.json()["message"]
        assert response.headers["x-content-type-options"] == "nosniff"

    # Nothing refused was done: the upload above stored no image.
    served = behind_cloudfront(
        http_api_event("GET", "/images", headers={"X-Origin-Verify": ORIGIN_SECRET})
    )
    assert served.json()["count"] == 0


def test_behind_cloudfront_a_rest_api_event_needs_the_header_too(
    behind_cloudfront: Invoke,
) -> None:
    refused = behind_cloudfront(rest_api_event("GET", "/images", "/images"))
    assert_error(refused, 403, "Forbidden")
    served = behind_cloudfront(
        rest_api_event("GET", "/images", "/images", headers={"X-Origin-Verify": ORIGIN_SECRET})
    )
    assert served.status == 200, served.body


def test_without_the_setting_no_header_is_needed(invoke: Invoke) -> None:
    assert invoke(http_api_event("GET", "/images")).status == 200
    assert invoke(http_api_event("GET", "/health", user=None)).status == 200


def test_the_handler_module_reads_the_origin_secret_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IMAGECORE_BACKEND", "memory")
    monkeypatch.setenv("IMAGECORE_TOKEN_SECRET", SECRET)
    monkeypatch.setenv("IMAGECORE_ORIGIN_VERIFY_SECRET", ORIGIN_SECRET)

    module = fresh_import("entrypoints.aws_lambda.api")

    def status(headers: dict[str, str]) -> int:
        event = http_api_event("GET", "/images", headers=headers)
        return GatewayResponse(module.handler(event, LambdaContext())).status

    assert status({}) == 403
    assert status({"X-Origin-Verify": ORIGIN_SECRET}) == 200


def test_the_origin_secret_never_shows_in_the_settings_repr() -> None:
    settings = Settings(backend="memory", origin_verify_secret=ORIGIN_SECRET)
    assert ORIGIN_SECRET not in repr(settings)


# --- REST API, payload 1.0 ----------------------------------------------------------------------


def test_v1_round_trip_with_cognito_claims(invoke: Invoke) -> None:
    body, headers = multipart(PNG, tags='["beach"]')
    created = invoke(rest_api_event("POST", "/images", "/images", headers=headers, body=body))
    assert created.status == 201, created.body
    image_id = created.json()["image_id"]

    listed = invoke(
        rest_api_event("GET", "/images", "/images", query={"tags": ["beach"], "limit": ["5"]})
    )
    assert [image["image_id"] for image in listed.json()["images"]] == [image_id]

    download = invoke(
        rest_api_event(
            "GET",
            "/images/{image_id}/download",
            f"/images/{image_id}/download",
            path_parameters={"image_id": image_id},
        )
    )
    assert (download.status, download.body) == (200, PNG)
    assert download.raw["isBase64Encoded"] is True

    deleted = invoke(
        rest_api_event(
            "DELETE",
            "/images/{image_id}",
            f"/images/{image_id}",
            path_parameters={"image_id": image_id},
        )
    )
    assert deleted.status == 204


def test_v1_a_repeated_query_parameter_is_refused_as_by_the_server(invoke: Invoke) -> None:
    response = invoke(rest_api_event("GET", "/images", "/images", query={"tags": ["a", "b"]}))
    assert_error(response, 400, "InvalidInput")


def test_v1_without_an_authorizer_is_unauthenticated(invoke: Invoke) -> None:
    response = invoke(rest_api_event("GET", "/images", "/images", user=None))
    assert_error(response, 401, "Unauthenticated")


# --- the same answers as the HTTP server --------------------------------------------------------

REQUESTS: list[tuple[str, str, str, dict[str, str], str | None]] = [
    ("GET", "/images", "limit=0", {}, None),
    ("GET", "/images", "colour=red", {}, None),
    ("GET", "/images", "cursor=forged", {}, None),
    ("GET", "/images", "start_date=yesterday", {}, None),
    ("GET", "/images/01JD0000000000000000000000", "", {}, None),
    ("PUT", "/images", "", {}, None),
    ("GET", "/nowhere", "", {}, None),
    ("POST", "/images", "", {"Content-Type": "image/png"}, "not multipart"),
    ("PATCH", "/images/01JD0000000000000000000000", "", {"Content-Type": "text/plain"}, "x"),
    ("PATCH", "/images/01JD0000000000000000000000", "", {"Content-Type": "application/json"}, "{"),
    ("DELETE", "/images/01JD0000000000000000000000", "", {}, None),
]


@pytest.mark.parametrize(("method", "path", "query", "headers", "body"), REQUESTS)
def test_errors_are_the_same_through_lambda_and_the_http_server(
    method: str, path: str, query: str, headers: dict[str, str], body: str | None
) -> None:
    container = memory_container()
    invoke = invoker(container)
    token = container.tokens().issue("alice")

    async def through_the_http_app() -> httpx.Response:
        transport = httpx.ASGITransport(app=container.http_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://server") as client:
            return await client.request(
                method,
                f"{path}?{query}" if query else path,
                headers={**headers, "Authorization": f"Bearer {token}"},
                content=body,
            )

    through_lambda = invoke(http_api_event(method, path, query=query, headers=headers, body=body))
    through_server = asyncio.run(through_the_http_app())

    assert through_lambda.status == through_server.status_code
    lambda_body, server_body = through_lambda.json(), through_server.json()
    assert lambda_body.pop("request_id")
    assert server_body.pop("request_id")
    assert lambda_body == server_body
    assert through_lambda.headers.get("allow") == through_server.headers.get("allow")


# --- the aws backend ------------------------------------------------------------------------------


@contextlib.contextmanager
def aws_backend(cdn_links: ObjectLinks | None = None) -> Iterator[Invoke]:
    """The API Lambda on the aws backend (moto server, a fresh table and bucket), its links
    ``cdn_links`` where given."""
    from dependency_injector import providers

    with aws_clients("server") as clients, fresh_resources(clients) as (table, bucket):
        container = build_container(
            Settings(backend="aws", token_secret=SECRET, table=table, bucket=bucket)
        )
        container.aws.override(providers.Object(clients))
        if cdn_links is not None:
            container.cdn_links.override(providers.Object(cdn_links))
        yield invoker(container)
        # Thumbnails are made in the background here: let them finish before the bucket goes.
        assert container.local_jobs().join(timeout=30)


def wait_for_thumbnail(invoke: Invoke, path: str) -> None:
    """Until the image at ``path`` has its thumbnail and renditions (made in the background)."""
    for _ in range(300):
        if invoke(http_api_event("GET", path)).json()["thumbnail_status"] == "ready":
            return
        time.sleep(0.05)


@pytest.fixture
def aws_invoke() -> Iterator[Invoke]:
    with aws_backend() as invoke:
        yield invoke


def test_on_aws_a_download_redirects_to_a_presigned_url(aws_invoke: Invoke) -> None:
    image = upload_v2(aws_invoke)

    response = aws_invoke(http_api_event("GET", f"/images/{image['image_id']}/download"))

    assert response.status == 307
    assert "X-Amz-Signature=" in response.headers["location"]
    assert response.headers["etag"]


CDN_DOMAIN = "d111111abcdef8.cloudfront.net"


@pytest.fixture
def aws_cdn_invoke() -> Iterator[Invoke]:
    """The aws backend with the image CDN on (its links signed with a key made here)."""
    from adapters.cloudfront import CloudFrontLinks, new_signing_key

    links = CloudFrontLinks(CDN_DOMAIN, "K2JCJMDEHXQW5F", new_signing_key()[0])
    with aws_backend(cdn_links=links) as invoke:
        yield invoke


def test_with_the_cdn_downloads_and_renditions_redirect_to_cloudfront(
    aws_cdn_invoke: Invoke,
) -> None:
    image = upload_v2(aws_cdn_invoke, filename="dunes.png")
    path = f"/images/{image['image_id']}"

    download = aws_cdn_invoke(http_api_event("GET", f"{path}/download"))

    assert download.status == 307
    location = httpx.URL(download.headers["location"])
    assert (location.scheme, location.host) == ("https", CDN_DOMAIN)
    assert location.path == f"/images/alice/{image['image_id']}"
    fields = dict(location.params)
    assert fields["response-content-type"] == "image/png"
    assert 'filename="dunes.png"' in fields["response-content-disposition"]
    assert {"Expires", "Signature", "Key-Pair-Id"} <= set(fields)
    assert "X-Amz-Signature" not in fields

    wait_for_thumbnail(aws_cdn_invoke, path)
    rendition = aws_cdn_invoke(
        http_api_event("GET", f"{path}/renditions/thumbnail", headers={"Accept": "image/webp"})
    )
    assert rendition.status == 307
    served_as_stored = httpx.URL(rendition.headers["location"])
    assert served_as_stored.host == CDN_DOMAIN
    assert served_as_stored.path.startswith(f"/images/alice/{image['image_id']}/renditions/")
    assert set(dict(served_as_stored.params)) == {"Expires", "Signature", "Key-Pair-Id"}


def test_on_aws_no_answer_of_the_lambda_carries_image_bytes(aws_invoke: Invoke) -> None:
    image = upload_v2(aws_invoke)
    path = f"/images/{image['image_id']}"
    wait_for_thumbnail(aws_invoke, path)
    etag = aws_invoke(http_api_event("GET", f"{path}/download")).headers["etag"]
    variants: list[dict[str, str]] = [
        {},
        {"Range": "bytes=0-3"},
        {"Range": "bytes=0-3", "If-Range": etag},
        {"Range": "bytes=0-3", "If-Range": '"stale"'},
        {"Range": "bytes=-1"},
        {"If-None-Match": '"other"'},
    ]
    for target in ("download", "thumbnail"):
        for headers in variants:
            response = aws_invoke(http_api_event("GET", f"{path}/{target}", headers=headers))
            assert response.status == 307, (target, headers, response.status)
            assert response.body == b"", (target, headers)
            assert "X-Amz-Signature=" in response.headers["location"]


def test_on_aws_an_image_goes_through_its_whole_life(aws_invoke: Invoke) -> None:
    image = upload_v2(aws_invoke, tags="beach")
    path = f"/images/{image['image_id']}"
    listed = aws_invoke(http_api_event("GET", "/images", query="tags=beach")).json()
    assert [found["image_id"] for found in listed["images"]] == [image["image_id"]]
    patched = aws_invoke(
        http_api_event(
            "PATCH",
            path,
            body='{"visibility": "public"}',
            headers={"Content-Type": "application/json"},
        )
    )
    assert patched.json()["visibility"] == "public"
    assert aws_invoke(http_api_event("GET", path, user="bob")).status == 200
    assert aws_invoke(http_api_event("DELETE", path)).status == 204
    assert aws_invoke(http_api_event("GET", path)).status == 404


def test_on_aws_an_upload_session_hands_out_part_urls_and_no_byte_reaches_the_lambda(
    aws_invoke: Invoke,
) -> None:
    import base64
    import hashlib

    json_type = {"Content-Type": "application/json"}
    opened = aws_invoke(
        http_api_event("POST", "/upload-sessions", body='{"size": 20000000}', headers=json_type)
    )
    assert opened.status == 201, opened.body
    session = opened.json()
    assert (session["part_size"], session["part_count"]) == (8 * 1024 * 1024, 3)
    path = f"/upload-sessions/{session['upload_id']}"
    checksum = base64.b64encode(hashlib.sha256(b"part").digest()).decode()
    urls = aws_invoke(
        http_api_event(
            "POST",
            f"{path}/part-urls",
            body=f'{{"parts": [{{"number": 3, "sha256": "{checksum}"}}]}}',
            headers=json_type,
        )
    )
    assert urls.status == 200, urls.body
    (given,) = urls.json()["urls"]
    assert "X-Amz-Signature=" in given["url"]
    assert "partNumber=3" in given["url"]
    assert given["headers"] == {"x-amz-checksum-sha256": checksum}
    assert aws_invoke(http_api_event("GET", path)).json()["parts"] == []
    assert aws_invoke(http_api_event("POST", f"{path}/complete")).status == 409
    assert aws_invoke(http_api_event("DELETE", path)).status == 204


# --- the module Lambda loads ----------------------------------------------------------------------


def test_the_handler_module_builds_its_app_from_the_environment_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IMAGECORE_BACKEND", "memory")
    monkeypatch.setenv("IMAGECORE_TOKEN_SECRET", SECRET)

    module = fresh_import("entrypoints.aws_lambda.api")

    body, headers = multipart(PNG)
    upload = http_api_event("POST", "/images", body=body, headers=headers)
    assert GatewayResponse(module.handler(upload, LambdaContext())).status == 201
    listed = GatewayResponse(module.handler(http_api_event("GET", "/images"), LambdaContext()))
    assert listed.json()["count"] == 1, "a warm instance keeps its container between invocations"


def test_the_handler_module_refuses_to_start_without_a_shared_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IMAGECORE_BACKEND", "memory")
    monkeypatch.delenv("IMAGECORE_TOKEN_SECRET", raising=False)

    monkeypatch.delenv("IMAGECORE_TOKEN_SECRET_PARAMETER", raising=False)

    with pytest.raises(SettingsError, match="IMAGECORE_TOKEN_SECRET_PARAMETER"):
        fresh_import("entrypoints.aws_lambda.api")


# --- the request's id and the logs, as Lambda runs the module -------------------------------------


@pytest.fixture
def lambda_module(monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> Any:
    """The API handler module as a new Lambda instance imports it, after the runtime has put
    its plain-text handler on the root logger (here on stdout, which the tests then find
    empty)."""
    monkeypatch.setenv("IMAGECORE_BACKEND", "memory")
    monkeypatch.setenv("IMAGECORE_TOKEN_SECRET", SECRET)
    runtime_handler = logging.StreamHandler(sys.stdout)
    runtime_handler.setFormatter(logging.Formatter("[%(levelname)s]\t%(asctime)s\t%(message)s"))
    logging.getLogger().addHandler(runtime_handler)
    return fresh_import("entrypoints.aws_lambda.api")


def json_lines(text: str) -> list[dict[str, Any]]:
    """Each line of ``text`` as the JSON object it must be (a plain-text line fails)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_the_request_id_is_api_gateways_in_the_header_the_error_body_and_the_access_log(
    lambda_module: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    event = http_api_event("GET", "/images/01J0000000000000000000000Z")
    gateway_id = event["requestContext"]["requestId"]

    response = GatewayResponse(lambda_module.handler(event, LambdaContext()))

    assert response.status == 404
    assert response.headers["x-request-id"] == gateway_id
    assert response.json()["request_id"] == gateway_id
    (access,) = [
        line for line in json_lines(capfd.readouterr().err) if line["logger"] == "imagecore.access"
    ]
    assert access["request_id"] == gateway_id
    assert (access["method"], access["path"], access["status"]) == (
        "GET",
        "/images/01J0000000000000000000000Z",
        404,
    )


def test_a_rest_api_requests_id_is_the_gateways_too(lambda_module: Any) -> None:
    event = rest_api_event("GET", "/images/{image_id}", "/images/nope")

    response = GatewayResponse(lambda_module.handler(event, LambdaContext()))

    assert response.json()["request_id"] == event["requestContext"]["requestId"]


def test_a_request_id_that_is_not_the_gateways_shape_is_replaced_by_one_of_the_apps(
    lambda_module: Any,
) -> None:
    event = http_api_event("GET", "/images/nope")
    event["requestContext"]["requestId"] = "evil\r\nSet-Cookie: a=b"

    response = GatewayResponse(lambda_module.handler(event, LambdaContext()))

    assert response.status == 404
    assert re.fullmatch(r"[0-9a-f]{20}", response.json()["request_id"])
    assert response.headers["x-request-id"] == response.json()["request_id"]


def test_every_log_line_on_lambda_is_json_with_the_level_time_and_request_id(
    lambda_module: Any, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def fails(*args: object) -> None:
        raise RuntimeError("the store went away")

    monkeypatch.setattr(ImageService, "get", fails)
    event = http_api_event("GET", "/images/01J0000000000000000000000Z")
    gateway_id = event["requestContext"]["requestId"]
    capfd.readouterr()

    response = GatewayResponse(lambda_module.handler(event, LambdaContext()))
    logging.getLogger("botocore.credentials").info("a library's line, outside any request")

    assert response.status == 500
    assert response.json()["request_id"] == gateway_id
    captured = capfd.readouterr()
    assert captured.out == "", "no line went the runtime's plain-text way"
    lines = json_lines(captured.err)
    for line in lines:
        assert {"timestamp", "level", "logger", "message", "request_id"} <= set(line), line
        moment = datetime.fromisoformat(line["timestamp"])
        assert moment.utcoffset() == timedelta(0)
    by_logger = {line["logger"]: line for line in lines}
    error = by_logger["imagecore.http"]
    assert (error["level"], error["message"], error["request_id"]) == (
        "ERROR",
        "unhandled error",
        gateway_id,
    )
    assert "RuntimeError: the store went away" in error["exc_info"]
    assert by_logger["imagecore.access"]["request_id"] == gateway_id
    assert by_logger["imagecore.access"]["status"] == 500
    library = by_logger["botocore.credentials"]
    assert (library["level"], library["request_id"]) == ("INFO", None)


@pytest.mark.parametrize(
    ("lambda_level", "logged"),
    [("WARN", ["WARNING"]), ("DEBUG", ["DEBUG", "INFO", "WARNING"]), ("", ["INFO", "WARNING"])],
)
def test_the_functions_application_log_level_sets_what_is_logged(
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    lambda_level: str,
    logged: list[str],
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_LOG_LEVEL", lambda_level)  # as Lambda sets it
    monkeypatch.setenv("IMAGECORE_BACKEND", "memory")
    monkeypatch.setenv("IMAGECORE_TOKEN_SECRET", SECRET)
    fresh_import("entrypoints.aws_lambda.api")
    capfd.readouterr()

    probe = logging.getLogger("imagecore.probe")
    probe.debug("debug")
    probe.info("info")
    probe.warning("warning")

    lines = json_lines(capfd.readouterr().err)
    assert [line["level"] for line in lines if line["logger"] == "imagecore.probe"] == logged
