"""API auth building blocks: key format, scope grants, HS256 JWT verification, problems."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

from api.auth import Principal, _scopes_from_claims, authorizer_principal, verify_jwt
from api.problems import ApiProblem
from api.schemas import json_problem
from shared.apikeys import VerifiedKey, VerifiedKeyCache, grants, hash_secret, parse_key

SECRET = b"s" * 64


def token(claims: dict[str, Any], *, alg: str = "HS256", secret: bytes = SECRET) -> str:
    def enc(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    head = enc(json.dumps({"alg": alg}).encode())
    body = enc(json.dumps(claims).encode())
    sig = enc(hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{sig}"


@pytest.mark.parametrize(
    ("held", "required", "allowed"),
    [
        (["admin"], "workflows:write", True),
        (["tasks:write"], "tasks:read", True),
        (["tasks:read"], "tasks:write", False),
        (["workflows:write"], "tasks:read", False),
        (["workflows:read"], "workflows:read", True),
        ([], "tasks:read", False),
    ],
)
def test_scope_grants(held: list[str], required: str, allowed: bool) -> None:
    assert grants(held, required) is allowed


def test_key_format() -> None:
    assert parse_key("cvk_0123456789ab_" + "x" * 43) == ("0123456789ab", "x" * 43)
    for bad in ("cvk_0123456789ab", "cvk_XYZ_" + "x" * 43, "abc", "cvk_0123456789ab_short"):
        assert parse_key(bad) is None
    assert hash_secret("x") == hashlib.sha256(b"x").hexdigest()


def test_jwt_verification() -> None:
    claims = verify_jwt(token({"sub": "svc", "scope": "tasks:read", "exp": 2000}), SECRET, now=1000)
    assert claims["sub"] == "svc"
    assert _scopes_from_claims({"scope": "a b", "scopes": ["c"]}) == {"a", "b", "c"}
    assert _scopes_from_claims({"scopes": "[a b]"}) == {"a", "b"}
    cases = [
        (token({"exp": 900}), "expired"),
        (token({"exp": 2000, "nbf": 1100}), "not valid yet"),
        (token({"scope": "admin"}), "exp claim"),
        (token({"exp": 2000}, alg="none"), "HS256"),
        (token({"exp": 2000}, secret=b"x" * 64), "signature"),
        ("a.b", "neither"),
        ("%%%.e30.sig", "well-formed"),
        (token({"exp": 2000}).rsplit(".", 1)[0] + ".AAAA", "signature"),
    ]
    for raw, needle in cases:
        with pytest.raises(ApiProblem, match=needle) as caught:
            verify_jwt(raw, SECRET, now=1000)
        assert caught.value.status == 401
    # 30 s of leeway for clock skew.
    verify_jwt(token({"exp": 990}), SECRET, now=1000)


def test_authorizer_claims_only_from_a_lambda_event() -> None:
    assert authorizer_principal({}) is None
    assert authorizer_principal({"aws.event": {"requestContext": {}}}) is None
    event = {
        "requestContext": {
            "authorizer": {
                "jwt": {
                    "claims": {"sub": "app", "scope": "tasks:read"},
                    "scopes": ["workflows:read"],
                }
            }
        }
    }
    assert authorizer_principal({"aws.event": event}) == Principal(
        name="jwt:app", scopes=frozenset({"tasks:read", "workflows:read"}), kind="authorizer"
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"a": [1, "x", {"b": None}]}, None),
        ({"a": "\x00"}, "a: NUL characters are not allowed"),
        ({"a": [1.0, float("nan")]}, "a[1]: NaN and Infinity are not JSON numbers"),
        ({"a\x00": 1}, "value: NUL characters are not allowed in keys"),
    ],
)
def test_json_problems(value: Any, problem: str | None) -> None:
    assert json_problem(value) == problem


def test_json_depth_limit() -> None:
    deep: Any = 1
    for _ in range(70):
        deep = [deep]
    assert "nested deeper" in str(json_problem({"a": deep}))


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


KEY = "cvk_0123456789ab_" + "A" * 43
VERIFIED = VerifiedKey(id=1, name="ci", scopes=["tasks:read"])


@pytest.mark.parametrize(
    ("ttl", "elapsed", "asked", "found"),
    [
        (5.0, 0.0, KEY, True),  # just verified
        (5.0, 4.9, KEY, True),  # still within the TTL
        (5.0, 5.0, KEY, False),  # expired: look it up again
        (5.0, 0.0, KEY[:-1] + "B", False),  # another secret with the same prefix never matches
        (0.0, 0.0, KEY, False),  # ttl 0 keeps nothing
    ],
)
def test_a_verified_key_is_trusted_for_the_cache_time_only(
    ttl: float, elapsed: float, asked: str, found: bool
) -> None:
    clock = _Clock()
    cache = VerifiedKeyCache(ttl, clock=clock)
    cache.put(KEY, VERIFIED)
    clock.now += elapsed
    assert (cache.get(asked) == VERIFIED) is found


def test_the_key_cache_stays_bounded() -> None:
    cache = VerifiedKeyCache(5.0, clock=_Clock(), max_entries=3)
    keys = [f"cvk_0123456789ab_{n:043d}" for n in range(4)]
    for key in keys:
        cache.put(key, VERIFIED)
    assert cache.get(keys[-1]) == VERIFIED
    assert sum(cache.get(key) is not None for key in keys) <= 3
