"""Starting tasks: one path for ``POST /tasks``, the batch, triggers, Lambda and EventBridge events.

Outbox order (invariant 3): the execution row is committed first, then :func:`dispatch` sends the
doorbell. A send that fails leaves the row ``pending`` and the scheduler's sweeper sends it, so
the caller gets its 202 either way.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.problems import Problem, conveyor_problem, problem_body
from api.runtime import Runtime
from api.schemas import BatchItem, BatchItemResult, Links, TaskAccepted, TaskRequest
from shared.errors import Conflict, ConveyorError, InvalidInput
from shared.executions import (
    Created,
    StoredVersions,
    dispatch,
    existing_for_key,
    request_fingerprint,
    start_task,
)
from shared.logs import get_logger
from shared.status import Trigger

log = get_logger("api")


def task_link(execution_id: uuid.UUID | str) -> str:
    return f"/tasks/{execution_id}"


def accepted(started: Created) -> TaskAccepted:
    """The 202 body for a task created (or found by its idempotency key)."""
    return TaskAccepted(
        id=str(started.id),
        status=started.status,
        created=started.created,
        links=Links(self=task_link(started.id)),
    )


def _fingerprint(request: TaskRequest) -> str:
    return request_fingerprint(
        {"workflow": request.workflow, "step": request.step, "input": request.input}
    )


def _create(
    session: Session,
    request: TaskRequest,
    *,
    trigger: Trigger,
    now: datetime,
    idempotency_key: str | None,
    fingerprint: str,
    versions: StoredVersions,
) -> Created:
    return start_task(
        session,
        workflow=request.workflow,
        step=request.step,
        trigger=trigger,
        now=now,
        run_input=request.input,
        idempotency_key=idempotency_key,
        request_hash=fingerprint,
        source="<api> step",
        versions=versions,
    )


def _existing(session: Session, idempotency_key: str, fingerprint: str) -> Created:
    """The task a concurrent request with the same key created (after a unique violation)."""
    found = existing_for_key(session, idempotency_key, fingerprint)
    if found is None:  # the other request rolled back; the caller may simply retry
        raise Conflict(f"Idempotency-Key {idempotency_key!r} is in use by a concurrent request")
    return found


def send(runtime: Runtime, ids: Sequence[uuid.UUID], now: datetime) -> None:
    """Ring the doorbells for committed executions; failures are left to the sweeper."""
    if not ids:
        return
    if runtime.doorbell is not None:
        runtime.doorbell.ring(ids)
        return
    dispatch_now(runtime, ids, now)


def dispatch_now(runtime: Runtime, ids: Sequence[uuid.UUID], now: datetime) -> None:
    """Send now (SendMessageBatch) and mark the accepted executions ``queued``."""
    publisher = runtime.publisher
    if publisher is None:
        log.warning("dispatch_skipped", reason="no queue configured", executions=len(ids))
        return
    try:
        report = dispatch(runtime.sessions, publisher, ids, now)
    except Exception as exc:  # the rows are committed: the sweeper sends them later
        log.warning("dispatch_failed", error=f"{type(exc).__name__}: {exc}", executions=len(ids))
        return
    if report.failed:
        log.warning(
            "dispatch_failed",
            executions=len(report.failed),
            error=next(iter(report.failed.values())),
        )


def submit(
    runtime: Runtime,
    request: TaskRequest,
    *,
    trigger: Trigger,
    now: datetime,
    idempotency_key: str | None = None,
) -> Created:
    """Create (or find, by idempotency key) one task, commit, then dispatch it."""
    fingerprint = _fingerprint(request)
    try:
        with runtime.sessions() as session, session.begin():
            started = _create(
                session,
                request,
                trigger=trigger,
                now=now,
                idempotency_key=idempotency_key,
                fingerprint=fingerprint,
                versions=runtime.workflow_versions,
            )
    except IntegrityError:
        if idempotency_key is None:
            raise
        with runtime.sessions() as session:
            return _existing(session, idempotency_key, fingerprint)
    if started.created:
        send(runtime, [started.id], now)
    return started


def submit_batch(
    runtime: Runtime,
    items: Sequence[BatchItem],
    *,
    trigger: Trigger,
    now: datetime,
    key_namespace: str,
) -> list[BatchItemResult]:
    """Create each item under its own savepoint (a bad item loses only itself), then one send."""
    results: list[BatchItemResult] = []
    to_send: list[uuid.UUID] = []
    with runtime.sessions() as session, session.begin():
        for index, item in enumerate(items):
            key = f"{key_namespace}/{item.idempotency_key}" if item.idempotency_key else None
            fingerprint = _fingerprint(item)
            try:
                try:
                    with session.begin_nested():
                        started = _create(
                            session,
                            item,
                            trigger=trigger,
                            now=now,
                            idempotency_key=key,
                            fingerprint=fingerprint,
                            versions=runtime.workflow_versions,
                        )
                except IntegrityError:
                    if key is None:
                        raise
                    started = _existing(session, key, fingerprint)
            except ConveyorError as error:
                status, detail, errors = conveyor_problem(error)
                results.append(
                    BatchItemResult(
                        index=index,
                        status=status,
                        error=Problem.model_validate(problem_body(status, detail, errors=errors)),
                    )
                )
                continue
            if started.created:
                to_send.append(started.id)
            results.append(
                BatchItemResult(
                    index=index,
                    status=202,
                    id=str(started.id),
                    task_status=started.status,
                    created=started.created,
                    links=Links(self=task_link(started.id)),
                )
            )
    send(runtime, to_send, now)
    return results


# ------------------------------------------------------------------ non-HTTP Lambda events


def parse_event_request(data: dict[str, Any], *, where: str) -> TaskRequest:
    """A :class:`TaskRequest` from a Lambda/EventBridge payload; errors name the field."""
    from pydantic import ValidationError  # noqa: PLC0415

    body = {key: data[key] for key in ("workflow", "step", "input") if key in data}
    try:
        return TaskRequest.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first.get("loc", ())) or "event"
        raise InvalidInput(f"{where}.{field}: {first.get('msg')}") from None


def event_result(started: Created) -> dict[str, Any]:
    return {
        "ok": True,
        "id": str(started.id),
        "status": started.status.value,
        "created": started.created,
        "links": {"self": task_link(started.id)},
    }


def event_error(error: ConveyorError) -> dict[str, Any]:
    status, detail, errors = conveyor_problem(error)
    body = problem_body(status, detail, errors=errors)
    return {"ok": False, "error": body}
