"""Each action against a local fake of its service, reached through the real SDK (boto3 with an
endpoint URL, the Anthropic SDK with a base URL, httpx)."""

from __future__ import annotations

import json
import random
import time
import uuid
from typing import Any

import pytest

from shared.definition import parse_definition
from shared.errors import PermanentActionError, TransientActionError
from shared.models import StepRun
from tests.harness.fakes import (
    FakeAgentCore,
    FakeAnthropic,
    FakeHttp,
    FakeLambda,
    FunctionError,
    Reply,
    agentcore_throttle,
    anthropic_overloaded,
    anthropic_rate_limited,
    lambda_service_error,
    lambda_throttle,
    start_run,
)
from worker.actions.agent import AgentAction
from worker.actions.aws_lambda import LambdaAction
from worker.actions.base import ActionContext
from worker.actions.http import HttpAction
from worker.actions.python import PythonAction
from worker.clients import Clients
from worker.engine import ExecutionEngine, Outcome, TransientBudget
from worker.registry import register

ARN = "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/summarizer-abc"


@pytest.fixture
def fake_lambda():
    with FakeLambda() as server:
        yield server


@pytest.fixture
def fake_anthropic():
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def fake_agentcore(monkeypatch):
    with FakeAgentCore() as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_AGENTCORE", server.url)
        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }.items():
            monkeypatch.setenv(key, value)
        yield server


@pytest.fixture
def fake_http():
    with FakeHttp() as server:
        yield server


@pytest.fixture
def settings(make_settings, fake_lambda, fake_anthropic, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return make_settings(
        lambda_endpoint_url=fake_lambda.url,
        anthropic_base_url=fake_anthropic.url,
        anthropic_api_key="test-key",
        default_model="claude-test",
    )


@pytest.fixture
def clients(settings):
    clients = Clients(settings)
    yield clients
    clients.close()


@pytest.fixture
def ctx(settings, clients) -> ActionContext:
    return ActionContext(
        execution_id=uuid.UUID("11111111-2222-3333-4444-555555555555"),
        workflow="wf",
        step="s",
        step_index=0,
        attempt=1,
        settings=settings,
        clients=clients,
        deadline=time.monotonic() + 10,
    )


def step(**fields: Any) -> Any:
    return parse_definition({"name": "wf", "steps": [{"name": "s", **fields}]}).steps[0]


KEY = "11111111-2222-3333-4444-555555555555:s"


# ------------------------------------------------------------------------------ lambda


def test_lambda_request_response_returns_the_functions_result_and_passes_the_idempotency_key(
    fake_lambda, ctx
) -> None:
    seen: list[tuple[Any, dict[str, Any]]] = []

    def handler(event: Any, context: dict[str, Any]) -> Any:
        seen.append((event, context))
        return {"rows": 3, "region": event["region"]}

    fake_lambda.register("fetch", handler)
    lambda_step = step(action="lambda", function="fetch", qualifier="prod")

    result = LambdaAction().run(lambda_step, {"payload": {"region": "eu"}}, ctx)

    assert result.output == {"rows": 3, "region": "eu"}
    event, context = seen[0]
    assert event["_conveyor"]["idempotency_key"] == KEY
    assert context["client_context"]["custom"]["idempotency_key"] == KEY
    assert context["qualifier"] == "prod"
    assert fake_lambda.effect_count(KEY) == 1


@pytest.mark.parametrize(("invocation_type", "status"), [("Event", 202), ("DryRun", 204)])
def test_lambda_event_and_dry_run_invocations_report_the_status_code(
    fake_lambda, ctx, invocation_type: str, status: int
) -> None:
    fake_lambda.register("fire", lambda event, context: None)
    lambda_step = step(action="lambda", function="fire", invocation_type=invocation_type)

    result = LambdaAction().run(lambda_step, {"payload": {}}, ctx)

    assert result.output["status_code"] == status


def test_a_lambda_function_error_is_permanent_and_carries_the_error_payload(
    fake_lambda, ctx
) -> None:
    def handler(event: Any, context: dict[str, Any]) -> Any:
        raise FunctionError("bad input: region")

    fake_lambda.register("fetch", handler)

    with pytest.raises(PermanentActionError, match="bad input: region") as caught:
        LambdaAction().run(step(action="lambda", function="fetch"), {"payload": {}}, ctx)

    assert caught.value.details["function_error"] == "Unhandled"
    assert caught.value.details["payload"]["errorMessage"] == "bad input: region"


@pytest.mark.parametrize(
    ("reply", "retry_after"), [(lambda_throttle(2), 2.0), (lambda_service_error(), None)]
)
def test_lambda_throttling_and_service_errors_are_transient(
    fake_lambda, ctx, reply: Reply, retry_after: float | None
) -> None:
    fake_lambda.register("fetch", lambda event, context: {})
    fake_lambda.fail_next("fetch", 1, reply)

    with pytest.raises(TransientActionError) as caught:
        LambdaAction().run(step(action="lambda", function="fetch"), {"payload": {}}, ctx)
    assert caught.value.retry_after == retry_after


def test_a_missing_lambda_function_is_permanent(fake_lambda, ctx) -> None:
    with pytest.raises(PermanentActionError, match="ResourceNotFoundException"):
        LambdaAction().run(step(action="lambda", function="nope"), {"payload": {}}, ctx)


@pytest.mark.parametrize(
    ("invocation_type", "size"), [("RequestResponse", 6 * 1024 * 1024), ("Event", 256 * 1024)]
)
def test_an_oversized_lambda_payload_is_refused_before_sending(
    fake_lambda, ctx, invocation_type: str, size: int
) -> None:
    fake_lambda.register("fetch", lambda event, context: {})
    lambda_step = step(action="lambda", function="fetch", invocation_type=invocation_type)

    with pytest.raises(PermanentActionError, match=f"at most {size} bytes"):
        LambdaAction().run(lambda_step, {"payload": {"blob": "x" * size}}, ctx)
    assert fake_lambda.calls == []


# ------------------------------------------------------------------------------ agent


def test_an_anthropic_agent_step_returns_text_and_parsed_json_and_records_usage(
    fake_anthropic, ctx
) -> None:
    fake_anthropic.responder = lambda body: '```json\n{"summary": "fine"}\n```'
    agent_step = step(action="agent", prompt="p", output="json", system="be brief")

    result = AgentAction().run(agent_step, {"prompt": "Summarize: 3 rows", "system": "sys"}, ctx)

    assert result.output["json"] == {"summary": "fine"}
    assert result.output["text"].startswith("```json")
    assert result.output["model"] == "claude-test"
    assert result.usage == {
        "provider": "anthropic",
        "model": "claude-test",
        "input_tokens": 3,
        "output_tokens": 4,
    }
    request = fake_anthropic.calls[0]
    assert request.headers["idempotency-key"] == KEY
    body = request.json()
    assert body["system"] == "sys"
    assert body["messages"] == [{"role": "user", "content": "Summarize: 3 rows"}]


@pytest.mark.parametrize("reply", [anthropic_overloaded(), anthropic_rate_limited(1)])
def test_anthropic_overload_and_rate_limits_are_transient(fake_anthropic, ctx, reply) -> None:
    fake_anthropic.fail_next("messages", 1, reply)
    with pytest.raises(TransientActionError):
        AgentAction().run(step(action="agent", prompt="p"), {"prompt": "hi"}, ctx)


def test_a_reply_that_is_not_the_json_asked_for_is_permanent(fake_anthropic, ctx) -> None:
    fake_anthropic.responder = lambda body: "not json"
    with pytest.raises(PermanentActionError, match="not valid JSON"):
        AgentAction().run(step(action="agent", prompt="p", output="json"), {"prompt": "p"}, ctx)


def test_an_anthropic_client_error_is_permanent(fake_anthropic, ctx) -> None:
    fake_anthropic.fail_next(
        "messages",
        1,
        Reply(400, {"type": "error", "error": {"type": "invalid_request_error", "message": "x"}}),
    )
    with pytest.raises(PermanentActionError, match="HTTP 400"):
        AgentAction().run(step(action="agent", prompt="p"), {"prompt": "p"}, ctx)


def test_a_bedrock_agentcore_agent_step_goes_through_the_same_interface(
    fake_agentcore, ctx
) -> None:
    agent_step = step(
        action="agent", provider="bedrock-agentcore", agent_runtime_arn=ARN, prompt="p"
    )

    result = AgentAction().run(agent_step, {"prompt": "hello"}, ctx)

    assert result.output["text"] == "agent says: hello"
    assert result.usage is not None
    assert result.usage["output_tokens"] == 4
    request = fake_agentcore.calls[0]
    assert request.path == f"/runtimes/{ARN}/invocations"
    assert request.json()["_conveyor"]["idempotency_key"] == KEY
    session_id = request.headers["x-amzn-bedrock-agentcore-runtime-session-id"]
    assert session_id.startswith("conveyor-11111111")

    fake_agentcore.fail_next(ARN, 1, agentcore_throttle())
    with pytest.raises(TransientActionError, match="ThrottlingException"):
        AgentAction().run(agent_step, {"prompt": "hello"}, ctx)


# ------------------------------------------------------------------------------ http


def test_an_http_step_sends_json_with_the_idempotency_key_and_returns_status_and_body(
    fake_http, ctx
) -> None:
    http_step = step(action="http", url=f"{fake_http.url}/hook", method="POST")

    result = HttpAction().run(
        http_step,
        {"url": f"{fake_http.url}/hook", "headers": {"X-Extra": "1"}, "body": {"text": "hi"}},
        ctx,
    )

    assert result.output["status"] == 200
    assert result.output["body"] == {"ok": True, "path": "/hook", "received": {"text": "hi"}}
    request = fake_http.calls[0]
    assert request.headers["idempotency-key"] == KEY
    assert request.headers["x-extra"] == "1"


@pytest.mark.parametrize(
    ("status", "headers", "error", "retry_after"),
    [
        (429, {"Retry-After": "3"}, TransientActionError, 3.0),
        (503, {}, TransientActionError, None),
        (404, {}, PermanentActionError, None),
        (400, {}, PermanentActionError, None),
    ],
)
def test_http_429_and_5xx_are_transient_and_other_4xx_permanent(
    fake_http, ctx, status, headers, error, retry_after
) -> None:
    fake_http.fail_next("/hook", 1, Reply(status, {"error": "x"}, headers))
    http_step = step(action="http", url=f"{fake_http.url}/hook")

    with pytest.raises(error, match=f"HTTP {status}") as caught:
        HttpAction().run(http_step, {"url": f"{fake_http.url}/hook"}, ctx)
    if retry_after is not None:
        assert caught.value.retry_after == retry_after


def test_expect_status_decides_what_counts_as_success(fake_http, ctx) -> None:
    fake_http.route("/gone", lambda request: Reply(410, "gone"))
    http_step = step(action="http", url=f"{fake_http.url}/gone", expect_status=[410])

    result = HttpAction().run(http_step, {"url": f"{fake_http.url}/gone"}, ctx)

    assert result.output["status"] == 410
    assert result.output["body"] == "gone"


def test_an_http_request_is_bounded_by_the_remaining_budget(fake_http, ctx) -> None:
    fake_http.delay("/slow", 3)
    ctx.deadline = time.monotonic() + 0.5
    http_step = step(action="http", url=f"{fake_http.url}/slow")
    started = time.monotonic()

    with pytest.raises(TransientActionError, match="timed out"):
        HttpAction().run(http_step, {"url": f"{fake_http.url}/slow"}, ctx)
    assert time.monotonic() - started < 2


# ------------------------------------------------------------------------------ python


def test_a_python_step_may_only_call_registered_functions(ctx) -> None:
    with pytest.raises(PermanentActionError, match="not registered"):
        PythonAction().run(step(action="python", function="os.system"), {"args": {}}, ctx)


def test_a_python_function_returning_something_that_is_not_json_fails_permanently(ctx) -> None:
    register("tests.not_json", replace=True)(lambda: {1, 2})
    with pytest.raises(PermanentActionError, match="not JSON"):
        PythonAction().run(step(action="python", function="tests.not_json"), {"args": {}}, ctx)


def test_register_refuses_import_paths_and_double_registration() -> None:
    with pytest.raises(ValueError, match="lower-case dotted"):
        register("os:system")
    register("tests.once", replace=True)(lambda: 1)
    with pytest.raises(ValueError, match="already registered"):
        register("tests.once")(lambda: 2)


# ------------------------------------------------------------------------------ engine + usage


def test_token_usage_is_recorded_on_the_agent_step_run(
    pg_sessions, settings, fake_anthropic
) -> None:
    execution_id = start_run(
        pg_sessions,
        {"name": "ask", "steps": [{"name": "ask", "action": "agent", "prompt": "a b c"}]},
    )
    engine = ExecutionEngine(
        pg_sessions,
        settings,
        worker_id="w",
        rng=random.Random(1),
        transient=TransientBudget(initial=0.01),
    )
    fake_anthropic.fail_next("messages", 1, anthropic_overloaded())  # retried in-process

    assert engine.handle(execution_id) is Outcome.SUCCEEDED

    with pg_sessions() as session:
        run = session.query(StepRun).filter_by(execution_id=execution_id).one()
    assert run.usage == {
        "provider": "anthropic",
        "model": "claude-test",
        "input_tokens": 3,
        "output_tokens": 4,
    }
    assert json.dumps(run.output)
    assert run.output["text"] == "echo: a b c"
    engine.clients.close()
