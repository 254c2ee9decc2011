"""The workflow catalogue: apply definitions, list, show, pause, resume and delete workflows.

Shared by the CLI and the API. Every function works inside the caller's session; the caller owns
the transaction, so applying a directory is all-or-nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.definition import WorkflowDefinition, load_stored_definition
from shared.errors import NotFound
from shared.models import Execution, Workflow, iso
from shared.schedule import Schedule, jitter_offset, parse_schedule
from shared.status import ACTIVE_STATUSES


def schedule_of(definition: WorkflowDefinition, anchor: datetime) -> Schedule | None:
    if definition.schedule is None:
        return None
    return parse_schedule(
        definition.schedule, definition.timezone, dst=definition.dst, anchor=anchor
    )


def definition_of(workflow: Workflow) -> WorkflowDefinition:
    return load_stored_definition(workflow.definition, source=f"<workflow {workflow.name}>")


def next_fire_after(
    workflow: Workflow, definition: WorkflowDefinition, after: datetime
) -> tuple[datetime | None, datetime | None]:
    """(next fire, next_run_at = fire + the workflow's jitter), strictly after ``after``."""
    schedule = schedule_of(definition, workflow.created_at)
    fire = schedule.next_after(after) if schedule else None
    if fire is None:
        return None, None
    return fire, fire + jitter_offset(workflow.name, definition.jitter)


ApplyAction = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True)
class ApplyResult:
    name: str
    action: ApplyAction
    version: int
    next_run_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "action": self.action,
            "version": self.version,
            "next_run_at": iso(self.next_run_at),
        }


def _timing_key(document: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(document.get(k) for k in ("schedule", "timezone", "dst", "jitter", "enabled"))


def apply_definition(
    session: Session, definition: WorkflowDefinition, now: datetime
) -> ApplyResult:
    """Create or update the workflow named by ``definition``.

    A new or re-timed workflow (schedule, zone, DST rule, jitter or enabled changed) gets its
    next run computed from ``now``: history is not replayed on apply. Other edits keep the
    scheduler's cursor.
    """
    document = definition.to_document()
    workflow = session.scalar(select(Workflow).where(Workflow.name == definition.name))
    if workflow is None:
        workflow = Workflow(
            name=definition.name,
            definition=document,
            schedule=definition.schedule,
            timezone=definition.timezone,
            enabled=definition.enabled,
            version=1,
            created_at=now,
            updated_at=now,
        )
        session.add(workflow)
        action: ApplyAction = "created"
    elif workflow.definition == document:
        return ApplyResult(workflow.name, "unchanged", workflow.version, workflow.next_run_at)
    else:
        retimed = _timing_key(workflow.definition) != _timing_key(document)
        workflow.definition = document
        workflow.schedule = definition.schedule
        workflow.timezone = definition.timezone
        workflow.enabled = definition.enabled
        workflow.version += 1
        workflow.updated_at = now
        action = "updated"
        if not retimed:
            session.flush()
            return ApplyResult(workflow.name, action, workflow.version, workflow.next_run_at)
    _reset_cursor(workflow, definition, now)
    session.flush()
    return ApplyResult(workflow.name, action, workflow.version, workflow.next_run_at)


def _reset_cursor(workflow: Workflow, definition: WorkflowDefinition, now: datetime) -> None:
    if not workflow.enabled:
        workflow.next_run_at = None
        return
    fire, next_run_at = next_fire_after(workflow, definition, now)
    workflow.last_fire_at = now if fire is not None else workflow.last_fire_at
    workflow.next_run_at = next_run_at


def apply_definitions(
    session: Session, definitions: list[WorkflowDefinition], now: datetime
) -> list[ApplyResult]:
    return [apply_definition(session, definition, now) for definition in definitions]


def list_workflows(session: Session) -> list[Workflow]:
    return list(session.scalars(select(Workflow).order_by(Workflow.name)))


def get_workflow(session: Session, name: str, *, for_update: bool = False) -> Workflow:
    query = select(Workflow).where(Workflow.name == name)
    if for_update:
        query = query.with_for_update()
    workflow = session.scalar(query)
    if workflow is None:
        raise NotFound(f"no workflow named {name!r}")
    return workflow


def set_enabled(session: Session, name: str, enabled: bool, now: datetime) -> Workflow:
    """Pause or resume. Resuming recomputes the next run from ``now`` (no catch-up storm)."""
    workflow = get_workflow(session, name, for_update=True)
    if workflow.enabled == enabled:
        return workflow
    workflow.enabled = enabled
    workflow.updated_at = now
    document = dict(workflow.definition)
    document["enabled"] = enabled
    workflow.definition = document
    _reset_cursor(workflow, definition_of(workflow), now)
    session.flush()
    return workflow


def delete_workflow(session: Session, name: str) -> None:
    """Delete a workflow. Its executions stay (their ``workflow_name`` keeps the history)."""
    session.delete(get_workflow(session, name))
    session.flush()


def active_counts(session: Session) -> dict[int, int]:
    rows = session.execute(
        select(Execution.workflow_id, func.count())
        .where(Execution.status.in_(ACTIVE_STATUSES))
        .group_by(Execution.workflow_id)
    )
    return {int(workflow_id): int(count) for workflow_id, count in rows if workflow_id is not None}


def describe(workflow: Workflow, *, active: int | None = None) -> dict[str, Any]:
    """A JSON-ready summary of a workflow (CLI ``--json`` and the API)."""
    summary: dict[str, Any] = {
        "name": workflow.name,
        "schedule": workflow.schedule,
        "timezone": workflow.timezone,
        "enabled": workflow.enabled,
        "next_run_at": iso(workflow.next_run_at),
        "version": workflow.version,
        "steps": [step["name"] for step in workflow.definition.get("steps", [])],
        "created_at": iso(workflow.created_at),
        "updated_at": iso(workflow.updated_at),
    }
    if active is not None:
        summary["active_executions"] = active
    return summary
