"""Request dependencies every router shares: the runtime, the idempotency header, error statuses."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Header, Request

from api.auth import Principal
from api.problems import ApiProblem, problem_responses
from api.runtime import Runtime

_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")

AUTH_ERRORS = (401, 403)


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def errors(*statuses: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI responses for a protected route: 401/403/500 plus ``statuses``."""
    return problem_responses(*AUTH_ERRORS, *statuses, 500)


def public_errors(*statuses: int) -> dict[int | str, dict[str, object]]:
    return problem_responses(*statuses, 500)


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description=(
            "Makes the call safe to retry: the same key and body return the same task; the same "
            "key with another body is 409. Printable ASCII, at most 128 characters; keys are "
            "scoped to the caller."
        ),
    ),
]


def scoped_idempotency_key(principal: Principal, key: str | None) -> str | None:
    if key is None:
        return None
    if not _IDEMPOTENCY_KEY.match(key):
        raise ApiProblem(
            422, "Idempotency-Key: must be 1 to 128 printable ASCII characters without spaces"
        )
    return f"{principal.name[:100]}/{key}"
