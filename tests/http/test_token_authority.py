"""Bearer tokens: the verdicts the embedded server relies on, including for tokens it has
already verified once (they are remembered, so a client's every request is not an HMAC)."""

from __future__ import annotations

import time
from datetime import timedelta

import jwt
import pytest

from entrypoints.http import auth
from entrypoints.http.auth import TokenAuthority
from imagecore.errors import Unauthenticated

SECRET = b"s" * 64


def test_a_token_verified_before_is_refused_once_it_expires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    authority = TokenAuthority(SECRET)
    token = authority.issue("alice", timedelta(seconds=60))
    assert authority.verify(token) == "alice"
    assert authority.verify(token) == "alice"  # remembered
    later = time.time() + 61
    monkeypatch.setattr(auth.time, "time", lambda: later)
    with pytest.raises(Unauthenticated, match="expired"):
        authority.verify(token)


def test_a_remembered_token_does_not_vouch_for_a_forged_one() -> None:
    authority = TokenAuthority(SECRET)
    token = authority.issue("alice")
    assert authority.verify(token) == "alice"
    header, _, signature = token.rpartition(".")
    forged_claims = jwt.encode({"sub": "mallory", "iss": "imagecore", "exp": 4102444800}, "k" * 32)
    forged = forged_claims.rpartition(".")[0] + "." + signature
    for candidate in (forged, header + "." + signature[::-1], token + "x"):
        with pytest.raises(Unauthenticated):
            authority.verify(candidate)


def test_a_token_of_another_secret_is_refused_even_when_this_one_knows_it() -> None:
    token = TokenAuthority(SECRET).issue("alice")
    assert TokenAuthority(SECRET).verify(token) == "alice"
    with pytest.raises(Unauthenticated):
        TokenAuthority(b"t" * 64).verify(token)


def test_the_remembered_tokens_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "VERIFIED_TOKENS_KEPT", 8)
    authority = TokenAuthority(SECRET)
    tokens = [authority.issue(f"user{n}") for n in range(20)]
    for n, token in enumerate(tokens):
        assert authority.verify(token) == f"user{n}"
    kept = authority._verified._entries  # private: the bound is the point of this test
    assert len(kept) == 8
    assert list(kept) == tokens[-8:]
    assert authority.verify(tokens[0]) == "user0"  # verified again, not refused
