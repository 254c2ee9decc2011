"""Workflow definitions: the YAML format, its validation, and loading files.

A definition is *data*: pydantic models (frozen, unknown fields refused) plus checks that need
more than one field (the schedule with its time zone, unique step names, templates that only name
earlier steps). Every problem is reported as one line ``<source>: <field path>: <problem>``, all
problems of a document at once, through :class:`shared.errors.InvalidDefinition`.

The reference for users is ``docs/workflows.md``.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import keyword
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence, Sized
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypeAlias
from urllib.parse import urlsplit

import jinja2
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from shared.duration import Duration, format_duration
from shared.errors import InvalidDefinition, InvalidSchedule
from shared.schedule import parse_schedule, validate_timezone
from shared.templating import (
    CONTEXT_NAMES,
    analyze_template,
    child_path,
    has_template_syntax,
    iter_strings,
)

__all__ = [
    "ACTIONS",
    "DEFAULT_RETRY",
    "DEFINITION_SUFFIXES",
    "AgentStep",
    "HttpStep",
    "LambdaStep",
    "PythonStep",
    "RetrySpec",
    "Step",
    "WorkflowDefinition",
    "load_definition_files",
    "parse_definition",
    "parse_definition_text",
]

ACTIONS: tuple[str, ...] = ("agent", "http", "lambda", "python")
DEFINITION_SUFFIXES: tuple[str, ...] = (".json", ".yaml", ".yml")
MAX_STEPS = 50
TOP_LEVEL = "(top level)"

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_PYTHON_FUNCTION = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$")
_LAMBDA_FUNCTION = re.compile(
    r"^(?:(?:arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:)?\d{12}:function:)?"
    r"[A-Za-z0-9_-]{1,64}(?::[A-Za-z0-9_$-]{1,128})?$"
)
_LAMBDA_QUALIFIER = re.compile(r"^(?:\$LATEST|[A-Za-z0-9_-]{1,128})$")
_AGENTCORE_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:bedrock-agentcore:[a-z0-9-]+:\d{12}:\S+$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_PROBLEMS = "conveyor_problems"


# --------------------------------------------------------------------------- field types
def _describe(value: object) -> str:  # noqa: PLR0911 (a lookup table)
    """``a list``, ``an integer``, … for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


def _shown(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check_slug(value: str) -> str:
    if not _SLUG.match(value):
        raise ValueError(
            "must be a lower-case slug: 1-63 characters of a-z, 0-9, '-' and '_', starting "
            f"with a letter or digit (got {_shown(value)})"
        )
    return value


Slug = Annotated[str, AfterValidator(_check_slug)]


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


NonEmptyStr = Annotated[str, AfterValidator(_non_empty)]


def _json_value(value: Any, path: str = "") -> Any:
    """A JSON value; YAML dates/times become ISO strings, anything else non-JSON is refused."""
    where = f" at {path}" if path else ""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r}{where} is not a JSON number")
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"keys must be strings (got {_shown(key)}{where}); quote it")
            result[key] = _json_value(item, child_path(path, key))
        return result
    if isinstance(value, list | tuple):
        return [_json_value(item, child_path(path, index)) for index, item in enumerate(value)]
    raise ValueError(f"{_describe(value)}{where} is not a JSON value")


def _json_object(value: Any) -> Any:
    if not isinstance(value, Mapping):
        return value  # the dict type check reports it
    return _json_value(value)


JsonValue = Annotated[Any, BeforeValidator(_json_value)]
JsonObject = Annotated[dict[str, Any], BeforeValidator(_json_object)]


def _duration_bounds(
    *, at_most: timedelta | None = None, positive: bool = False
) -> Callable[[timedelta], timedelta]:
    def check(value: timedelta) -> timedelta:
        if positive and value <= timedelta(0):
            raise ValueError("must be longer than 0s")
        if at_most is not None and value > at_most:
            raise ValueError(
                f"must be at most {format_duration(at_most)} (got {format_duration(value)})"
            )
        return value

    return check


StepTimeout = Annotated[
    Duration, AfterValidator(_duration_bounds(at_most=timedelta(hours=1), positive=True))
]
ExecutionTimeout = Annotated[
    Duration, AfterValidator(_duration_bounds(at_most=timedelta(hours=12), positive=True))
]
Jitter = Annotated[Duration, AfterValidator(_duration_bounds(at_most=timedelta(hours=1)))]
RetryDelay = Annotated[Duration, AfterValidator(_duration_bounds(at_most=timedelta(days=1)))]
PositiveDuration = Annotated[Duration, AfterValidator(_duration_bounds(positive=True))]


def _problems_error(problems: list[tuple[str, str]]) -> PydanticCustomError:
    """A model-level error carrying ``(relative field path, message)`` pairs."""
    summary = "; ".join(f"{path}: {message}" if path else message for path, message in problems)
    return PydanticCustomError(_PROBLEMS, "{summary}", {"summary": summary, "problems": problems})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# --------------------------------------------------------------------------- retry
RetryOn = Literal["transient", "timeout", "error"]


def _default_retry_on() -> list[RetryOn]:
    return ["transient", "timeout"]


class RetrySpec(_Model):
    """How a failed step is retried: a new attempt of the execution after a back-off delay."""

    max_attempts: int = Field(default=3, ge=1, le=100)
    """Attempts in total, the first included (1 = never retry)."""
    initial: RetryDelay = timedelta(seconds=1)
    """Delay before the second attempt."""
    max: RetryDelay = timedelta(minutes=5)
    """Longest delay between attempts."""
    multiplier: float = Field(default=2.0, ge=1.0, le=10.0)
    """Each delay is the previous one times this."""
    jitter: Literal["full", "none"] = "full"
    """``full``: a random delay between 0 and the computed one; ``none``: exactly it."""
    retry_on: list[RetryOn] = Field(default_factory=_default_retry_on, min_length=1)
    """Which failures are retried: ``transient`` (throttling, 5xx, connection loss that outlived
    the in-process budget), ``timeout`` (the step ran past its timeout), ``error`` (a permanent
    error such as a 4xx or a function error)."""

    @field_validator("retry_on")
    @classmethod
    def _unique_retry_on(cls, value: list[RetryOn]) -> list[RetryOn]:
        if len(set(value)) != len(value):
            raise ValueError("must not repeat an entry")
        return value

    @model_validator(mode="after")
    def _initial_not_above_max(self) -> RetrySpec:
        if self.initial > self.max:
            raise _problems_error(
                [
                    (
                        "initial",
                        f"must not exceed max ({format_duration(self.initial)} > "
                        f"{format_duration(self.max)})",
                    )
                ]
            )
        return self

    def delay(self, attempt: int) -> timedelta:
        """The un-jittered delay after failed attempt number ``attempt`` (1-based)."""
        seconds = self.initial.total_seconds() * self.multiplier ** max(attempt - 1, 0)
        return min(timedelta(seconds=min(seconds, self.max.total_seconds())), self.max)


DEFAULT_RETRY = RetrySpec(max_attempts=1)
"""The policy when neither the step nor the workflow defines one: no retry."""


# --------------------------------------------------------------------------- steps
class _StepBase(_Model):
    name: Slug
    """Unique within the workflow; templates refer to the step's result as ``steps.<name>``."""
    timeout: StepTimeout = timedelta(minutes=5)
    retry: RetrySpec | None = None
    """Overrides the workflow's ``retry`` as a whole (fields are not merged)."""


def _qualifier(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _check_lambda_function(value: str) -> str:
    if not _LAMBDA_FUNCTION.match(value):
        raise ValueError(
            "must be a Lambda function name (letters, digits, '-', '_'; at most 64) or a "
            f"function ARN (got {_shown(value)})"
        )
    return value


def _check_qualifier(value: str) -> str:
    if not _LAMBDA_QUALIFIER.match(value):
        raise ValueError(f"must be a version number, an alias or $LATEST (got {_shown(value)})")
    return value


class LambdaStep(_StepBase):
    """Invoke an AWS Lambda function."""

    action: Literal["lambda"]
    function: Annotated[str, AfterValidator(_check_lambda_function)]
    qualifier: (
        Annotated[str, BeforeValidator(_qualifier), AfterValidator(_check_qualifier)] | None
    ) = None
    invocation_type: Literal["RequestResponse", "Event", "DryRun"] = "RequestResponse"
    payload: JsonValue = Field(default_factory=dict)


class AgentStep(_StepBase):
    """One LLM call (Anthropic Messages, or a Bedrock AgentCore runtime)."""

    action: Literal["agent"]
    provider: Literal["anthropic", "bedrock-agentcore"] = "anthropic"
    model: NonEmptyStr | None = None
    """Default: the ``default_model`` setting."""
    system: str | None = None
    prompt: NonEmptyStr
    max_tokens: int = Field(default=1024, ge=1, le=64000)
    output: Literal["text", "json"] = "text"
    agent_runtime_arn: str | None = None

    @model_validator(mode="after")
    def _runtime_arn_matches_provider(self) -> AgentStep:
        arn = self.agent_runtime_arn
        if self.provider == "bedrock-agentcore":
            if arn is None:
                raise _problems_error(
                    [("agent_runtime_arn", "field required when provider is bedrock-agentcore")]
                )
            if not _AGENTCORE_ARN.match(arn):
                raise _problems_error(
                    [
                        (
                            "agent_runtime_arn",
                            "must be a Bedrock AgentCore runtime ARN "
                            f"(arn:aws:bedrock-agentcore:<region>:<account>:runtime/…, "
                            f"got {_shown(arn)})",
                        )
                    ]
                )
        elif arn is not None:
            raise _problems_error(
                [("agent_runtime_arn", "only allowed when provider is bedrock-agentcore")]
            )
        return self


def _check_url(value: str) -> str:
    cut = min((value.find(mark) for mark in ("{{", "{%") if mark in value), default=-1)
    if cut == 0:
        return value  # entirely computed: checked by the worker after rendering
    static = value if cut < 0 else value[:cut]
    scheme, separator, _rest = static.partition("://")
    if scheme.lower() not in {"http", "https"} or not separator:
        raise ValueError(f"must be an http:// or https:// URL (got {_shown(value)})")
    if cut < 0 and not urlsplit(value).netloc:
        raise ValueError(f"must name a host (got {_shown(value)})")
    return value


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _check_headers(value: dict[str, str]) -> dict[str, str]:
    for name in value:
        if not _HEADER_NAME.match(name):
            raise ValueError(f"{_shown(name)} is not a valid HTTP header name")
    return value


def _check_statuses(value: list[int]) -> list[int]:
    for status in value:
        if not 100 <= status <= 599:
            raise ValueError(f"HTTP status codes are 100..599 (got {status})")
    if len(set(value)) != len(value):
        raise ValueError("must not repeat a status code")
    return value


class HttpStep(_StepBase):
    """One HTTP request (httpx)."""

    action: Literal["http"]
    url: Annotated[NonEmptyStr, AfterValidator(_check_url)]
    method: Annotated[
        Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"], BeforeValidator(_upper)
    ] = "GET"
    headers: Annotated[dict[str, str], AfterValidator(_check_headers)] = Field(default_factory=dict)
    body: JsonValue = None
    """A JSON value sent as the JSON body; absent = no body."""
    expect_status: Annotated[list[int], AfterValidator(_check_statuses)] | None = Field(
        default=None, min_length=1
    )
    """Statuses that count as success; absent = any 2xx."""


def _check_python_function(value: str) -> str:
    if ":" in value or "/" in value or "\\" in value:
        raise ValueError(
            "must be the name a function was registered under with the worker (e.g. "
            f"'reports.crunch'), never an import path (got {_shown(value)})"
        )
    if not _PYTHON_FUNCTION.match(value):
        raise ValueError(
            "must be a registered function name: lower-case dotted identifiers such as "
            f"'reports.crunch' (got {_shown(value)})"
        )
    return value


def _check_kwargs(value: dict[str, Any]) -> dict[str, Any]:
    for name in value:
        if not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError(f"{_shown(name)} is not a valid keyword argument name")
    return value


class PythonStep(_StepBase):
    """Call a Python function registered with the worker (an allow-list, never an import)."""

    action: Literal["python"]
    function: Annotated[str, AfterValidator(_check_python_function)]
    args: Annotated[JsonObject, AfterValidator(_check_kwargs)] = Field(default_factory=dict)
    """Keyword arguments; their string values are templates."""


Step: TypeAlias = Annotated[
    LambdaStep | AgentStep | HttpStep | PythonStep, Field(discriminator="action")
]
STEP_TYPES: dict[str, type[_StepBase]] = {
    "agent": AgentStep,
    "http": HttpStep,
    "lambda": LambdaStep,
    "python": PythonStep,
}
TEMPLATE_FIELDS: dict[str, tuple[str, ...]] = {
    "agent": ("system", "prompt"),
    "http": ("url", "headers", "body"),
    "lambda": ("payload",),
    "python": ("args",),
}
"""Per action, the fields whose string values are templates."""


# --------------------------------------------------------------------------- workflow
def _check_schedule(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty (leave it out for a workflow run on demand only)")
    return value.strip()


def _check_timezone(value: str) -> str:
    try:
        return validate_timezone(value)
    except InvalidSchedule as exc:
        raise ValueError(_strip_field(str(exc), "timezone")) from None


def _unique_slugs(value: list[str]) -> list[str]:
    seen: set[str] = set()
    for item in value:
        if item in seen:
            raise ValueError(f"{item!r} is listed twice")
        seen.add(item)
    return value


class WorkflowDefinition(_Model):
    """One workflow: when it runs, how runs behave, and its steps."""

    name: Slug
    description: str | None = None
    schedule: Annotated[str, AfterValidator(_check_schedule)] | None = None
    """``cron(…)`` (AWS 6 fields), a 5-field cron line, ``rate(…)`` or ``at(…)``; absent =
    on demand only."""
    timezone: Annotated[str, AfterValidator(_check_timezone)] = "UTC"
    dst: Literal["vixie", "skip"] = "vixie"
    catchup: Literal["none", "latest", "all"] = "latest"
    catchup_cap: int = Field(default=100, ge=1, le=10000)
    start_deadline: PositiveDuration | None = None
    overlap: Literal["allow", "skip", "buffer_one"] = "skip"
    jitter: Jitter = timedelta(0)
    timeout: ExecutionTimeout = timedelta(hours=1)
    enabled: bool = True
    input: JsonObject = Field(default_factory=dict)
    retry: RetrySpec | None = None
    webhooks: Annotated[list[Slug], AfterValidator(_unique_slugs)] = Field(default_factory=list)
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)

    @model_validator(mode="after")
    def _cross_field(self) -> WorkflowDefinition:
        problems = _cross_problems(
            schedule=self.schedule,
            timezone=self.timezone,
            dst=self.dst,
            steps=[_step_view(step) for step in self.steps],
        )
        if problems:
            raise _problems_error(problems)
        return self

    # -- helpers for the scheduler, the worker and the API
    def to_document(self) -> dict[str, Any]:
        """A JSON-ready dict (durations as ``"15m"`` strings) that parses back to ``self``."""
        return self.model_dump(mode="json", exclude_none=True)

    @property
    def step_names(self) -> list[str]:
        return [step.name for step in self.steps]

    def get_step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def effective_retry(self, step: Step | str) -> RetrySpec:
        """The step's retry policy, else the workflow's, else :data:`DEFAULT_RETRY`."""
        resolved = self.get_step(step) if isinstance(step, str) else step
        return resolved.retry or self.retry or DEFAULT_RETRY


# --------------------------------------------------------------------------- cross-field checks
def _step_view(step: _StepBase) -> dict[str, Any]:
    action = str(getattr(step, "action", ""))
    view: dict[str, Any] = {"name": step.name, "action": action}
    for name in TEMPLATE_FIELDS.get(action, ()):
        view[name] = getattr(step, name)
    return view


def _strip_field(message: str, field: str) -> str:
    """``"schedule: bad"`` → ``"bad"`` so the field is not named twice."""
    return message.removeprefix(f"{field}: ")


def _schedule_problems(schedule: object, timezone: object, dst: object) -> list[tuple[str, str]]:
    if not isinstance(schedule, str) or not schedule.strip():
        return []
    zone = "UTC"
    if isinstance(timezone, str):
        try:
            zone = validate_timezone(timezone)
        except InvalidSchedule:
            zone = "UTC"  # reported on its own; still check the expression
    rule: Literal["vixie", "skip"] = "skip" if dst == "skip" else "vixie"
    try:
        parse_schedule(schedule.strip(), zone, dst=rule)
    except (InvalidSchedule, ValueError) as exc:
        return [("schedule", _strip_field(str(exc), "schedule"))]
    return []


def _template_problems(source: str, earlier: Sequence[str]) -> list[str]:
    if not has_template_syntax(source):
        return []
    try:
        analysis = analyze_template(source)
    except jinja2.TemplateSyntaxError as exc:
        where = f" (line {exc.lineno})" if "\n" in source and exc.lineno else ""
        return [f"template syntax error{where}: {exc.message}"]
    problems: list[str] = []
    for name in sorted(analysis.variables - CONTEXT_NAMES):
        hint = difflib.get_close_matches(name, sorted(CONTEXT_NAMES), n=1)
        suggestion = f"did you mean '{hint[0]}'? " if hint else ""
        problems.append(
            f"template uses unknown variable '{name}' ({suggestion}available: "
            f"{', '.join(sorted(CONTEXT_NAMES))})"
        )
    for attribute in dict.fromkeys(analysis.private_attributes):
        problems.append(f"template accesses '{attribute}': names starting with '_' are not allowed")
    for ref in analysis.step_references:
        if ref not in earlier:
            listed = ", ".join(earlier) if earlier else "none"
            problems.append(
                f"template refers to step '{ref}', which is not an earlier step "
                f"(earlier steps: {listed})"
            )
    return problems


def _cross_problems(
    *, schedule: object, timezone: object, dst: object, steps: object
) -> list[tuple[str, str]]:
    """Checks spanning fields; tolerant of raw (unvalidated) data so all problems are found."""
    problems = _schedule_problems(schedule, timezone, dst)
    if not isinstance(steps, list):
        return problems
    earlier: list[str] = []
    first_index: dict[str, int] = {}
    for index, step in enumerate(steps):
        if not isinstance(step, Mapping):
            continue
        name = step.get("name")
        prefix = f"steps[{index}]"
        if isinstance(name, str):
            if name in first_index:
                problems.append(
                    (
                        f"{prefix}.name",
                        f"duplicate step name '{name}' (already used by "
                        f"steps[{first_index[name]}])",
                    )
                )
            else:
                first_index[name] = index
        action = step.get("action")
        if isinstance(action, str):
            for field in TEMPLATE_FIELDS.get(action, ()):
                if field not in step:
                    continue
                for path, text in iter_strings(step[field], f"{prefix}.{field}"):
                    problems.extend((path, p) for p in _template_problems(text, earlier))
        if isinstance(name, str) and name not in earlier:
            earlier.append(name)
    return problems


# --------------------------------------------------------------------------- error translation
_STEP_LOC_LENGTH = 3


def _strip_tag(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """Drop the discriminator tag pydantic puts after ``steps[i]``."""
    if (
        len(loc) >= _STEP_LOC_LENGTH
        and loc[0] == "steps"
        and isinstance(loc[1], int)
        and loc[2] in ACTIONS
    ):
        return loc[:2] + loc[3:]
    return loc


def _path(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        path = child_path(path, part)
    return path


def _join(path: str, relative: str) -> str:
    if not relative:
        return path
    if not path:
        return relative
    return f"{path}.{relative}"


def _model_for(parent: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model a raw pydantic loc (with the tag) points into, for unknown-field hints."""
    if parent == ():
        return WorkflowDefinition
    if parent[-1] == "retry":
        return RetrySpec
    if len(parent) == _STEP_LOC_LENGTH and parent[0] == "steps":
        return STEP_TYPES.get(str(parent[2]))
    return None


def _unknown_field(loc: tuple[int | str, ...]) -> str:
    name = loc[-1] if loc else "?"
    message = f"unknown field '{name}'"
    model = _model_for(loc[:-1])
    if model is None:
        return message
    fields = list(model.model_fields)
    if model in STEP_TYPES.values():
        action = loc[2]
        owners = [a for a, t in STEP_TYPES.items() if str(name) in t.model_fields]
        if owners:
            return (
                f"{message} (the '{action}' action has no such field; it belongs to: "
                f"{', '.join(owners)})"
            )
    hint = difflib.get_close_matches(str(name), fields, n=1)
    if hint:
        return f"{message} (did you mean '{hint[0]}'?)"
    return f"{message} (allowed: {', '.join(sorted(fields))})"


def _choices(expected: str) -> str:
    return ", ".join(re.findall(r"'([^']*)'", expected)) or expected


_TYPE_NAMES = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "timedelta_type": "a duration",
}


def _message(error: ErrorDetails) -> list[tuple[str, str]]:  # noqa: PLR0911 (one per kind)
    """One pydantic error → ``(field path, message)`` lines."""
    kind = error["type"]
    raw_loc = tuple(error["loc"])
    loc = _strip_tag(raw_loc)
    path = _path(loc)
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    value = error.get("input")
    if kind == _PROBLEMS:
        return [(_join(path, relative), message) for relative, message in ctx["problems"]]
    if kind == "missing":
        return [(path, "field required")]
    if kind == "extra_forbidden":
        return [(path, _unknown_field(raw_loc))]
    if kind == "union_tag_invalid":
        return [
            (
                _join(path, "action"),
                f"unknown action '{ctx.get('tag')}' (expected one of: {', '.join(ACTIONS)})",
            )
        ]
    if kind == "union_tag_not_found":
        return [(_join(path, "action"), f"field required (one of: {', '.join(ACTIONS)})")]
    if kind in _TYPE_NAMES:
        return [(path, f"must be {_TYPE_NAMES[kind]} (got {_describe(value)})")]
    if kind == "literal_error":
        return [
            (path, f"must be one of: {_choices(str(ctx.get('expected')))} (got {_shown(value)})")
        ]
    if kind in {"greater_than_equal", "greater_than"}:
        bound = ctx.get("ge", ctx.get("gt"))
        word = "at least" if kind == "greater_than_equal" else "more than"
        return [(path, f"must be {word} {bound} (got {_shown(value)})")]
    if kind in {"less_than_equal", "less_than"}:
        bound = ctx.get("le", ctx.get("lt"))
        word = "at most" if kind == "less_than_equal" else "less than"
        return [(path, f"must be {word} {bound} (got {_shown(value)})")]
    if kind in {"too_short", "too_long"}:
        count = len(value) if isinstance(value, Sized) else ctx.get("actual_length")
        if kind == "too_short":
            least = ctx.get("min_length")
            noun = "step" if loc == ("steps",) else "item"
            return [(path, f"must have at least {least} {noun}{'s' if least != 1 else ''}")]
        noun = "steps" if loc == ("steps",) else "items"
        return [(path, f"must have at most {ctx.get('max_length')} {noun} (got {count})")]
    if kind in {"value_error", "assertion_error"}:
        return [(path, str(ctx.get("error", error["msg"])))]
    message = error["msg"]
    return [(path, message[:1].lower() + message[1:])]


_STEP_PATH = re.compile(r"^steps\[(\d+)\]")


def _document_order(path: str, sequence: int) -> tuple[int, int, int]:
    """Top-level fields first, then each step's problems in step order."""
    match = _STEP_PATH.match(path)
    if match:
        return (1, int(match.group(1)), sequence)
    return (0, 0, sequence)


def _line(source: str, path: str, message: str) -> str:
    return f"{source}: {path or TOP_LEVEL}: {message}"


# --------------------------------------------------------------------------- loading
def _problems_of(data: object, source: str) -> tuple[WorkflowDefinition | None, list[str]]:
    if data is None:
        return None, [_line(source, "", "the document is empty")]
    if isinstance(data, WorkflowDefinition):
        return data, []
    if not isinstance(data, Mapping):
        return None, [
            _line(source, "", f"a workflow definition must be a mapping (got {_describe(data)})")
        ]
    try:
        return WorkflowDefinition.model_validate(data), []
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    pairs: list[tuple[str, str]] = []
    for error in errors:
        pairs.extend(_message(error))
    if not any(error["type"] == _PROBLEMS and error["loc"] == () for error in errors):
        # Fields failed, so the cross-field validator never ran: run it on the raw data.
        pairs.extend(
            _cross_problems(
                schedule=data.get("schedule"),
                timezone=data.get("timezone", "UTC"),
                dst=data.get("dst", "vixie"),
                steps=data.get("steps"),
            )
        )
    ordered = sorted(enumerate(pairs), key=lambda item: _document_order(item[1][0], item[0]))
    lines = dict.fromkeys(_line(source, path, message) for _, (path, message) in ordered)
    return None, list(lines)


def parse_definition(data: object, *, source: str = "<string>") -> WorkflowDefinition:
    """Validate an already-decoded document; raise :class:`InvalidDefinition` with every problem."""
    definition, problems = _problems_of(data, source)
    if definition is None:
        raise InvalidDefinition(problems)
    return definition


def _load_yaml(text: str, source: str) -> tuple[object, list[str]]:
    import yaml  # noqa: PLC0415  (only text needs it: the API's task path stays lighter)

    try:
        return yaml.safe_load(text), []
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else TOP_LEVEL
        problem = exc.problem or exc.context or "not valid YAML"
        context = f" ({exc.context})" if exc.context and exc.problem else ""
        return None, [f"{source}: {where}: invalid YAML: {problem}{context}"]
    except yaml.YAMLError as exc:
        return None, [f"{source}: {TOP_LEVEL}: invalid YAML: {exc}"]


def parse_definition_text(text: str, *, source: str = "<string>") -> WorkflowDefinition:
    """Parse YAML (or JSON, which is YAML) with ``yaml.safe_load`` and validate it."""
    data, problems = _load_yaml(text, source)
    if problems:
        raise InvalidDefinition(problems)
    return parse_definition(data, source=source)


def _definition_files(path: Path) -> Iterator[Path]:
    for entry in sorted(path.iterdir()):
        if entry.is_file() and entry.suffix.lower() in DEFINITION_SUFFIXES:
            yield entry


def load_definition_files(path: Path) -> list[tuple[Path, WorkflowDefinition]]:
    """Load one file, or every ``*.yaml``/``*.yml``/``*.json`` file of a directory (sorted, not
    recursive). All files are validated first; any problem in any file raises one
    :class:`InvalidDefinition` listing them all, and nothing is returned. Two files defining
    the same workflow name are an error."""
    if path.is_dir():
        files = list(_definition_files(path))
        if not files:
            raise InvalidDefinition(
                [
                    f"{path}: {TOP_LEVEL}: no workflow definition files "
                    f"({', '.join('*' + s for s in DEFINITION_SUFFIXES)}) in this directory"
                ]
            )
    elif path.is_file():
        files = [path]
    else:
        raise InvalidDefinition([f"{path}: {TOP_LEVEL}: no such file or directory"])

    problems: list[str] = []
    loaded: list[tuple[Path, WorkflowDefinition]] = []
    owners: dict[str, Path] = {}
    for file in files:
        source = str(file)
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{source}: {TOP_LEVEL}: cannot read the file: {exc}")
            continue
        data, yaml_problems = _load_yaml(text, source)
        if yaml_problems:
            problems.extend(yaml_problems)
            continue
        definition, file_problems = _problems_of(data, source)
        problems.extend(file_problems)
        if definition is None:
            continue
        if definition.name in owners:
            problems.append(
                _line(
                    source,
                    "name",
                    f"workflow '{definition.name}' is already defined in {owners[definition.name]}",
                )
            )
            continue
        owners[definition.name] = file
        loaded.append((file, definition))
    if problems:
        raise InvalidDefinition(problems)
    return loaded


_STORED_CACHE_SIZE = 4096
_stored: OrderedDict[bytes, WorkflowDefinition] = OrderedDict()
_stored_lock = threading.Lock()


def load_stored_definition(document: dict[str, Any], *, source: str) -> WorkflowDefinition:
    """A definition read back from the database (already valid when it was stored), memoised by
    content: a worker or API process validates each distinct document once, not per run.
    Definitions are frozen, so sharing one object is safe."""
    key = hashlib.blake2b(
        json.dumps(document, sort_keys=True, separators=(",", ":"), default=str).encode(),
        digest_size=16,
    ).digest()
    with _stored_lock:
        found = _stored.get(key)
        if found is not None:
            _stored.move_to_end(key)
            return found
    definition = parse_definition(document, source=source)
    with _stored_lock:
        _stored[key] = definition
        while len(_stored) > _STORED_CACHE_SIZE:
            _stored.popitem(last=False)
    return definition
