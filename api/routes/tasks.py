"""``/tasks``: submit (single and batch), read, list, cancel."""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response

from api.auth import ProtectedRoute, principal_of, protected
from api.routes.dependencies import IdempotencyKey, errors, runtime_of, scoped_idempotency_key
from api.runtime import utcnow
from api.schemas import (
    SLUG_PATTERN,
    BatchRequest,
    BatchResponse,
    Links,
    PageLinks,
    TaskAccepted,
    TaskDetail,
    TaskPage,
    TaskRequest,
    TaskView,
)
from api.service import accepted, submit, submit_batch, task_link
from shared.executions import (
    cancel_execution,
    describe_execution,
    get_execution,
    list_executions,
)
from shared.status import ExecutionStatus, Trigger

router = APIRouter(route_class=ProtectedRoute, tags=["tasks"])


@router.post(
    "/tasks",
    status_code=202,
    response_model=TaskAccepted,
    openapi_extra=protected("tasks:write"),
    responses=errors(400, 404, 409, 413, 422),
    summary="Start a task (a workflow run or one ad-hoc step)",
)
def create_task(
    body: TaskRequest,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> TaskAccepted:
    principal = principal_of(request)
    started = submit(
        runtime_of(request),
        body,
        trigger=Trigger.API,
        now=utcnow(),
        idempotency_key=scoped_idempotency_key(principal, idempotency_key),
    )
    response.headers["Location"] = task_link(started.id)
    if not started.created:
        response.headers["Idempotent-Replayed"] = "true"
    return accepted(started)


@router.post(
    "/tasks/batch",
    response_model=BatchResponse,
    openapi_extra=protected("tasks:write"),
    responses=errors(400, 413, 422),
    summary="Start up to 100 tasks; each item gets its own result",
)
def create_tasks(body: BatchRequest, request: Request) -> BatchResponse:
    principal = principal_of(request)
    results = submit_batch(
        runtime_of(request),
        body.tasks,
        trigger=Trigger.API,
        now=utcnow(),
        key_namespace=principal.name[:100],
    )
    created = sum(1 for result in results if result.created)
    failed = sum(1 for result in results if result.error is not None)
    return BatchResponse(results=results, created=created, failed=failed)


def page_of(
    request: Request,
    path: str,
    *,
    workflow: str | None,
    status: ExecutionStatus | None,
    limit: int,
    cursor: str | None,
) -> TaskPage:
    with runtime_of(request).sessions() as session:
        rows, next_cursor = list_executions(
            session, workflow=workflow, status=status, limit=limit, cursor=cursor
        )
        items = [TaskView.model_validate(describe_execution(row)) for row in rows]
    next_link = None
    if next_cursor is not None:
        query = {
            "workflow": workflow,
            "status": status.value if status else None,
            "limit": limit,
            "cursor": next_cursor,
        }
        next_link = f"{path}?{urlencode({k: v for k, v in query.items() if v is not None})}"
    return TaskPage(items=items, next_cursor=next_cursor, links=PageLinks(next=next_link))


Limit = Annotated[int, Query(ge=1, le=500, description="Page size.")]
Cursor = Annotated[
    str | None,
    Query(max_length=200, description="`next_cursor` of the previous page."),
]


@router.get(
    "/tasks",
    response_model=TaskPage,
    openapi_extra=protected("tasks:read"),
    responses=errors(422),
    summary="List tasks, newest first",
)
def list_tasks(
    request: Request,
    workflow: Annotated[str | None, Query(pattern=SLUG_PATTERN)] = None,
    status: ExecutionStatus | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> TaskPage:
    return page_of(request, "/tasks", workflow=workflow, status=status, limit=limit, cursor=cursor)


def _detail(view: dict[str, object], execution_id: uuid.UUID) -> TaskDetail:
    return TaskDetail.model_validate({**view, "links": Links(self=task_link(execution_id))})


@router.get(
    "/tasks/{task_id}",
    response_model=TaskDetail,
    openapi_extra=protected("tasks:read"),
    responses=errors(404, 422),
    summary="A task: status, input, output, error, step runs and the event timeline",
)
def get_task(task_id: uuid.UUID, request: Request) -> TaskDetail:
    with runtime_of(request).sessions() as session:
        execution = get_execution(session, task_id)
        return _detail(describe_execution(execution, detail=True), task_id)


@router.post(
    "/tasks/{task_id}/cancel",
    response_model=TaskDetail,
    openapi_extra=protected("tasks:write"),
    responses=errors(404, 422),
    summary="Cancel a task (a running one stops at its next checkpoint)",
)
def cancel_task(task_id: uuid.UUID, request: Request) -> TaskDetail:
    with runtime_of(request).sessions() as session, session.begin():
        execution = cancel_execution(session, task_id, utcnow())
        view = describe_execution(execution, detail=True)
    return _detail(view, task_id)
