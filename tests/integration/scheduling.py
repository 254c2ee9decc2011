"""Helpers for scheduler tests: define workflows quickly and read back what the tick did."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from shared.catalog import apply_definition
from shared.definition import parse_definition
from shared.models import Execution
from shared.status import ExecutionStatus


def definition(name: str, schedule: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "schedule": schedule,
        "steps": [{"name": "beat", "action": "python", "function": "conveyor.noop"}],
        **fields,
    }


def apply(sessions: sessionmaker[Session], document: dict[str, Any], now: datetime) -> None:
    with sessions() as session, session.begin():
        apply_definition(session, parse_definition(document), now)


def executions(sessions: sessionmaker[Session], workflow: str | None = None) -> list[Execution]:
    with sessions() as session:
        query = select(Execution).order_by(Execution.scheduled_for, Execution.created_at)
        if workflow is not None:
            query = query.where(Execution.workflow_name == workflow)
        return list(session.scalars(query))


def by_status(rows: list[Execution]) -> Counter[tuple[ExecutionStatus, str | None]]:
    return Counter((row.status, row.reason) for row in rows)


def finish(sessions: sessionmaker[Session], status: ExecutionStatus, now: datetime) -> None:
    """Pretend workers finished every active execution."""
    with sessions() as session, session.begin():
        for row in session.scalars(
            select(Execution).where(Execution.status.in_(["pending", "queued", "running"]))
        ):
            if row.reason == "buffered":
                continue
            row.status = status
            row.finished_at = now
