"""Who is calling and what they may do: API keys, HS256 JWTs, API Gateway JWT authorizer claims.

Every protected route is an :class:`ProtectedRoute` whose OpenAPI operation names the scope it
needs (``x-required-scope``). The route authenticates and authorizes *before* the body is read or
validated, so an anonymous caller learns nothing from a 400/422, and counts the call against the
key's monthly usage once it is allowed.

Credentials, in order:

1. API Gateway JWT authorizer claims (``requestContext.authorizer.jwt.claims`` of the Lambda
   event, which API Gateway already verified; only present under Lambda);
2. ``Authorization: Bearer cvk_…``: an API key (hash compared in constant time, not revoked);
3. ``Authorization: Bearer <jwt>``: an HS256 token signed with ``settings.jwt_secret``, with
   ``exp`` and ``scope`` (space-separated) or ``scopes`` (list) claims.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Coroutine, MutableMapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.problems import ApiProblem
from api.runtime import Runtime, utcnow
from shared.apikeys import grants, looks_like_key, verify_key

SCOPE_KEY = "x-required-scope"
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="conveyor"'}
JWT_LEEWAY_SECONDS = 30


@dataclass(frozen=True)
class Principal:
    name: str
    scopes: frozenset[str]
    kind: str  # "api_key" | "jwt" | "authorizer" | "lambda" | "event"
    key_id: int | None = None


def _unauthorized(detail: str) -> ApiProblem:
    return ApiProblem(401, detail, headers=CHALLENGE)


def _b64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _scopes_from_claims(claims: dict[str, Any]) -> frozenset[str]:
    scopes: set[str] = set()
    value = claims.get("scope")
    if isinstance(value, str):
        scopes.update(value.split())
    listed = claims.get("scopes")
    if isinstance(listed, list):
        scopes.update(str(item) for item in listed)
    elif isinstance(listed, str):  # API Gateway flattens arrays to "[a b]" strings
        scopes.update(listed.strip("[]").replace(",", " ").split())
    return frozenset(scopes)


def verify_jwt(token: str, secret: bytes, *, now: float | None = None) -> dict[str, Any]:
    """Claims of an HS256 JWT signed with ``secret``; raises a 401 problem otherwise."""
    parts = token.split(".")
    if len(parts) != 3:
        raise _unauthorized("the bearer token is neither an API key nor a JWT")
    try:
        header = json.loads(_b64url(parts[0]))
        signature = _b64url(parts[2])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _unauthorized("the bearer token is not a well-formed JWT") from None
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise _unauthorized("JWT: only HS256 tokens are accepted")
    expected = hmac.new(secret, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise _unauthorized("JWT: the signature does not match")
    try:
        claims = json.loads(_b64url(parts[1]))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _unauthorized("JWT: the payload is not JSON") from None
    if not isinstance(claims, dict):
        raise _unauthorized("JWT: the payload is not a JSON object")
    current = time.time() if now is None else now
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise _unauthorized("JWT: the exp claim is missing")
    if current > exp + JWT_LEEWAY_SECONDS:
        raise _unauthorized("JWT: the token has expired")
    nbf = claims.get("nbf")
    if isinstance(nbf, int | float) and current < nbf - JWT_LEEWAY_SECONDS:
        raise _unauthorized("JWT: the token is not valid yet")
    return claims


def authorizer_principal(scope: MutableMapping[str, Any]) -> Principal | None:
    """The caller API Gateway's JWT authorizer verified (only in a Lambda invocation)."""
    event = scope.get("aws.event")
    if not isinstance(event, dict):
        return None
    context = event.get("requestContext")
    authorizer = context.get("authorizer") if isinstance(context, dict) else None
    jwt = authorizer.get("jwt") if isinstance(authorizer, dict) else None
    if not isinstance(jwt, dict) or not isinstance(jwt.get("claims"), dict):
        return None
    claims: dict[str, Any] = jwt["claims"]
    scopes = set(_scopes_from_claims(claims))
    if isinstance(jwt.get("scopes"), list):
        scopes.update(str(item) for item in jwt["scopes"])
    return Principal(
        name=f"jwt:{claims.get('sub', 'unknown')}", scopes=frozenset(scopes), kind="authorizer"
    )


def authenticate(
    runtime: Runtime, authorization: str | None, scope: MutableMapping[str, Any], required: str
) -> Principal:
    """Find the caller, check ``required`` and count the call. Raises 401/403 problems."""
    principal = authenticate_in_memory(runtime, authorization, scope, required, blocking=True)
    assert principal is not None
    return principal


def authenticate_in_memory(
    runtime: Runtime,
    authorization: str | None,
    scope: MutableMapping[str, Any],
    required: str,
    *,
    blocking: bool = False,
) -> Principal | None:
    """:func:`authenticate`, or ``None`` when that needs the database and ``blocking`` is false.

    The route calls this on the event loop first: claims, JWTs and recently verified keys need
    no I/O, so the common request pays no thread hop for its authentication.
    """
    from_gateway = authorizer_principal(scope)
    if from_gateway is not None:
        return _authorize(from_gateway, required)
    if not authorization:
        raise _unauthorized("missing Authorization header (expected 'Bearer <api key>')")
    method, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if method.lower() != "bearer" or not token:
        raise _unauthorized("Authorization: expected 'Bearer <api key>'")
    if looks_like_key(token):
        usage = runtime.usage
        if not blocking and usage is not None and not usage.background:
            return None  # counting the call writes to the database (Lambda)
        key = runtime.verified_keys.get(token)
        if key is None:
            if not blocking:
                return None
            # One SELECT in autocommit: no BEGIN/COMMIT round trips.
            with Session(bind=runtime.autocommit_engine) as session:
                key = verify_key(session, token)
            if key is None:
                raise _unauthorized("the API key is unknown or revoked")
            runtime.verified_keys.put(token, key)
        principal = Principal(
            name=key.name, scopes=frozenset(key.scopes), kind="api_key", key_id=key.id
        )
        _authorize(principal, required)
        if usage is not None:
            usage.count(key.id, utcnow())
        return principal
    if runtime.jwt_secret is None:
        raise _unauthorized("the bearer token is not an API key")
    claims = verify_jwt(token, runtime.jwt_secret)
    principal = Principal(
        name=f"jwt:{claims.get('sub', 'unknown')}",
        scopes=_scopes_from_claims(claims),
        kind="jwt",
    )
    return _authorize(principal, required)


def _authorize(principal: Principal, required: str) -> Principal:
    if not grants(principal.scopes, required):
        raise ApiProblem(403, f"the credentials of {principal.name!r} lack the {required!r} scope")
    return principal


def protected(scope: str) -> dict[str, Any]:
    """``openapi_extra`` for a route that needs ``scope``."""
    return {SCOPE_KEY: scope, "security": [{"bearerAuth": []}]}


class ProtectedRoute(APIRoute):
    """An APIRoute that authenticates before FastAPI reads the body, if its operation says so."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()
        required = (self.openapi_extra or {}).get(SCOPE_KEY)
        if required is None:
            return original

        async def handler(request: Request) -> Response:
            runtime: Runtime = request.app.state.runtime
            credentials = (runtime, request.headers.get("authorization"), request.scope, required)
            principal = authenticate_in_memory(*credentials)
            if principal is None:
                principal = await run_in_threadpool(authenticate, *credentials)
            request.state.principal = principal
            request.state.key_name = principal.name
            return await original(request)

        return handler


def principal_of(request: Request) -> Principal:
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):  # a route without a scope asked for one
        raise ApiProblem(401, "not authenticated", headers=CHALLENGE)
    return principal
