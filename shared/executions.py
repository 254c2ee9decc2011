"""Executions: create them (outbox first), dispatch them to the queue, list, describe, cancel.

The scheduler, the API, webhooks and the CLI all create executions through this module and all
send them through :func:`dispatch`, so there is one way in:

1. the execution row is committed with status ``pending`` (the outbox);
2. :func:`dispatch` sends one doorbell per execution (``SendMessageBatch``) and marks the ones
   SQS accepted as ``queued``; the rest stay ``pending`` and the scheduler's sweeper sends them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from shared.catalog import definition_of, get_workflow
from shared.definition import WorkflowDefinition, parse_definition
from shared.errors import Conflict, InvalidInput, NotFound
from shared.models import (
    Execution,
    ExecutionEvent,
    Workflow,
    events_table,
    executions_table,
    iso,
)
from shared.queue import ExecutionPublisher, OutgoingMessage
from shared.status import ACTIVE_STATUSES, TERMINAL_STATUSES, ExecutionStatus, Trigger

ADHOC_WORKFLOW = "adhoc"


def record_event(
    session: Session,
    execution_id: uuid.UUID,
    kind: str,
    message: str = "",
    *,
    at: datetime,
    step: str | None = None,
    attempt: int | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Append one entry to an execution's timeline."""
    session.add(
        ExecutionEvent(
            execution_id=execution_id,
            kind=kind,
            message=message,
            at=at,
            step=step,
            attempt=attempt,
            data=data,
        )
    )


def request_fingerprint(body: Any) -> str:
    """A stable hash of a request body, to tell a retried call from a different one."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def execution_values(
    *,
    definition: WorkflowDefinition,
    workflow_id: int | None,
    trigger: Trigger,
    now: datetime,
    run_input: dict[str, Any] | None = None,
    scheduled_for: datetime | None = None,
    status: ExecutionStatus = ExecutionStatus.PENDING,
    reason: str | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
) -> dict[str, Any]:
    """The columns of a new execution row, all but ``definition`` (the caller stores that)."""
    merged_input = {**definition.input, **(run_input or {})}
    # every step may use its whole retry budget: the claims a run may need in all
    max_attempts = 1 + sum(
        definition.effective_retry(step).max_attempts - 1 for step in definition.steps
    )
    return {
        "id": uuid.uuid4(),
        "workflow_id": workflow_id,
        "workflow_name": definition.name,
        "trigger": trigger,
        "scheduled_for": scheduled_for,
        "status": status,
        "reason": reason,
        "input": merged_input,
        "attempt": 0,
        "max_attempts": max_attempts,
        "idempotency_key": idempotency_key,
        "request_hash": request_hash,
        "cancel_requested": False,
        "created_at": now,
        "updated_at": now,
        "finished_at": now if status in TERMINAL_STATUSES else None,
    }


def new_execution(
    *,
    definition: WorkflowDefinition,
    workflow: Workflow | None,
    trigger: Trigger,
    now: datetime,
    run_input: dict[str, Any] | None = None,
    scheduled_for: datetime | None = None,
    status: ExecutionStatus = ExecutionStatus.PENDING,
    reason: str | None = None,
) -> Execution:
    """An execution row (not yet added to a session). The definition is frozen into the row."""
    return Execution(
        **execution_values(
            definition=definition,
            workflow_id=workflow.id if workflow is not None else None,
            trigger=trigger,
            now=now,
            run_input=run_input,
            scheduled_for=scheduled_for,
            status=status,
            reason=reason,
        ),
        definition=definition.to_document(),
    )


@dataclass(frozen=True)
class Created:
    id: uuid.UUID
    status: ExecutionStatus
    created: bool  # False when an idempotency key returned an existing execution


def existing_for_key(
    session: Session, idempotency_key: str | None, request_hash: str | None
) -> Created | None:
    """The execution an idempotency key already created (``None`` if none); a different
    request under the same key is a :class:`Conflict`."""
    if idempotency_key is None:
        return None
    row = session.execute(
        select(Execution.id, Execution.status, Execution.request_hash).where(
            Execution.idempotency_key == idempotency_key
        )
    ).one_or_none()
    if row is None:
        return None
    if row.request_hash != request_hash:
        raise Conflict(
            f"Idempotency-Key {idempotency_key!r} was already used with a different request"
        )
    return Created(row.id, row.status, created=False)


@dataclass(frozen=True)
class StoredVersion:
    """One version of a stored workflow, parsed: what starting a run of it needs."""

    id: int
    version: int
    definition: WorkflowDefinition


class StoredVersions:
    """The last version of each workflow a long-lived process started a run of, by name (one
    instance per database: the API's runtime holds one).

    A run is inserted with ``INSERT … SELECT`` from the workflow row *at that version*, so the
    definition is copied inside the database and a stale entry inserts nothing (the caller
    reloads it); the process never serves a definition that was replaced.
    """

    def __init__(self, max_entries: int = 4096) -> None:
        self._max_entries = max_entries
        self._entries: dict[str, StoredVersion] = {}

    def get(self, session: Session, name: str) -> StoredVersion:
        found = self._entries.get(name)
        if found is not None:
            return found
        workflow = get_workflow(session, name)
        found = StoredVersion(workflow.id, workflow.version, definition_of(workflow))
        if len(self._entries) >= self._max_entries:
            self._entries.clear()
        self._entries[name] = found
        return found

    def forget(self, name: str) -> None:
        self._entries.pop(name, None)


START_ATTEMPTS = 3
_RUN_COLUMNS = (
    "id",
    "workflow_id",
    "workflow_name",
    "trigger",
    "scheduled_for",
    "status",
    "reason",
    "input",
    "attempt",
    "max_attempts",
    "idempotency_key",
    "request_hash",
    "cancel_requested",
    "created_at",
    "updated_at",
    "finished_at",
)
# One statement, compiled once: the run's columns as parameters plus the definition copied from
# the workflow row, only if that row is still at the version the parameters were computed from.
_INSERT_RUN = (
    insert(executions_table)
    .from_select(
        [*_RUN_COLUMNS, "definition"],
        select(
            *(bindparam(f"v_{name}", type_=executions_table.c[name].type) for name in _RUN_COLUMNS),
            Workflow.definition,
        ).where(Workflow.id == bindparam("w_id"), Workflow.version == bindparam("w_version")),
    )
    .returning(executions_table.c.id)
)  # a row only if the version still matched


def start_workflow(
    session: Session,
    workflow_name: str,
    *,
    trigger: Trigger,
    now: datetime,
    run_input: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    versions: StoredVersions | None = None,
) -> Created:
    """Create a pending run of a stored workflow (manual, API, webhook, event triggers).

    ``versions`` remembers parsed definitions between calls; without it the workflow is read.
    """
    versions = versions if versions is not None else StoredVersions()
    existing = existing_for_key(session, idempotency_key, request_hash)
    if existing is not None:
        return existing
    for _ in range(START_ATTEMPTS):
        stored = versions.get(session, workflow_name)
        values = execution_values(
            definition=stored.definition,
            workflow_id=stored.id,
            trigger=trigger,
            now=now,
            run_input=run_input,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
        )
        parameters = {f"v_{name}": values[name] for name in _RUN_COLUMNS}
        inserted = (
            session.connection()
            .execute(_INSERT_RUN, {**parameters, "w_id": stored.id, "w_version": stored.version})
            .scalar_one_or_none()
        )
        if inserted is not None:
            return _created(session, values, f"{trigger.value} run")
        versions.forget(workflow_name)  # replaced or deleted since it was read
    raise Conflict(f"workflow {workflow_name!r} is being changed; retry the request")


def start_adhoc(
    session: Session,
    step: dict[str, Any],
    *,
    trigger: Trigger,
    now: datetime,
    run_input: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    source: str = "<api>",
) -> Created:
    """Create a pending one-step task from an inline step definition (validated like a file)."""
    existing = existing_for_key(session, idempotency_key, request_hash)
    if existing is not None:
        return existing
    step = {"name": "task", **step}
    definition = parse_definition({"name": ADHOC_WORKFLOW, "steps": [step]}, source=source)
    values = execution_values(
        definition=definition,
        workflow_id=None,
        trigger=trigger,
        now=now,
        run_input=run_input,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
    )
    session.connection().execute(
        insert(executions_table), {**values, "definition": definition.to_document()}
    )
    return _created(session, values, f"{trigger.value} task")


def start_task(
    session: Session,
    *,
    workflow: str | None,
    step: dict[str, Any] | None,
    trigger: Trigger,
    now: datetime,
    run_input: dict[str, Any] | None,
    idempotency_key: str | None,
    request_hash: str,
    source: str,
    versions: StoredVersions | None = None,
) -> Created:
    """A task as callers ask for it: a run of ``workflow``, or the one ad-hoc ``step``
    (``source`` names where the step came from in validation errors)."""
    if (workflow is None) == (step is None):
        raise InvalidInput("body: give exactly one of 'workflow' or 'step'")
    if workflow is not None:
        return start_workflow(
            session,
            workflow,
            trigger=trigger,
            now=now,
            run_input=run_input,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            versions=versions,
        )
    assert step is not None
    return start_adhoc(
        session,
        step,
        trigger=trigger,
        now=now,
        run_input=run_input,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        source=source,
    )


def _created(session: Session, values: dict[str, Any], message: str) -> Created:
    """Add the ``created`` event (at the row's own ``created_at``) of a just-inserted row."""
    session.connection().execute(
        insert(events_table),
        {
            "execution_id": values["id"],
            "kind": "created",
            "message": message,
            "at": values["created_at"],
        },
    )
    return Created(values["id"], values["status"], created=True)


@dataclass
class DispatchReport:
    sent: list[uuid.UUID] = field(default_factory=list)
    failed: dict[uuid.UUID, str] = field(default_factory=dict)


def dispatch(
    sessions: sessionmaker[Session],
    publisher: ExecutionPublisher,
    execution_ids: Sequence[uuid.UUID],
    now: datetime,
    *,
    delays: dict[uuid.UUID, int] | None = None,
) -> DispatchReport:
    """Send doorbells for committed executions and mark the accepted ones ``queued``.

    Runs after the creating transaction committed (outbox). Anything SQS did not accept stays
    ``pending`` for the sweeper. Marking is conditional, so a worker that already claimed the
    execution (a fast consumer) is never set back to ``queued``.
    """
    report = DispatchReport()
    if not execution_ids:
        return report
    delays = delays or {}
    published = publisher.publish(
        [OutgoingMessage(str(i), delays.get(i, 0)) for i in execution_ids]
    )
    report.sent = [uuid.UUID(i) for i in published.sent]
    report.failed = {uuid.UUID(i): error for i, error in published.failed.items()}
    if report.sent:
        with sessions() as session, session.begin():
            marked = session.execute(
                update(Execution)
                .where(
                    Execution.id.in_(report.sent),
                    Execution.status.in_([ExecutionStatus.PENDING, ExecutionStatus.RETRYING]),
                )
                .values(status=ExecutionStatus.QUEUED, enqueued_at=now, updated_at=now)
                .returning(Execution.id)
                .execution_options(synchronize_session=False)
            ).scalars()
            events = [
                {"execution_id": i, "kind": "queued", "message": "sent to the queue", "at": now}
                for i in marked
            ]
            if events:
                session.execute(insert(ExecutionEvent), events)
    return report


def get_execution(session: Session, execution_id: str | uuid.UUID) -> Execution:
    try:
        key = execution_id if isinstance(execution_id, uuid.UUID) else uuid.UUID(execution_id)
    except ValueError as exc:
        raise InvalidInput(f"not an execution id: {execution_id!r}") from exc
    execution = session.get(Execution, key)
    if execution is None:
        raise NotFound(f"no execution {execution_id}")
    return execution


def cancel_execution(session: Session, execution_id: str | uuid.UUID, now: datetime) -> Execution:
    """Cancel: a waiting execution ends at once; a running one stops at its next checkpoint."""
    execution = get_execution(session, execution_id)
    session.refresh(execution, with_for_update=True)
    if execution.status in TERMINAL_STATUSES:
        return execution
    if execution.status is ExecutionStatus.RUNNING:
        if not execution.cancel_requested:
            execution.cancel_requested = True
            execution.updated_at = now
            record_event(
                session, execution.id, "cancel_requested", "cancellation requested", at=now
            )
    else:
        execution.status = ExecutionStatus.CANCELLED
        execution.cancel_requested = True
        execution.finished_at = now
        execution.updated_at = now
        record_event(session, execution.id, "cancelled", "cancelled before it started", at=now)
    session.flush()
    return execution


# ------------------------------------------------------------------------------ listing


def encode_cursor(created_at: datetime, execution_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{execution_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, ident = raw.partition("|")
        return datetime.fromisoformat(stamp), uuid.UUID(ident)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cursor: not a cursor this API returned: {cursor!r}") from exc


def list_executions(
    session: Session,
    *,
    workflow: str | None = None,
    status: ExecutionStatus | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Execution], str | None]:
    """Newest first; returns the page and the cursor of the next page (None at the end)."""
    if not 1 <= limit <= 500:
        raise InvalidInput(f"limit: must be between 1 and 500, got {limit}")
    query = select(Execution).order_by(Execution.created_at.desc(), Execution.id.desc())
    if workflow is not None:
        query = query.where(Execution.workflow_name == workflow)
    if status is not None:
        query = query.where(Execution.status == status)
    if cursor is not None:
        created_at, ident = decode_cursor(cursor)
        query = query.where(
            or_(
                Execution.created_at < created_at,
                and_(Execution.created_at == created_at, Execution.id < ident),
            )
        )
    rows = list(session.scalars(query.limit(limit + 1)))
    page, more = rows[:limit], len(rows) > limit
    next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if more and page else None
    return page, next_cursor


def describe_execution(execution: Execution, *, detail: bool = False) -> dict[str, Any]:
    """A JSON-ready view of an execution; ``detail`` adds step runs and the event timeline."""
    view: dict[str, Any] = {
        "id": str(execution.id),
        "workflow": execution.workflow_name,
        "trigger": execution.trigger.value,
        "scheduled_for": iso(execution.scheduled_for),
        "status": execution.status.value,
        "reason": execution.reason,
        "attempt": execution.attempt,
        "max_attempts": execution.max_attempts,
        "input": execution.input,
        "output": execution.output,
        "error": execution.error,
        "created_at": iso(execution.created_at),
        "started_at": iso(execution.started_at),
        "finished_at": iso(execution.finished_at),
    }
    if detail:
        view["steps"] = [
            {
                "name": run.step_name,
                "index": run.step_index,
                "attempt": run.attempt,
                "status": run.status.value,
                "input": run.input,
                "output": run.output,
                "error": run.error,
                "usage": run.usage,
                "started_at": iso(run.started_at),
                "finished_at": iso(run.finished_at),
                "duration_ms": (
                    None
                    if run.finished_at is None
                    else round((run.finished_at - run.started_at) / timedelta(milliseconds=1))
                ),
            }
            for run in execution.steps
        ]
        view["events"] = [
            {
                "at": iso(event.at),
                "kind": event.kind,
                "message": event.message,
                "step": event.step,
                "attempt": event.attempt,
            }
            for event in execution.events
        ]
    return view


BUFFERED = "buffered"
"""``reason`` of a pending execution held back by ``overlap: buffer_one``."""


def release_buffered(
    session: Session, now: datetime, workflow_ids: Sequence[int] | None = None
) -> list[uuid.UUID]:
    """Release buffered runs whose workflow has nothing else active; return them to dispatch.

    Called by the sweeper on every tick, and by a worker when it finishes an execution, so a
    buffered run starts as soon as the active one ends.
    """
    buffered = (Execution.status == ExecutionStatus.PENDING) & (Execution.reason == BUFFERED)
    candidates = select(Execution).where(buffered)
    if workflow_ids is not None:
        candidates = candidates.where(Execution.workflow_id.in_(workflow_ids))
    released: list[uuid.UUID] = []
    for execution in session.scalars(
        candidates.order_by(Execution.scheduled_for).with_for_update(skip_locked=True)
    ):
        busy = session.scalar(
            select(func.count())
            .select_from(Execution)
            .where(
                Execution.workflow_id == execution.workflow_id,
                Execution.status.in_(ACTIVE_STATUSES),
                ~buffered,
            )
        )
        if busy:
            continue
        execution.reason = None
        execution.updated_at = now
        record_event(session, execution.id, "released", "the active run ended", at=now)
        released.append(execution.id)
    session.flush()
    return released


MAX_BACKFILL = 10_000


def backfill(
    session: Session, workflow_name: str, start: datetime, end: datetime, now: datetime
) -> tuple[list[uuid.UUID], int]:
    """One execution per fire time in ``[start, end]``; fire times that already have one are left
    alone (the unique ``(workflow, scheduled_for)``), so running it twice adds nothing.

    Returns the new executions and how many fire times already had one.
    """
    from shared.catalog import definition_of, schedule_of  # noqa: PLC0415

    if end < start:
        raise InvalidInput("--to: must not be before --from")
    workflow = get_workflow(session, workflow_name)
    definition = definition_of(workflow)
    schedule = schedule_of(definition, workflow.created_at)
    if schedule is None:
        raise InvalidInput(f"workflow {workflow_name!r} has no schedule to backfill")
    fires = schedule.fire_times(start - timedelta(microseconds=1), end, limit=MAX_BACKFILL + 1)
    if len(fires) > MAX_BACKFILL:
        raise InvalidInput(
            f"the range holds more than {MAX_BACKFILL} fire times; backfill a shorter range"
        )
    existing = set(
        session.scalars(
            select(Execution.scheduled_for).where(
                Execution.workflow_id == workflow.id,
                Execution.scheduled_for.in_(fires),
            )
        )
    )
    created: list[uuid.UUID] = []
    for fire in fires:
        if fire in existing:
            continue
        execution = new_execution(
            definition=definition,
            workflow=workflow,
            trigger=Trigger.BACKFILL,
            now=now,
            scheduled_for=fire,
        )
        session.add(execution)
        record_event(session, execution.id, "created", f"backfill of {iso(fire)}", at=now)
        created.append(execution.id)
    session.flush()
    return created, len(fires) - len(created)
