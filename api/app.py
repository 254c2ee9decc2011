"""The ASGI application: ``create_app(settings)`` for uvicorn, tests and the Lambda adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.middleware import BodyLimitMiddleware, RequestContextMiddleware
from api.problems import (
    ApiProblem,
    Problem,
    handle_api_problem,
    handle_conveyor_error,
    handle_data_error,
    handle_http_exception,
    handle_validation_error,
)
from api.routes import meta, tasks, webhooks, workflows
from api.runtime import Runtime
from shared.errors import ConveyorError
from shared.settings import Settings

DESCRIPTION = """\
Start and follow tasks (workflow runs and ad-hoc steps), manage workflows, receive webhooks.

Authenticate with `Authorization: Bearer <api key>` (create one with `conveyor apikey create`).
Each operation names the scope it needs in `x-required-scope`. Errors are
`application/problem+json`.
"""

CORS_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id"]


def create_app(
    settings: Settings | None = None, *, runtime: Runtime | None = None, serverless: bool = False
) -> FastAPI:
    """Build the app from ``settings`` (or a ready :class:`Runtime`)."""
    if runtime is None:
        if settings is None:
            raise ValueError("create_app needs settings or a runtime")
        runtime = Runtime.from_settings(settings, serverless=serverless)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if runtime.doorbell is not None:  # answer nothing more, send what was accepted
            from starlette.concurrency import run_in_threadpool  # noqa: PLC0415

            await run_in_threadpool(runtime.doorbell.flush)

    app = FastAPI(
        lifespan=lifespan,
        title="Conveyor API",
        version="1",
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.runtime = runtime
    for router in (tasks.router, workflows.router, webhooks.router, meta.router):
        app.include_router(router)

    app.add_exception_handler(ApiProblem, handle_api_problem)
    app.add_exception_handler(ConveyorError, handle_conveyor_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_exception)
    app.add_exception_handler(DataError, handle_data_error)

    # Added last = outermost: CORS answers preflights before anything else runs.
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(RequestContextMiddleware)
    origins = list(runtime.settings.cors_origins)
    if origins:
        from starlette.middleware.cors import CORSMiddleware  # noqa: PLC0415

        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_credentials="*" not in origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=CORS_HEADERS,
            expose_headers=["Location", "X-Request-Id", "Idempotent-Replayed"],
            max_age=600,
        )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi  # noqa: PLC0415

            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = schema.setdefault("components", {})
            components.setdefault("schemas", {})["Problem"] = Problem.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            for name, sub in (
                Problem.model_json_schema(ref_template="#/components/schemas/{model}")
                .get("$defs", {})
                .items()
            ):
                components["schemas"].setdefault(name, sub)
            components["schemas"]["Problem"].pop("$defs", None)
            components["securitySchemes"] = {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key (cvk_…) or an HS256 JWT.",
                }
            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
