"""Public routes: ``/health`` (checks the database) and ``/version``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import text

from api.problems import ApiProblem
from api.routes.dependencies import public_errors, runtime_of
from api.schemas import Health, Version

router = APIRouter(tags=["meta"])
_version: str | None = None


@router.get(
    "/health",
    response_model=Health,
    responses=public_errors(503),
    summary="Liveness and database reachability (no auth)",
)
def health(request: Request) -> Health:
    try:
        with runtime_of(request).engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        from shared.logs import get_logger  # noqa: PLC0415

        get_logger("api").warning("health_database_unreachable", error=type(exc).__name__)
        raise ApiProblem(503, "database: unreachable") from None
    return Health(status="ok", database="ok")


@router.get("/version", response_model=Version, responses=public_errors(), summary="Version")
def version() -> Version:
    global _version  # noqa: PLW0603  (computed once per process)
    if _version is None:
        from importlib.metadata import PackageNotFoundError  # noqa: PLC0415
        from importlib.metadata import version as package_version  # noqa: PLC0415

        try:
            _version = package_version("conveyor")
        except PackageNotFoundError:
            _version = "0+unknown"
    return Version(name="conveyor", version=_version)
