"""Bulk writes of one tick batch: the planned execution rows, their events, the advanced cursors.

PostgreSQL gets three set-based statements built on ``unnest`` (constant SQL text, so psycopg
prepares it once; per-row cost is a few array elements): one ``INSERT … ON CONFLICT DO NOTHING``
whose ``RETURNING`` feeds the events ``INSERT`` in the same statement, and one ``UPDATE … FROM
unnest``. Other databases (SQLite, the local mode) get the same effect through SQLAlchemy
executemany.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from scheduler.policies import MISSED, OVERLAP
from shared.executions import BUFFERED
from shared.models import (
    Workflow,
    events_table,
    executions_table,
    workflows_table,
)
from shared.status import ExecutionStatus, Trigger

SKIP_CODES = {MISSED: 2, OVERLAP: 3}


class PlannedRun(NamedTuple):
    """One execution row the tick wants to exist (status pending, pending+buffered or skipped).

    A NamedTuple, not a dataclass: a big tick builds one per fire. Ids are assigned on insert.
    """

    workflow_id: int
    workflow_name: str
    scheduled_for: datetime
    status: ExecutionStatus
    reason: str | None
    max_attempts: int

    @property
    def code(self) -> int:
        """0 run, 1 buffered, 2 skipped (missed), 3 skipped (overlap): the SQL decodes it."""
        if self.status is ExecutionStatus.SKIPPED:
            return SKIP_CODES[self.reason or MISSED]
        return 1 if self.reason == BUFFERED else 0

    @property
    def event(self) -> tuple[str, str]:
        if self.status is ExecutionStatus.SKIPPED:
            return "skipped", f"not run: {self.reason}"
        if self.reason == BUFFERED:
            return "buffered", "waiting for the active run to end"
        return "created", "scheduled run"


@dataclass(frozen=True)
class Advance:
    workflow_id: int
    next_run_at: datetime | None
    last_fire_at: datetime


_PG_INSERT = text(
    """
    WITH planned AS (
        -- rows are (workflow id, group); a group is a distinct (fire, code, max_attempts),
        -- so a batch of thousands usually ships two int arrays and a handful of groups
        SELECT u.workflow_id,
               (CAST(:fires AS timestamptz[]))[u.g] AS fire,
               (CAST(:codes AS smallint[]))[u.g] AS code,
               (CAST(:attempts AS int[]))[u.g] AS max_attempts
        FROM unnest(CAST(:workflow_ids AS bigint[]), CAST(:groups AS int[])) AS u(workflow_id, g)
    ),
    inserted AS (
        INSERT INTO executions (
            id, workflow_id, workflow_name, trigger, scheduled_for, status, reason, definition,
            input, attempt, max_attempts, cancel_requested, created_at, updated_at, finished_at
        )
        -- the definition is copied inside the database: nothing is serialised per row
        SELECT gen_random_uuid(), p.workflow_id, w.name, :trigger, p.fire,
               CASE WHEN p.code >= 2 THEN 'skipped' ELSE 'pending' END,
               CASE p.code WHEN 1 THEN 'buffered' WHEN 2 THEN 'missed'
                           WHEN 3 THEN 'overlap' END,
               w.definition, coalesce(w.definition -> 'input', '{}'::jsonb), 0, p.max_attempts,
               false, :now, :now, CASE WHEN p.code >= 2 THEN CAST(:now AS timestamptz) END
        FROM planned AS p JOIN workflows AS w ON w.id = p.workflow_id
        ON CONFLICT (workflow_id, scheduled_for) DO NOTHING
        RETURNING id, status, reason
    )
    INSERT INTO execution_events (execution_id, kind, at, message)
    SELECT id,
           CASE WHEN status = 'skipped' THEN 'skipped'
                WHEN reason = 'buffered' THEN 'buffered' ELSE 'created' END,
           :now,
           CASE WHEN status = 'skipped' THEN 'not run: ' || reason
                WHEN reason = 'buffered' THEN 'waiting for the active run to end'
                ELSE 'scheduled run' END
    FROM inserted
    RETURNING execution_id, kind
    """
)

_PG_ADVANCE = text(
    """
    UPDATE workflows AS w
    SET next_run_at = (CAST(:next AS timestamptz[]))[a.g],
        last_fire_at = (CAST(:last AS timestamptz[]))[a.g]
    FROM unnest(CAST(:ids AS bigint[]), CAST(:groups AS int[])) AS a(id, g)
    WHERE w.id = a.id
    """
)


def write_postgres(
    session: Session, runs: list[PlannedRun], advances: list[Advance], now: datetime
) -> list[tuple[uuid.UUID, str]]:
    created: list[tuple[uuid.UUID, str]] = []
    if runs:
        run_groups = _Groups()
        indexes = [
            run_groups.index((run.scheduled_for, run.code, run.max_attempts)) for run in runs
        ]
        fires, codes, attempts = run_groups.columns(3)
        created = [
            (row[0], row[1])
            for row in session.execute(
                _PG_INSERT,
                {
                    "workflow_ids": [run.workflow_id for run in runs],
                    "groups": indexes,
                    "fires": fires,
                    "codes": codes,
                    "attempts": attempts,
                    "trigger": Trigger.SCHEDULE.value,
                    "now": now,
                },
            )
        ]
    if advances:
        cursor_groups = _Groups()
        indexes = [cursor_groups.index((a.next_run_at, a.last_fire_at)) for a in advances]
        next_runs, last_fires = cursor_groups.columns(2)
        session.execute(
            _PG_ADVANCE,
            {
                "ids": [a.workflow_id for a in advances],
                "groups": indexes,
                "next": next_runs,
                "last": last_fires,
            },
        )
    return created


class _Groups:
    """Distinct value tuples, numbered from 1 (PostgreSQL arrays are 1-based)."""

    def __init__(self) -> None:
        self._index: dict[tuple[Any, ...], int] = {}

    def index(self, values: tuple[Any, ...]) -> int:
        found = self._index.get(values)
        if found is None:
            found = self._index[values] = len(self._index) + 1
        return found

    def columns(self, width: int) -> list[list[Any]]:
        return [[values[i] for values in self._index] for i in range(width)]


def write_generic(
    session: Session, runs: list[PlannedRun], advances: list[Advance], now: datetime
) -> list[tuple[uuid.UUID, str]]:
    created: list[tuple[uuid.UUID, str]] = []
    if runs:
        by_id = {uuid.uuid4(): run for run in runs}
        documents: dict[int, dict[str, Any]] = {
            ident: document
            for ident, document in session.execute(
                select(Workflow.id, Workflow.definition).where(
                    Workflow.id.in_({run.workflow_id for run in runs})
                )
            )
        }
        statement = (
            sqlite.insert(executions_table)
            .on_conflict_do_nothing(index_elements=["workflow_id", "scheduled_for"])
            .returning(executions_table.c.id)
        )
        inserted = session.execute(
            statement,
            [
                {
                    "id": ident,
                    "workflow_id": run.workflow_id,
                    "workflow_name": run.workflow_name,
                    "trigger": Trigger.SCHEDULE,
                    "scheduled_for": run.scheduled_for,
                    "status": run.status,
                    "reason": run.reason,
                    "definition": documents[run.workflow_id],
                    "input": documents[run.workflow_id].get("input") or {},
                    "attempt": 0,
                    "max_attempts": run.max_attempts,
                    "cancel_requested": False,
                    "created_at": now,
                    "updated_at": now,
                    "finished_at": now if run.status is ExecutionStatus.SKIPPED else None,
                }
                for ident, run in by_id.items()
            ],
        ).scalars()
        events = []
        for ident in inserted:
            kind, message = by_id[ident].event
            events.append({"execution_id": ident, "kind": kind, "at": now, "message": message})
            created.append((ident, kind))
        if events:
            session.execute(events_table.insert(), events)
    if advances:
        session.execute(
            update(workflows_table)
            .where(workflows_table.c.id == bindparam("b_id"))
            .values(next_run_at=bindparam("b_next"), last_fire_at=bindparam("b_last")),
            [
                {"b_id": a.workflow_id, "b_next": a.next_run_at, "b_last": a.last_fire_at}
                for a in advances
            ],
        )
    return created


def write(
    session: Session, runs: list[PlannedRun], advances: list[Advance], now: datetime
) -> list[tuple[uuid.UUID, str]]:
    """Write a batch; return (execution id, event kind) for each execution actually created."""
    if session.get_bind().dialect.name == "postgresql":
        return write_postgres(session, runs, advances, now)
    return write_generic(session, runs, advances, now)
