"""AWS events as Lambda receives them, shaped after the documented examples: API Gateway HTTP API
payload 2.0 and REST API payload 1.0 (with authorizer claims), SQS batches and S3 notifications.
Plus the handler's response read back the way API Gateway reads it, and a handler module imported
afresh, as a new Lambda instance imports it."""

from __future__ import annotations

import base64
import importlib
import json
import sys
import urllib.parse
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

ACCOUNT = "123456789012"
API_ID = "r3pmxmplak"


class LambdaContext:
    """The attributes of the context object Lambda passes to a handler."""

    function_name = "imagecore-api"
    function_version = "$LATEST"
    invoked_function_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:imagecore-api"
    memory_limit_in_mb = 1024
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    log_group_name = "/aws/lambda/imagecore-api"
    log_stream_name = "2026/11/22/[$LATEST]abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


def jwt_claims(user: str) -> dict[str, Any]:
    """Claims as the JWT authorizer passes them on: every value a string."""
    return {
        "sub": user,
        "iss": "https://auth.example.com/",
        "aud": "imagecore",
        "iat": "1795000000",
        "exp": "1795003600",
        "scope": "openid",
    }


def _body_fields(body: bytes | str | None) -> tuple[str | None, bool]:
    if body is None or body == b"":
        return None, False
    if isinstance(body, str):
        return body, False
    return base64.b64encode(body).decode(), True


def http_api_event(
    method: str,
    path: str,
    *,
    user: str | None = "alice",
    route_key: str | None = None,
    query: str = "",
    headers: Mapping[str, str] | None = None,
    body: bytes | str | None = None,
    path_parameters: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """An HTTP API (payload 2.0) event; ``user`` None is a route without an authorizer."""
    now = datetime.now(UTC)
    encoded, is_base64 = _body_fields(body)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key or "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {
            "accept": "*/*",
            "host": f"{API_ID}.execute-api.us-east-1.amazonaws.com",
            "user-agent": "curl/8.5.0",
            "x-amzn-trace-id": "Root=1-5e6722a7-cc56xmpl46db7ae02d4da47e",
            "x-forwarded-for": "203.0.113.7",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
            **{name.lower(): value for name, value in (headers or {}).items()},
        },
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": API_ID,
            "domainName": f"{API_ID}.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": API_ID,
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "curl/8.5.0",
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": route_key or "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": is_base64,
    }
    if query:
        event["queryStringParameters"] = {
            name: ",".join(values)
            for name, values in urllib.parse.parse_qs(query, keep_blank_values=True).items()
        }
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if user is not None:
        event["requestContext"]["authorizer"] = {
            "jwt": {"claims": jwt_claims(user), "scopes": None}
        }
    if encoded is not None:
        event["body"] = encoded
    return event


def rest_api_event(
    method: str,
    resource: str,
    path: str,
    *,
    user: str | None = "alice",
    query: Mapping[str, Sequence[str]] | None = None,
    headers: Mapping[str, str] | None = None,
    body: bytes | str | None = None,
    path_parameters: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A REST API (payload 1.0) event with a Cognito user pool authorizer's claims."""
    encoded, is_base64 = _body_fields(body)
    all_headers = {
        "Accept": "*/*",
        "Host": f"{API_ID}.execute-api.us-east-1.amazonaws.com",
        "User-Agent": "curl/8.5.0",
        "X-Forwarded-For": "203.0.113.7",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
        **(headers or {}),
    }
    event: dict[str, Any] = {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {name: [value] for name, value in all_headers.items()},
        "queryStringParameters": (
            {name: values[-1] for name, values in query.items()} if query else None
        ),
        "multiValueQueryStringParameters": (
            {name: list(values) for name, values in query.items()} if query else None
        ),
        "pathParameters": dict(path_parameters) if path_parameters else None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": API_ID,
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/prod{path}",
            "protocol": "HTTP/1.1",
            "stage": "prod",
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(datetime.now(UTC).timestamp() * 1000),
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "curl/8.5.0"},
        },
        "body": encoded,
        "isBase64Encoded": is_base64,
    }
    if user is not None:
        event["requestContext"]["authorizer"] = {"claims": jwt_claims(user)}
    return event


def multipart(
    image: bytes, filename: str = "beach.png", **fields: str
) -> tuple[bytes, dict[str, str]]:
    """A multipart/form-data upload body and its Content-Type, as a browser or curl sends it."""
    request = httpx.Request(
        "POST", "https://example.com/images", files={"file": (filename, image)}, data=fields
    )
    return request.read(), {"content-type": request.headers["content-type"]}


class GatewayResponse:
    """A handler's return value, as API Gateway turns it into an HTTP response."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.status: int = raw["statusCode"]
        headers = {name.lower(): value for name, value in (raw.get("headers") or {}).items()}
        for name, values in (raw.get("multiValueHeaders") or {}).items():
            headers[name.lower()] = ",".join(values)
        self.headers: dict[str, str] = headers
        body = raw.get("body") or ""
        self.body: bytes = base64.b64decode(body) if raw.get("isBase64Encoded") else body.encode()

    def json(self) -> Any:
        return json.loads(self.body)


# --- the worker's events --------------------------------------------------------------------


def s3_object_created(bucket: str, object_name: str, size: int) -> dict[str, Any]:
    """One record of an S3 event notification (the object name URL-encoded, as S3 sends it)."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "eventName": "ObjectCreated:Post",
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "203.0.113.7"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "direct-uploads",
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": {
                "key": urllib.parse.quote_plus(object_name, safe="/"),
                "size": size,
                "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                "sequencer": "0055AED6DCD90281E5",
            },
        },
    }


def sqs_event(*bodies: str, receive_count: int = 1) -> dict[str, Any]:
    """An SQS batch as the event source mapping delivers it; ``receive_count`` is how often each
    message has been received (its ``ApproximateReceiveCount``, 1 on the first delivery)."""
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": str(receive_count),
                    "SentTimestamp": str(int(datetime.now(UTC).timestamp() * 1000)),
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1545082649185",
                },
                "messageAttributes": {},
                "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:us-east-1:{ACCOUNT}:imagecore-jobs",
                "awsRegion": "us-east-1",
            }
            for body in bodies
        ]
    }


def thumbnail_job(image_id: str) -> str:
    """The body of the message the service enqueues for an image's thumbnail."""
    return json.dumps({"job": "thumbnail", "image_id": image_id})


def fresh_import(name: str) -> Any:
    sys.modules.pop(name, None)
    try:
        return importlib.import_module(name)
    finally:
        sys.modules.pop(name, None)
