"""``/workflows``: the catalogue (list, show, apply, delete, pause, resume), triggers, previews."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from api.auth import ProtectedRoute, principal_of, protected
from api.problems import ApiProblem, FieldError
from api.routes.dependencies import IdempotencyKey, errors, runtime_of, scoped_idempotency_key
from api.routes.tasks import Cursor, Limit, page_of
from api.runtime import utcnow
from api.schemas import (
    SLUG_PATTERN,
    ApplyResponse,
    Deleted,
    Preview,
    TaskAccepted,
    TaskPage,
    TaskRequest,
    TriggerRequest,
    WorkflowDetail,
    WorkflowList,
    WorkflowSummary,
    json_problem,
)
from api.service import accepted, submit, task_link
from shared.catalog import (
    active_counts,
    apply_definition,
    definition_of,
    delete_workflow,
    describe,
    get_workflow,
    list_workflows,
    set_enabled,
)
from shared.definition import parse_definition, parse_definition_text
from shared.models import iso
from shared.status import ExecutionStatus, Trigger

router = APIRouter(route_class=ProtectedRoute, tags=["workflows"])

Name = Annotated[str, Path(pattern=SLUG_PATTERN, description="Workflow name.")]
YAML_TYPES = {"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"}
JSON_TYPES = {"application/json"}

DEFINITION_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A workflow definition, as in a file. `name` must match the path.",
        "content": {
            "application/yaml": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object", "additionalProperties": True}},
        },
    }
}


@router.get(
    "/workflows",
    response_model=WorkflowList,
    openapi_extra=protected("workflows:read"),
    responses=errors(),
    summary="List workflows",
)
def list_all(request: Request) -> WorkflowList:
    with runtime_of(request).sessions() as session:
        active = active_counts(session)
        items = [
            WorkflowSummary.model_validate(describe(w, active=active.get(w.id, 0)))
            for w in list_workflows(session)
        ]
    return WorkflowList(items=items)


@router.get(
    "/workflows/{name}",
    response_model=WorkflowDetail,
    openapi_extra=protected("workflows:read"),
    responses=errors(404, 422),
    summary="A workflow and its definition",
)
def show(name: Name, request: Request) -> WorkflowDetail:
    with runtime_of(request).sessions() as session:
        workflow = get_workflow(session, name)
        active = active_counts(session).get(workflow.id, 0)
        return WorkflowDetail.model_validate(
            {**describe(workflow, active=active), "definition": workflow.definition}
        )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _definition_from(body: bytes, content_type: str) -> Any:
    media = content_type.split(";", 1)[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiProblem(400, "body: not UTF-8 text") from None
    if media in JSON_TYPES or media.endswith("+json"):
        try:
            data = json.loads(text, parse_constant=_reject_constant)
        except ValueError as exc:
            if not isinstance(exc, json.JSONDecodeError):
                raise ApiProblem(422, f"body: {exc}") from None
            raise ApiProblem(
                400, f"body: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from None
        return parse_definition(data, source="<api>")
    if media in YAML_TYPES:
        return parse_definition_text(text, source="<api>")
    raise ApiProblem(
        415,
        "Content-Type: send the definition as application/yaml or application/json",
    )


@router.put(
    "/workflows/{name}",
    response_model=ApplyResponse,
    openapi_extra={**protected("workflows:write"), **DEFINITION_BODY},
    responses={
        201: {"description": "Created", "model": ApplyResponse},
        **errors(400, 413, 415, 422),
    },
    summary="Create or update a workflow from its YAML or JSON definition",
)
async def put(name: Name, request: Request, response: Response) -> ApplyResponse:
    from starlette.concurrency import run_in_threadpool  # noqa: PLC0415

    body = await request.body()
    return await run_in_threadpool(
        _apply, request, name, body, request.headers.get("content-type", ""), response
    )


def _apply(
    request: Request, name: str, body: bytes, content_type: str, response: Response
) -> ApplyResponse:
    try:
        definition = _definition_from(body, content_type)
    except RecursionError:
        raise ApiProblem(422, "body: the definition is nested too deeply") from None
    problem = json_problem(definition.to_document())
    if problem is not None:
        raise ApiProblem(
            422, problem, errors=[FieldError(field=problem.split(":")[0], message=problem)]
        )
    if definition.name != name:
        detail = f"name: the definition is named {definition.name!r} but the path says {name!r}"
        raise ApiProblem(422, detail, errors=[FieldError(field="name", message=detail)])
    with runtime_of(request).sessions() as session, session.begin():
        result = apply_definition(session, definition, utcnow())
    if result.action == "created":
        response.status_code = 201
    return ApplyResponse.model_validate(result.to_json())


@router.delete(
    "/workflows/{name}",
    response_model=Deleted,
    openapi_extra=protected("workflows:write"),
    responses=errors(404, 422),
    summary="Delete a workflow (its past executions are kept)",
)
def delete(name: Name, request: Request) -> Deleted:
    with runtime_of(request).sessions() as session, session.begin():
        delete_workflow(session, name)
    return Deleted(name=name, deleted=True)


def _set_enabled(request: Request, name: str, enabled: bool) -> WorkflowSummary:
    with runtime_of(request).sessions() as session, session.begin():
        workflow = set_enabled(session, name, enabled, utcnow())
        return WorkflowSummary.model_validate(describe(workflow))


@router.post(
    "/workflows/{name}/pause",
    response_model=WorkflowSummary,
    openapi_extra=protected("workflows:write"),
    responses=errors(404, 422),
    summary="Stop scheduling a workflow",
)
def pause(name: Name, request: Request) -> WorkflowSummary:
    return _set_enabled(request, name, False)


@router.post(
    "/workflows/{name}/resume",
    response_model=WorkflowSummary,
    openapi_extra=protected("workflows:write"),
    responses=errors(404, 422),
    summary="Schedule a workflow again from now on",
)
def resume(name: Name, request: Request) -> WorkflowSummary:
    return _set_enabled(request, name, True)


@router.post(
    "/workflows/{name}/trigger",
    status_code=202,
    response_model=TaskAccepted,
    openapi_extra=protected("tasks:write"),
    responses=errors(400, 404, 409, 413, 422),
    summary="Run a workflow now (a manual run)",
)
def trigger(
    name: Name,
    request: Request,
    response: Response,
    body: TriggerRequest | None = None,
    idempotency_key: IdempotencyKey = None,
) -> TaskAccepted:
    principal = principal_of(request)
    started = submit(
        runtime_of(request),
        TaskRequest(workflow=name, input=body.input if body else {}),
        trigger=Trigger.MANUAL,
        now=utcnow(),
        idempotency_key=scoped_idempotency_key(principal, idempotency_key),
    )
    response.headers["Location"] = task_link(started.id)
    return accepted(started)


@router.get(
    "/workflows/{name}/executions",
    response_model=TaskPage,
    openapi_extra=protected("tasks:read"),
    responses=errors(404, 422),
    summary="A workflow's executions, newest first",
)
def executions(
    name: Name,
    request: Request,
    status: ExecutionStatus | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> TaskPage:
    with runtime_of(request).sessions() as session:
        get_workflow(session, name)
    return page_of(
        request,
        f"/workflows/{name}/executions",
        workflow=name,
        status=status,
        limit=limit,
        cursor=cursor,
    )


@router.get(
    "/workflows/{name}/preview",
    response_model=Preview,
    openapi_extra=protected("workflows:read"),
    responses=errors(404, 422),
    summary="The next fire times of a workflow's schedule",
)
def preview(
    name: Name,
    request: Request,
    count: Annotated[int, Query(ge=1, le=100)] = 5,
) -> Preview:
    from shared.schedule import preview as schedule_preview  # noqa: PLC0415

    with runtime_of(request).sessions() as session:
        workflow = get_workflow(session, name)
        definition = definition_of(workflow)
        anchor = workflow.created_at
    fires = []
    if definition.schedule is not None:
        fires = schedule_preview(
            definition.schedule,
            definition.timezone,
            after=utcnow(),
            count=count,
            dst=definition.dst,
            anchor=anchor,
        )
    return Preview(
        name=definition.name,
        schedule=definition.schedule,
        timezone=definition.timezone,
        fire_times=[iso(fire) or "" for fire in fires],
    )
