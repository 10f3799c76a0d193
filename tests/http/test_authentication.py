"""Authentication through a real server, on each backend: a token of another key, unsigned,
expired, without a subject or tampered with, another scheme, or a subject that is no user id,
is each a 401 in the error format."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from tests.support.api_assertions import assert_error
from tests.support.api_client import Api


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
