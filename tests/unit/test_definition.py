"""Workflow definitions: what parses, what is refused, and how every problem is reported."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from shared.definition import (
    DEFAULT_RETRY,
    AgentStep,
    HttpStep,
    LambdaStep,
    PythonStep,
    RetrySpec,
    load_definition_files,
    parse_definition,
    parse_definition_text,
)
from shared.errors import InvalidDefinition, InvalidInput

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workflows"

DESIGN_EXAMPLE = """\
name: daily-report
schedule: "cron(0 9 * * ? *)"   # also "0 9 * * *", "rate(15 minutes)", "at(2027-01-01T00:00:00)"
timezone: Europe/Berlin          # DST handled
catchup: latest                  # none | latest | all
overlap: skip                    # allow | skip | buffer_one
jitter: 30s
timeout: 15m
input: {region: eu}
retry: {max_attempts: 3, initial: 2s, max: 5m, multiplier: 2, jitter: full}
steps:
  - name: fetch
    action: lambda
    function: fetch-data
    qualifier: prod
    payload: {date: "{{ scheduled_for }}", region: "{{ input.region }}"}
  - name: summarize
    action: agent
    prompt: "Summarize: {{ steps.fetch.output }}"
  - name: notify
    action: http
    url: https://hooks.example.com/report
    method: POST
    body: {text: "{{ steps.summarize.output.text }}"}
"""


def base() -> dict[str, Any]:
    """A valid document the invalid cases below break one thing at a time."""
    return {
        "name": "wf",
        "schedule": "cron(0 9 * * ? *)",
        "timezone": "Europe/Berlin",
        "steps": [
            {
                "name": "fetch",
                "action": "lambda",
                "function": "fetch-data",
                "payload": {"date": "{{ scheduled_for }}"},
            },
            {"name": "summarize", "action": "agent", "prompt": "Sum: {{ steps.fetch.output }}"},
            {
                "name": "notify",
                "action": "http",
                "url": "https://hooks.example.com/report",
                "method": "POST",
                "body": {"text": "{{ steps.summarize.output.text }}"},
            },
        ],
    }


def problems_of(data: object, *, source: str = "wf.yaml") -> list[str]:
    parse: Callable[[], object] = (
        (lambda: parse_definition_text(data, source=source))
        if isinstance(data, str)
        else (lambda: parse_definition(data, source=source))
    )
    with pytest.raises(InvalidDefinition) as info:
        parse()
    return info.value.problems


Mutation = Callable[[dict[str, Any]], object]


def change(path: str, value: object) -> Mutation:
    """Set ``a.b.0.c``-style path in the base document; ``value`` DELETE removes it."""

    def apply(doc: dict[str, Any]) -> object:
        *parents, last = path.split(".")
        target: Any = doc
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        key: Any = int(last) if isinstance(target, list) else last
        if value is DELETE:
            del target[key]
        else:
            target[key] = value
        return doc

    return apply


DELETE = object()


def text(document: str) -> Mutation:
    return lambda _doc: document


def many_steps(count: int) -> Mutation:
    def apply(doc: dict[str, Any]) -> object:
        doc["steps"] = [
            {"name": f"s{i}", "action": "python", "function": "tasks.noop"} for i in range(count)
        ]
        return doc

    return apply


# (id, how to break the base document, fragments that must all appear in ONE problem line)
INVALID: list[tuple[str, Mutation, tuple[str, ...]]] = [
    (
        "unknown action",
        change("steps.1.action", "lamda"),
        (
            "wf.yaml: steps[1].action: unknown action 'lamda' "
            "(expected one of: agent, http, lambda, python)",
        ),
    ),
    (
        "missing action",
        change("steps.0.action", DELETE),
        ("wf.yaml: steps[0].action: field required (one of: agent, http, lambda, python)",),
    ),
    (
        "bad schedule expression",
        change("schedule", "every tuesday"),
        ("wf.yaml: schedule: ", "every tuesday"),
    ),
    (
        "bad cron field count",
        change("schedule", "cron(0 9 * *)"),
        ("wf.yaml: schedule: ", "cron(0 9 * *)"),
    ),
    ("cron value out of range", change("schedule", "0 25 * * *"), ("wf.yaml: schedule: ", "25")),
    ("empty schedule", change("schedule", " "), ("wf.yaml: schedule: must not be empty",)),
    ("bad timezone", change("timezone", "Mars/Olympus"), ("wf.yaml: timezone: ", "Mars/Olympus")),
    (
        "template names a missing step",
        change("steps.2.body.text", "{{ steps.sumarize.output.text }}"),
        (
            "wf.yaml: steps[2].body.text: template refers to step 'sumarize', which is not an "
            "earlier step (earlier steps: fetch, summarize)",
        ),
    ),
    (
        "template names a later step",
        change("steps.0.payload.date", "{{ steps.notify.output }}"),
        (
            "wf.yaml: steps[0].payload.date: template refers to step 'notify', which is not an "
            "earlier step (earlier steps: none)",
        ),
    ),
    (
        "template names its own step",
        change("steps.1.prompt", "{{ steps.summarize.output }}"),
        (
            "wf.yaml: steps[1].prompt: template refers to step 'summarize', which is not an "
            "earlier step (earlier steps: fetch)",
        ),
    ),
    (
        "template names a missing step by subscript",
        change("steps.2.headers", {"X-Id": "{{ steps['fetchh'].output.id }}"}),
        ("wf.yaml: steps[2].headers.X-Id: template refers to step 'fetchh'",),
    ),
    (
        "duplicate step names",
        change("steps.2.name", "fetch"),
        ("wf.yaml: steps[2].name: duplicate step name 'fetch' (already used by steps[0])",),
    ),
    (
        "bad duration",
        change("timeout", "15 minutes"),
        ("wf.yaml: timeout: invalid duration '15 minutes'", "'1h30m'"),
    ),
    (
        "negative duration",
        change("jitter", "-5s"),
        ("wf.yaml: jitter: invalid duration '-5s': must not be negative",),
    ),
    (
        "execution timeout above 12h",
        change("timeout", "13h"),
        ("wf.yaml: timeout: must be at most 12h (got 13h)",),
    ),
    ("zero timeout", change("timeout", 0), ("wf.yaml: timeout: must be longer than 0s",)),
    (
        "step timeout above 1h",
        change("steps.0.timeout", "2h"),
        ("wf.yaml: steps[0].timeout: must be at most 1h (got 2h)",),
    ),
    (
        "jitter above 1h",
        change("jitter", "61m"),
        ("wf.yaml: jitter: must be at most 1h (got 1h1m)",),
    ),
    ("missing name", change("name", DELETE), ("wf.yaml: name: field required",)),
    ("missing steps", change("steps", DELETE), ("wf.yaml: steps: field required",)),
    (
        "missing prompt",
        change("steps.1.prompt", DELETE),
        ("wf.yaml: steps[1].prompt: field required",),
    ),
    (
        "missing lambda function",
        change("steps.0.function", DELETE),
        ("wf.yaml: steps[0].function: field required",),
    ),
    (
        "unknown top-level field",
        change("scheudle", "cron(0 9 * * ? *)"),
        ("wf.yaml: scheudle: unknown field 'scheudle' (did you mean 'schedule'?)",),
    ),
    (
        "field of another action",
        change("steps.0.prompt", "hi"),
        (
            "wf.yaml: steps[0].prompt: unknown field 'prompt' (the 'lambda' action has no such "
            "field; it belongs to: agent)",
        ),
    ),
    (
        "unknown retry field",
        change("retry", {"attempts": 3}),
        ("wf.yaml: retry.attempts: unknown field 'attempts' (did you mean 'max_attempts'?)",),
    ),
    (
        "bad workflow name",
        change("name", "Daily Report"),
        ("wf.yaml: name: must be a lower-case slug", "(got 'Daily Report')"),
    ),
    ("name too long", change("name", "a" * 64), ("wf.yaml: name: must be a lower-case slug",)),
    (
        "bad step name",
        change("steps.0.name", "Fetch.Data"),
        ("wf.yaml: steps[0].name: must be a lower-case slug", "'Fetch.Data'"),
    ),
    ("too many steps", many_steps(51), ("wf.yaml: steps: must have at most 50 steps (got 51)",)),
    ("no steps", change("steps", []), ("wf.yaml: steps: must have at least 1 step",)),
    (
        "negative max_attempts",
        change("retry", {"max_attempts": -1}),
        ("wf.yaml: retry.max_attempts: must be at least 1 (got -1)",),
    ),
    (
        "step max_attempts above 100",
        change("steps.0.retry", {"max_attempts": 101}),
        ("wf.yaml: steps[0].retry.max_attempts: must be at most 100 (got 101)",),
    ),
    (
        "retry initial above max",
        change("retry", {"initial": "10m", "max": "5m"}),
        ("wf.yaml: retry.initial: must not exceed max (10m > 5m)",),
    ),
    (
        "retry multiplier below 1",
        change("retry", {"multiplier": 0.5}),
        ("wf.yaml: retry.multiplier: must be at least 1.0 (got 0.5)",),
    ),
    (
        "retry jitter unknown",
        change("retry", {"jitter": "half"}),
        ("wf.yaml: retry.jitter: must be one of: full, none (got 'half')",),
    ),
    (
        "retry_on unknown",
        change("retry", {"retry_on": ["always"]}),
        ("wf.yaml: retry.retry_on[0]: must be one of: transient, timeout, error (got 'always')",),
    ),
    (
        "python function as an import path with a colon",
        change("steps.0", {"name": "fetch", "action": "python", "function": "os.path:join"}),
        ("wf.yaml: steps[0].function: ", "never an import path (got 'os.path:join')"),
    ),
    (
        "python function as a file path",
        change("steps.0", {"name": "fetch", "action": "python", "function": "reports/crunch.py"}),
        ("wf.yaml: steps[0].function: ", "never an import path"),
    ),
    (
        "python function not a dotted slug",
        change("steps.0", {"name": "fetch", "action": "python", "function": "Reports.Crunch"}),
        ("wf.yaml: steps[0].function: must be a registered function name",),
    ),
    (
        "python args key not a keyword argument",
        change(
            "steps.0",
            {"name": "fetch", "action": "python", "function": "a.b", "args": {"x-y": 1}},
        ),
        ("wf.yaml: steps[0].args: 'x-y' is not a valid keyword argument name",),
    ),
    (
        "http url not http(s)",
        change("steps.2.url", "ftp://example.com/x"),
        ("wf.yaml: steps[2].url: must be an http:// or https:// URL (got 'ftp://example.com/x')",),
    ),
    (
        "http url without a scheme",
        change("steps.2.url", "hooks.example.com/{{ input.path }}"),
        ("wf.yaml: steps[2].url: must be an http:// or https:// URL",),
    ),
    (
        "http url without a host",
        change("steps.2.url", "https:///path"),
        ("wf.yaml: steps[2].url: must name a host (got 'https:///path')",),
    ),
    (
        "http method unknown",
        change("steps.2.method", "FETCH"),
        ("wf.yaml: steps[2].method: must be one of: GET, POST, PUT, PATCH, DELETE, HEAD",),
    ),
    (
        "http expect_status out of range",
        change("steps.2.expect_status", [200, 700]),
        ("wf.yaml: steps[2].expect_status: HTTP status codes are 100..599 (got 700)",),
    ),
    (
        "http header name invalid",
        change("steps.2.headers", {"Bad Header": "x"}),
        ("wf.yaml: steps[2].headers: 'Bad Header' is not a valid HTTP header name",),
    ),
    (
        "agent max_tokens above range",
        change("steps.1.max_tokens", 64001),
        ("wf.yaml: steps[1].max_tokens: must be at most 64000 (got 64001)",),
    ),
    (
        "agent max_tokens zero",
        change("steps.1.max_tokens", 0),
        ("wf.yaml: steps[1].max_tokens: must be at least 1 (got 0)",),
    ),
    (
        "agent max_tokens not a number",
        change("steps.1.max_tokens", "lots"),
        ("wf.yaml: steps[1].max_tokens: must be an integer (got a string)",),
    ),
    (
        "bedrock without runtime arn",
        change("steps.1.provider", "bedrock-agentcore"),
        ("wf.yaml: steps[1].agent_runtime_arn: field required when provider is bedrock-agentcore",),
    ),
    (
        "runtime arn with the anthropic provider",
        change("steps.1.agent_runtime_arn", "arn:aws:bedrock-agentcore:us-east-1:1:runtime/x"),
        ("wf.yaml: steps[1].agent_runtime_arn: only allowed when provider is bedrock-agentcore",),
    ),
    (
        "agent output format unknown",
        change("steps.1.output", "xml"),
        ("wf.yaml: steps[1].output: must be one of: text, json (got 'xml')",),
    ),
    (
        "lambda function name invalid",
        change("steps.0.function", "my function"),
        ("wf.yaml: steps[0].function: must be a Lambda function name",),
    ),
    (
        "lambda invocation type unknown",
        change("steps.0.invocation_type", "Async"),
        ("wf.yaml: steps[0].invocation_type: must be one of: RequestResponse, Event, DryRun",),
    ),
    (
        "invalid YAML",
        text("name: wf\nsteps: [1\nfoo: 2\n"),
        ("wf.yaml: line 3, column 4: invalid YAML",),
    ),
    (
        "top level not a mapping",
        text("- name: wf\n"),
        ("wf.yaml: (top level): a workflow definition must be a mapping (got a list)",),
    ),
    ("empty document", text("# nothing\n"), ("wf.yaml: (top level): the document is empty",)),
    (
        "Jinja syntax error",
        change("steps.1.prompt", "Sum: {{ steps.fetch.output "),
        ("wf.yaml: steps[1].prompt: template syntax error: ",),
    ),
    (
        "Jinja syntax error in a block",
        change("steps.1.system", "{% if input.x %}yes"),
        ("wf.yaml: steps[1].system: template syntax error: ",),
    ),
    (
        "unknown template variable",
        change("steps.0.payload.date", "{{ schedule_for }}"),
        (
            "wf.yaml: steps[0].payload.date: template uses unknown variable 'schedule_for' "
            "(did you mean 'scheduled_for'? available: attempt, execution_id, input, now, "
            "scheduled_for, steps, workflow)",
        ),
    ),
    (
        "template reaches for a private attribute",
        change("steps.1.prompt", "{{ input.__class__ }}"),
        ("wf.yaml: steps[1].prompt: template accesses '__class__'",),
    ),
    (
        "catchup unknown",
        change("catchup", "sometimes"),
        ("wf.yaml: catchup: must be one of: none, latest, all (got 'sometimes')",),
    ),
    (
        "overlap unknown",
        change("overlap", "queue"),
        ("wf.yaml: overlap: must be one of: allow, skip, buffer_one (got 'queue')",),
    ),
    ("dst unknown", change("dst", "fold"), ("wf.yaml: dst: must be one of: vixie, skip",)),
    (
        "catchup_cap out of range",
        change("catchup_cap", 10001),
        ("wf.yaml: catchup_cap: must be at most 10000 (got 10001)",),
    ),
    (
        "input not a mapping",
        change("input", [1]),
        ("wf.yaml: input: must be a mapping (got a list)",),
    ),
    (
        "enabled not a boolean",
        change("enabled", "maybe"),
        ("wf.yaml: enabled: must be true or false",),
    ),
    (
        "webhook source not a slug",
        change("webhooks", ["GitHub Push"]),
        ("wf.yaml: webhooks[0]: must be a lower-case slug",),
    ),
    (
        "webhook source listed twice",
        change("webhooks", ["github", "github"]),
        ("wf.yaml: webhooks: 'github' is listed twice",),
    ),
    (
        "step not a mapping",
        change("steps.1", "summarize"),
        ("wf.yaml: steps[1]: must be a mapping",),
    ),
    (
        "steps not a list",
        change("steps", {"fetch": {}}),
        ("wf.yaml: steps: must be a list (got a mapping)",),
    ),
]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [pytest.param(mutate, expected, id=name) for name, mutate, expected in INVALID],
)
def test_an_invalid_definition_is_refused_with_a_precise_message(
    mutate: Mutation, expected: tuple[str, ...]
) -> None:
    problems = problems_of(mutate(base()))
    matching = [line for line in problems if all(fragment in line for fragment in expected)]
    assert matching, f"no problem line contains {expected!r}; got:\n" + "\n".join(problems)
    assert all(line.startswith("wf.yaml: ") for line in problems), problems


def test_the_invalid_table_covers_at_least_twenty_cases() -> None:
    assert len(INVALID) >= 20


def test_the_base_document_of_the_invalid_table_is_itself_valid() -> None:
    assert parse_definition(base()).name == "wf"


def test_every_problem_of_a_document_is_reported_at_once() -> None:
    doc = base()
    doc["name"] = "Bad Name"
    doc["timeout"] = "forever"
    doc["colour"] = "blue"
    doc["steps"][0]["action"] = "lamda"
    doc["steps"][1]["max_tokens"] = 0
    doc["steps"][2]["body"] = {"text": "{{ steps.nope.output }}"}
    doc["steps"].append({"name": "fetch", "action": "python", "function": "x:y"})
    problems = problems_of(doc)
    fields = [line.split(": ")[1] for line in problems]
    assert fields == [
        "name",
        "timeout",
        "colour",
        "steps[0].action",
        "steps[1].max_tokens",
        "steps[2].body.text",
        "steps[3].function",
        "steps[3].name",
    ]


def test_cross_field_problems_are_all_reported_when_the_fields_are_valid() -> None:
    doc = base()
    doc["schedule"] = "not a schedule"
    doc["steps"][1]["prompt"] = "{{ steps.notify.output }} {{ foo }}"
    doc["steps"][2]["name"] = "fetch"
    problems = problems_of(doc)
    assert [line.split(": ")[1] for line in problems] == [
        "schedule",
        "steps[1].prompt",
        "steps[1].prompt",
        "steps[2].name",
    ]


def test_the_source_defaults_to_string_and_can_be_api() -> None:
    with pytest.raises(InvalidDefinition) as info:
        parse_definition({"name": "x"})
    assert info.value.problems == ["<string>: steps: field required"]
    with pytest.raises(InvalidDefinition) as info:
        parse_definition_text("name: [", source="<api>")
    assert info.value.problems[0].startswith("<api>: line 1, column ")


def test_invalid_definition_is_an_invalid_input_error_whose_message_lists_the_problems() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_definition({"name": "x", "steps": []})
    assert str(info.value) == "<string>: steps: must have at least 1 step"


# --------------------------------------------------------------------------- valid documents
def test_the_example_from_the_design_document_parses() -> None:
    definition = parse_definition_text(DESIGN_EXAMPLE, source="design.md")
    assert definition.name == "daily-report"
    assert definition.schedule == "cron(0 9 * * ? *)"
    assert definition.timezone == "Europe/Berlin"
    assert definition.jitter == timedelta(seconds=30)
    assert definition.timeout == timedelta(minutes=15)
    assert definition.input == {"region": "eu"}
    assert definition.retry == RetrySpec(
        max_attempts=3,
        initial=timedelta(seconds=2),
        max=timedelta(minutes=5),
        multiplier=2,
        jitter="full",
    )
    fetch, summarize, notify = definition.steps
    assert isinstance(fetch, LambdaStep)
    assert (fetch.function, fetch.qualifier) == ("fetch-data", "prod")
    assert isinstance(summarize, AgentStep)
    assert isinstance(notify, HttpStep)
    assert notify.method == "POST"
    assert notify.body == {"text": "{{ steps.summarize.output.text }}"}


def test_defaults_are_filled_in() -> None:
    definition = parse_definition(
        {
            "name": "on-demand",
            "steps": [
                {"name": "a", "action": "agent", "prompt": "hi"},
                {"name": "b", "action": "http", "url": "https://example.com"},
                {"name": "c", "action": "lambda", "function": "f"},
                {"name": "d", "action": "python", "function": "tasks.d"},
            ],
        }
    )
    assert definition.schedule is None
    assert definition.description is None
    assert (definition.timezone, definition.dst) == ("UTC", "vixie")
    assert (definition.catchup, definition.catchup_cap) == ("latest", 100)
    assert definition.start_deadline is None
    assert definition.overlap == "skip"
    assert definition.jitter == timedelta(0)
    assert definition.timeout == timedelta(hours=1)
    assert definition.enabled is True
    assert definition.input == {}
    assert definition.retry is None
    assert definition.webhooks == []
    agent, http, lam, python = definition.steps
    assert isinstance(agent, AgentStep)
    assert (agent.provider, agent.model, agent.max_tokens, agent.output) == (
        "anthropic",
        None,
        1024,
        "text",
    )
    assert agent.timeout == timedelta(minutes=5)
    assert isinstance(http, HttpStep)
    assert (http.method, http.headers, http.body, http.expect_status) == ("GET", {}, None, None)
    assert isinstance(lam, LambdaStep)
    assert (lam.invocation_type, lam.qualifier, lam.payload) == ("RequestResponse", None, {})
    assert isinstance(python, PythonStep)
    assert python.args == {}


def test_every_field_can_be_given() -> None:
    definition = parse_definition_text(
        """
name: full_example-1
description: Everything at once.
schedule: "0 9 * * *"
timezone: America/New_York
dst: skip
catchup: all
catchup_cap: 500
start_deadline: 1h
overlap: buffer_one
jitter: 1h
timeout: 12h
enabled: false
input: {region: eu, day: 2026-03-01}
retry: {max_attempts: 100, initial: 0s, max: 1d, multiplier: 10, jitter: none,
        retry_on: [transient, timeout, error]}
webhooks: [github, stripe-events]
steps:
  - name: fetch
    action: lambda
    function: arn:aws:lambda:eu-central-1:123456789012:function:fetch-data
    qualifier: 7
    invocation_type: DryRun
    payload: ["{{ input.region }}", 1, null]
    timeout: 1h
    retry: {max_attempts: 1}
  - name: think
    action: agent
    provider: bedrock-agentcore
    model: claude-sonnet-4-5
    system: "You are {{ workflow.name }}."
    prompt: "{% for row in steps.fetch.output %}{{ row }} {{ loop.index }}{% endfor %}"
    max_tokens: 64000
    output: json
    agent_runtime_arn: arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/agent-abc
  - name: post
    action: http
    url: "https://{{ input.region }}.example.com/{{ steps['think'].output.path }}"
    method: delete
    headers: {X-Attempt: "{{ attempt }}", Authorization: "Bearer abc"}
    body: "{{ steps.think.output }}"
    expect_status: [200, 204]
    timeout: 500ms
  - name: store
    action: python
    function: reports.crunch
    args: {x: 1, when: "{{ now }}", exec: "{{ execution_id }}"}
""",
        source="full.yaml",
    )
    assert definition.enabled is False
    assert definition.input == {"region": "eu", "day": "2026-03-01"}
    assert definition.start_deadline == timedelta(hours=1)
    fetch, think, post, store = definition.steps
    assert isinstance(fetch, LambdaStep)
    assert fetch.qualifier == "7"
    assert isinstance(think, AgentStep)
    assert think.output == "json"
    assert isinstance(post, HttpStep)
    assert post.method == "DELETE"
    assert post.timeout == timedelta(milliseconds=500)
    assert isinstance(store, PythonStep)
    assert store.args == {"x": 1, "when": "{{ now }}", "exec": "{{ execution_id }}"}


@pytest.mark.parametrize(
    "schedule",
    ["cron(0 9 * * ? *)", "0 9 * * *", "rate(15 minutes)", "at(2027-01-01T00:00:00)"],
)
def test_every_schedule_form_is_accepted(schedule: str) -> None:
    doc = base()
    doc["schedule"] = schedule
    assert parse_definition(doc).schedule == schedule


@pytest.mark.parametrize(
    "url",
    [
        "{{ input.url }}",
        "https://{{ input.host }}/x",
        "HTTP://example.com",
        "http://127.0.0.1:8765/enrich?x={{ attempt }}",
    ],
)
def test_templated_and_plain_http_urls_are_accepted(url: str) -> None:
    doc = base()
    doc["steps"][2]["url"] = url
    step = parse_definition(doc).steps[2]
    assert isinstance(step, HttpStep)
    assert step.url == url


def test_json_text_is_accepted_because_json_is_yaml() -> None:
    definition = parse_definition_text(json.dumps(base()), source="wf.json")
    assert definition.step_names == ["fetch", "summarize", "notify"]


def test_to_document_is_json_ready_and_parses_back_to_the_same_definition() -> None:
    definition = parse_definition_text(DESIGN_EXAMPLE)
    document = definition.to_document()
    assert json.loads(json.dumps(document)) == document
    assert document["timeout"] == "15m"
    assert document["jitter"] == "30s"
    assert document["retry"]["initial"] == "2s"
    assert document["steps"][0]["timeout"] == "5m"
    assert "description" not in document  # None is left out
    assert parse_definition(document) == definition


def test_effective_retry_prefers_the_step_then_the_workflow_then_no_retry() -> None:
    doc = base()
    doc["retry"] = {"max_attempts": 4}
    doc["steps"][0]["retry"] = {"max_attempts": 2, "initial": "3s"}
    definition = parse_definition(doc)
    assert definition.effective_retry(definition.steps[0]) == RetrySpec(
        max_attempts=2, initial=timedelta(seconds=3)
    )
    assert definition.effective_retry("summarize").max_attempts == 4
    del doc["retry"]
    assert parse_definition(doc).effective_retry("notify") == DEFAULT_RETRY
    assert DEFAULT_RETRY.max_attempts == 1
    with pytest.raises(KeyError):
        definition.effective_retry("nope")


def test_retry_delay_grows_by_the_multiplier_up_to_max() -> None:
    policy = RetrySpec(
        initial=timedelta(seconds=2), max=timedelta(seconds=10), multiplier=2, jitter="none"
    )
    assert [policy.delay(n).total_seconds() for n in range(1, 6)] == [2, 4, 8, 10, 10]


def test_a_definition_is_frozen() -> None:
    definition = parse_definition(base())
    with pytest.raises(ValidationError):
        definition.name = "other"  # type: ignore[misc]


def test_an_already_parsed_definition_is_returned_as_is() -> None:
    definition = parse_definition(base())
    assert parse_definition(definition) is definition


# --------------------------------------------------------------------------- files
def test_the_example_directory_loads_every_workflow() -> None:
    loaded = load_definition_files(EXAMPLES)
    assert [(path.name, definition.name) for path, definition in loaded] == [
        ("daily-report.yaml", "daily-report"),
        ("heartbeat.yaml", "heartbeat"),
        ("pipeline.yaml", "pipeline"),
    ]
    by_name = {definition.name: definition for _, definition in loaded}
    heartbeat = by_name["heartbeat"]
    assert len(heartbeat.steps) == 1
    assert isinstance(heartbeat.steps[0], PythonStep)
    assert heartbeat.steps[0].function == "conveyor.heartbeat"
    assert by_name["daily-report"].schedule == "cron(0 9 * * ? *)"
    assert by_name["daily-report"].timezone == "Europe/Berlin"
    assert [step.action for step in by_name["daily-report"].steps] == ["python", "agent", "http"]
    pipeline = by_name["pipeline"]
    assert pipeline.schedule == "rate(15 minutes)"
    assert [step.action for step in pipeline.steps] == ["python", "http", "python"]


def _write(directory: Path, name: str, content: str) -> Path:
    path = directory / name
    path.write_text(content, encoding="utf-8")
    return path


GOOD = "name: {name}\nsteps:\n  - {{name: a, action: python, function: tasks.a}}\n"


def test_a_single_file_can_be_loaded(tmp_path: Path) -> None:
    path = _write(tmp_path, "one.yaml", GOOD.format(name="one"))
    [(loaded_path, definition)] = load_definition_files(path)
    assert loaded_path == path
    assert definition.name == "one"


def test_one_bad_file_among_good_ones_fails_the_whole_load_naming_only_that_file(
    tmp_path: Path,
) -> None:
    _write(tmp_path, "a.yaml", GOOD.format(name="a"))
    bad = _write(tmp_path, "b.yml", "name: b\nsteps:\n  - {name: x, action: lamda}\n")
    _write(
        tmp_path,
        "c.json",
        json.dumps({"name": "c", "steps": [{"name": "x", "action": "python", "function": "t.x"}]}),
    )
    with pytest.raises(InvalidDefinition) as info:
        load_definition_files(tmp_path)
    assert info.value.problems == [
        f"{bad}: steps[0].action: unknown action 'lamda' (expected one of: agent, http, lambda, "
        "python)"
    ]


def test_problems_of_every_bad_file_are_listed_together(tmp_path: Path) -> None:
    first = _write(tmp_path, "1.yaml", "name: [\n")
    second = _write(tmp_path, "2.yaml", "- just a list\n")
    _write(tmp_path, "3.yaml", GOOD.format(name="ok"))
    with pytest.raises(InvalidDefinition) as info:
        load_definition_files(tmp_path)
    assert len(info.value.problems) == 2
    assert info.value.problems[0].startswith(f"{first}: line 2, column 1: invalid YAML")
    assert info.value.problems[1] == (
        f"{second}: (top level): a workflow definition must be a mapping (got a list)"
    )


def test_the_same_workflow_name_in_two_files_is_an_error(tmp_path: Path) -> None:
    first = _write(tmp_path, "a.yaml", GOOD.format(name="same"))
    second = _write(tmp_path, "b.yaml", GOOD.format(name="same"))
    with pytest.raises(InvalidDefinition) as info:
        load_definition_files(tmp_path)
    assert info.value.problems == [f"{second}: name: workflow 'same' is already defined in {first}"]


def test_an_empty_directory_is_an_error(tmp_path: Path) -> None:
    _write(tmp_path, "README.md", "not a workflow")
    with pytest.raises(InvalidDefinition, match="no workflow definition files"):
        load_definition_files(tmp_path)


def test_a_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidDefinition, match="no such file or directory"):
        load_definition_files(tmp_path / "nope")


def test_directories_are_read_sorted_without_recursion_and_other_files_are_ignored(
    tmp_path: Path,
) -> None:
    _write(tmp_path, "b.yaml", GOOD.format(name="b"))
    _write(tmp_path, "a.YML", GOOD.format(name="a"))
    _write(tmp_path, "notes.txt", "name: [")
    nested = tmp_path / "nested.yaml"
    nested.mkdir()
    _write(nested, "c.yaml", "broken: [")
    loaded = load_definition_files(tmp_path)
    assert [definition.name for _, definition in loaded] == ["a", "b"]


def test_a_file_that_is_not_utf8_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(InvalidDefinition) as info:
        load_definition_files(tmp_path)
    assert info.value.problems[0].startswith(f"{path}: (top level): cannot read the file")
