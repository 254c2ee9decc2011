"""Errors as RFC 9457 ``application/problem+json``: one shape for every failure the API returns.

``type`` is a stable URI-like slug (``/problems/not-found``), ``title`` the HTTP reason, ``detail``
the human sentence naming the field, ``errors`` the per-field list for validation problems. No
stack trace, SQL or exception class ever reaches a response: the catch-all handler logs those.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from shared.errors import (
    ConfigurationError,
    Conflict,
    ConveyorError,
    InvalidDefinition,
    InvalidInput,
    NotFound,
)

PROBLEM_MEDIA_TYPE = "application/problem+json"


class FieldError(BaseModel):
    field: str = Field(description="Where the problem is, e.g. `body.input` or `query.limit`.")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(description="A stable identifier of the kind of problem.")
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    500: "internal-error",
    503: "unavailable",
}


def problem_type(status: int) -> str:
    return f"/problems/{_SLUGS.get(status, str(status))}"


class ApiProblem(Exception):
    """Raise to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        title: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers
        self.title = title


def problem_body(
    status: int,
    detail: str,
    *,
    errors: list[FieldError] | None = None,
    title: str | None = None,
    request_id: str | None = None,
    instance: str | None = None,
) -> dict[str, Any]:
    problem = Problem(
        type=problem_type(status),
        title=title or HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=instance,
        request_id=request_id,
        errors=errors,
    )
    return problem.model_dump(exclude_none=True)


def problem_response(
    status: int,
    detail: str,
    *,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    title: str | None = None,
    request: Request | None = None,
) -> Response:
    request_id = None
    instance = None
    if request is not None:
        request_id = request.scope.get("state", {}).get("request_id")
        instance = request.url.path
    return ProblemResponse(
        problem_body(
            status, detail, errors=errors, title=title, request_id=request_id, instance=instance
        ),
        status_code=status,
        headers=headers,
    )


def status_of(error: ConveyorError) -> int:
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, Conflict):
        return 409
    if isinstance(error, InvalidInput):
        return 422
    if isinstance(error, ConfigurationError):
        return 503
    return 500


def conveyor_problem(error: ConveyorError) -> tuple[int, str, list[FieldError] | None]:
    """(status, detail, errors) for a domain error."""
    status = status_of(error)
    if status >= 500:
        return status, "the service cannot handle the request right now", None
    if isinstance(error, InvalidDefinition):
        errors = [_definition_error(line) for line in error.problems]
        first = error.problems[0] if error.problems else "invalid definition"
        more = f" (and {len(error.problems) - 1} more)" if len(error.problems) > 1 else ""
        return status, f"invalid workflow definition: {first}{more}", errors
    return status, str(error), None


def _definition_error(line: str) -> FieldError:
    # "<source>: field.path: message"
    parts = line.split(": ", 2)
    if len(parts) == 3:
        return FieldError(field=parts[1], message=parts[2])
    return FieldError(field="body", message=line)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def validation_errors(exc: RequestValidationError) -> tuple[int, str, list[FieldError]]:
    raw = exc.errors()
    if any(error.get("type") == "json_invalid" for error in raw):
        error = next(e for e in raw if e.get("type") == "json_invalid")
        reason = (error.get("ctx") or {}).get("error", "JSON decode error")
        position = error.get("loc", ("body", 0))[-1]
        detail = f"body: malformed JSON at position {position}: {reason}"
        return 400, detail, [FieldError(field="body", message=detail)]
    errors = [
        FieldError(
            field=_field(error.get("loc", ())),
            message=str(error.get("msg", "invalid")).removeprefix("Value error, "),
        )
        for error in raw
    ]
    first = errors[0] if errors else FieldError(field="body", message="invalid request")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return 422, f"{first.field}: {first.message}{more}", errors


async def handle_api_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiProblem)
    return problem_response(
        exc.status,
        exc.detail,
        errors=exc.errors,
        headers=exc.headers,
        title=exc.title,
        request=request,
    )


async def handle_conveyor_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConveyorError)
    status, detail, errors = conveyor_problem(exc)
    if status >= 500:
        from shared.logs import get_logger  # noqa: PLC0415

        get_logger("api").error("request_failed", error=str(exc), kind=type(exc).__name__)
    return problem_response(status, detail, errors=errors, request=request)


async def handle_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    status, detail, errors = validation_errors(exc)
    return problem_response(status, detail, errors=errors, request=request)


async def handle_data_error(request: Request, exc: Exception) -> Response:
    """The database refused a value the validation let through: the caller's fault, no SQL."""
    from shared.logs import get_logger  # noqa: PLC0415

    get_logger("api").warning("database_refused_value", error=type(exc).__name__)
    return problem_response(
        422,
        "body: a value cannot be stored (out of range or not representable)",
        request=request,
    )


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no route for {request.method} {request.url.path}"
    if exc.status_code == 405 and detail == "Method Not Allowed":
        detail = f"{request.method} is not allowed on {request.url.path}"
    return problem_response(
        exc.status_code, detail, headers=dict(exc.headers or {}), request=request
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the problem statuses a route can answer with."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
