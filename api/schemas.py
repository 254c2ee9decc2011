"""Request and response bodies (pydantic): what ``/openapi.json`` documents and responses obey."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from api.problems import Problem
from shared.status import ExecutionStatus, StepStatus, Trigger

MAX_BATCH = 100
MAX_JSON_DEPTH = 64
SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"


def json_problem(value: Any, path: str = "") -> str | None:
    """Why ``value`` cannot be stored as JSON in PostgreSQL (NUL, NaN, too deep), else None."""
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"{where or 'value'}: nested deeper than {MAX_JSON_DEPTH} levels"
        if isinstance(item, str):
            if "\x00" in item:
                return f"{where or 'value'}: NUL characters are not allowed"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return f"{where or 'value'}: NaN and Infinity are not JSON numbers"
        elif isinstance(item, dict):
            for key, sub in item.items():
                if "\x00" in str(key):
                    return f"{where or 'value'}: NUL characters are not allowed in keys"
                stack.append((sub, f"{where}.{key}" if where else str(key), depth + 1))
        elif isinstance(item, list):
            stack.extend((sub, f"{where}[{i}]", depth + 1) for i, sub in enumerate(item))
    return None


def _storable(value: Any) -> Any:
    problem = json_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_storable)]
WorkflowName = Annotated[str, Field(pattern=SLUG_PATTERN, description="A workflow name (slug).")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskRequest(_Strict):
    """Run a stored workflow (``workflow``) or one ad-hoc step (``step``): exactly one of them."""

    workflow: str | None = Field(
        default=None, pattern=SLUG_PATTERN, description="Name of a stored workflow."
    )
    step: JsonObject | None = Field(
        default=None,
        description="An inline step definition (same fields as a step in a workflow file).",
        json_schema_extra={"example": {"action": "python", "function": "conveyor.echo"}},
    )
    input: JsonObject = Field(
        default_factory=dict, description="Input merged over the workflow's default input."
    )


class BatchItem(TaskRequest):
    idempotency_key: str | None = Field(
        default=None, pattern=r"^[\x21-\x7e]{1,128}$", description="Per-item idempotency key."
    )


class BatchRequest(_Strict):
    tasks: list[BatchItem] = Field(min_length=1, max_length=MAX_BATCH)


class TriggerRequest(_Strict):
    input: JsonObject = Field(default_factory=dict)


class Links(BaseModel):
    self: str


class TaskAccepted(BaseModel):
    id: str
    status: ExecutionStatus
    created: bool = Field(description="False when an Idempotency-Key returned an earlier task.")
    links: Links


class BatchItemResult(BaseModel):
    index: int
    status: int = Field(description="The HTTP status this item would have had on its own.")
    id: str | None = None
    task_status: ExecutionStatus | None = None
    created: bool | None = None
    links: Links | None = None
    error: Problem | None = None


class BatchResponse(BaseModel):
    results: list[BatchItemResult]
    created: int
    failed: int


class StepView(BaseModel):
    name: str
    index: int
    attempt: int
    status: StepStatus
    input: dict[str, Any] | None
    output: Any = None
    error: dict[str, Any] | None
    usage: dict[str, Any] | None
    started_at: str | None
    finished_at: str | None
    duration_ms: int | None


class EventView(BaseModel):
    at: str | None
    kind: str
    message: str
    step: str | None
    attempt: int | None


class TaskView(BaseModel):
    id: str
    workflow: str | None
    trigger: Trigger
    scheduled_for: str | None
    status: ExecutionStatus
    reason: str | None
    attempt: int
    max_attempts: int
    input: dict[str, Any]
    output: Any = None
    error: dict[str, Any] | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None


class TaskDetail(TaskView):
    steps: list[StepView]
    events: list[EventView]
    links: Links


class PageLinks(BaseModel):
    next: str | None


class TaskPage(BaseModel):
    items: list[TaskView]
    next_cursor: str | None
    links: PageLinks


class WorkflowSummary(BaseModel):
    name: str
    schedule: str | None
    timezone: str
    enabled: bool
    next_run_at: str | None
    version: int
    steps: list[str]
    created_at: str | None
    updated_at: str | None
    active_executions: int | None = None


class WorkflowDetail(WorkflowSummary):
    definition: dict[str, Any]


class WorkflowList(BaseModel):
    items: list[WorkflowSummary]


class ApplyResponse(BaseModel):
    name: str
    action: Literal["created", "updated", "unchanged"]
    version: int
    next_run_at: str | None


class Deleted(BaseModel):
    name: str
    deleted: bool


class Preview(BaseModel):
    name: str
    schedule: str | None
    timezone: str
    fire_times: list[str]


class WebhookAccepted(BaseModel):
    source: str
    delivery_id: str
    event: str | None
    replayed: bool
    executions: list[str]


class Health(BaseModel):
    status: Literal["ok"]
    database: Literal["ok"]


class Version(BaseModel):
    name: str
    version: str
