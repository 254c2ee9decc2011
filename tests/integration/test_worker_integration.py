"""The worker end to end: a real Celery worker process on moto's SQS and a real PostgreSQL, with the
side effects served by local fakes (Lambda, Anthropic Messages, HTTP)."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from shared.executions import cancel_execution, dispatch
from shared.models import Execution, ExecutionEvent, StepRun
from shared.queue import ExecutionPublisher
from shared.status import TERMINAL_STATUSES, ExecutionStatus, StepStatus
from tests.harness.fakes import FakeAnthropic, FakeHttp, FakeLambda, FunctionError, start_run
from tests.harness.network import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def fakes():
    with FakeLambda() as lam, FakeAnthropic() as llm, FakeHttp() as http:
        yield lam, llm, http


@pytest.fixture
def worker(pg_url, sqs, worker_env, start_worker, fakes):
    lam, llm, _http = fakes
    env = worker_env(
        pg_url,
        sqs,
        CONVEYOR_LAMBDA_ENDPOINT_URL=lam.url,
        CONVEYOR_ANTHROPIC_BASE_URL=llm.url,
        CONVEYOR_ANTHROPIC_API_KEY="test-key",
        CONVEYOR_DEFAULT_MODEL="claude-test",
        CONVEYOR_LEASE_SECONDS="5",
        CONVEYOR_HEARTBEAT_SECONDS="1",
    )
    return start_worker(env, concurrency=2)


def run(pg_sessions, sqs, document: dict[str, Any], **kwargs: Any):
    execution_id = start_run(pg_sessions, document, **kwargs)
    publisher = ExecutionPublisher(sqs.client, sqs.queue_url, sqs.queue_name)
    report = dispatch(pg_sessions, publisher, [execution_id], datetime.now(UTC))
    assert report.sent == [execution_id]
    return execution_id


def finished(pg_sessions, execution_id, timeout: float = 60) -> Execution:
    def done() -> bool:
        with pg_sessions() as session:
            execution = session.get(Execution, execution_id)
            return execution is not None and execution.status in TERMINAL_STATUSES

    wait_until(done, timeout=timeout, interval=0.1, what=f"execution {execution_id} finished")
    with pg_sessions() as session:
        execution = session.get(Execution, execution_id)
        assert execution is not None
        _ = execution.steps, execution.events
        session.expunge_all()
        return execution


def test_a_lambda_agent_http_workflow_succeeds_with_outputs_flowing_between_steps(
    pg_sessions, sqs, fakes, worker
) -> None:
    lam, llm, http = fakes
    lam.register("fetch-data", lambda event, context: {"rows": 3, "region": event["region"]})
    llm.responder = lambda body: f"summary of {body['messages'][0]['content']}"
    document = {
        "name": "daily-report",
        "input": {"region": "eu"},
        "steps": [
            {
                "name": "fetch",
                "action": "lambda",
                "function": "fetch-data",
                "qualifier": "prod",
                "payload": {"region": "{{ input.region }}", "run": "{{ execution_id }}"},
            },
            {
                "name": "summarize",
                "action": "agent",
                "prompt": "rows={{ steps.fetch.output.rows }} in {{ steps.fetch.output.region }}",
            },
            {
                "name": "notify",
                "action": "http",
                "url": f"{http.url}/report",
                "method": "POST",
                "body": {"text": "{{ steps.summarize.output.text }}"},
            },
        ],
    }

    execution_id = run(pg_sessions, sqs, document)
    execution = finished(pg_sessions, execution_id)

    assert execution.status is ExecutionStatus.SUCCEEDED, execution.error
    assert [(s.step_name, s.status) for s in execution.steps] == [
        ("fetch", StepStatus.SUCCEEDED),
        ("summarize", StepStatus.SUCCEEDED),
        ("notify", StepStatus.SUCCEEDED),
    ]
    assert execution.output is not None
    assert execution.output["steps"]["fetch"] == {"rows": 3, "region": "eu"}
    assert execution.output["steps"]["summarize"]["text"] == "summary of rows=3 in eu"
    assert execution.steps[1].usage is not None
    assert execution.steps[1].usage["provider"] == "anthropic"
    assert http.calls[0].json() == {"text": "summary of rows=3 in eu"}
    assert http.calls[0].headers["idempotency-key"] == f"{execution_id}:notify"
    assert [e.kind for e in execution.events] == [
        "created",
        "queued",
        "started",
        "step_started",
        "step_succeeded",
        "step_started",
        "step_succeeded",
        "step_started",
        "step_succeeded",
        "succeeded",
    ]


def test_a_failing_step_retries_with_the_configured_backoff_then_fails_the_execution(
    pg_sessions, sqs, fakes, worker
) -> None:
    lam, _llm, _http = fakes

    def broken(event: Any, context: dict[str, Any]) -> Any:
        raise FunctionError("upstream said no")

    lam.register("broken", broken)
    document = {
        "name": "flaky",
        "retry": {
            "max_attempts": 3,
            "initial": "1s",
            "multiplier": 2,
            "jitter": "none",
            "retry_on": ["error"],
        },
        "steps": [{"name": "call", "action": "lambda", "function": "broken"}],
    }

    execution_id = run(pg_sessions, sqs, document)
    execution = finished(pg_sessions, execution_id)

    assert execution.status is ExecutionStatus.FAILED
    assert execution.error is not None
    assert execution.error["step"] == "call"
    assert "upstream said no" in execution.error["message"]
    assert execution.error["details"]["payload"]["errorMessage"] == "upstream said no"
    runs = execution.steps
    assert [(r.attempt, r.status) for r in runs] == [(i, StepStatus.FAILED) for i in (1, 2, 3)]
    gaps = [(b.started_at - a.finished_at).total_seconds() for a, b in itertools.pairwise(runs)]
    assert gaps[0] >= 1.0  # initial
    assert gaps[1] >= 2.0  # initial * multiplier
    assert gaps[1] < 8.0
    kinds = [e.kind for e in execution.events]
    assert kinds.count("retry_scheduled") == 2
    assert kinds[-2:] == ["step_failed", "failed"]
    assert len(lam.calls) == 3


def test_a_step_timeout_is_enforced_on_python_and_http_steps(
    pg_sessions, sqs, fakes, worker
) -> None:
    _lam, _llm, http = fakes
    http.delay("/slow", 20)
    sleeper = {
        "name": "sleeper",
        "steps": [
            {
                "name": "nap",
                "action": "python",
                "function": "conveyor.sleep",
                "args": {"seconds": 60},
                "timeout": "1s",
            }
        ],
    }
    slow_http = {
        "name": "slow-http",
        "steps": [{"name": "call", "action": "http", "url": f"{http.url}/slow", "timeout": "1s"}],
    }
    started = time.monotonic()

    ids = [run(pg_sessions, sqs, sleeper), run(pg_sessions, sqs, slow_http)]
    executions = [finished(pg_sessions, i, timeout=30) for i in ids]

    assert time.monotonic() - started < 15
    for execution in executions:
        assert execution.status is ExecutionStatus.TIMED_OUT
        assert [s.status for s in execution.steps] == [StepStatus.TIMED_OUT]
        assert execution.error is not None
        assert execution.error["kind"] == "timeout"
        assert [e.kind for e in execution.events][-1] == "timed_out"
        assert execution.finished_at is not None
        assert execution.started_at is not None
        assert (execution.finished_at - execution.started_at).total_seconds() < 5


def test_cancellation_stops_a_running_execution_and_no_further_step_runs(
    pg_sessions, sqs, fakes, worker
) -> None:
    lam, _llm, _http = fakes
    lam.register("after", lambda event, context: {"ran": True})
    document = {
        "name": "long",
        "steps": [
            {
                "name": "wait",
                "action": "python",
                "function": "conveyor.sleep",
                "args": {"seconds": 60},
            },
            {"name": "after", "action": "lambda", "function": "after"},
        ],
    }
    execution_id = run(pg_sessions, sqs, document)

    def step_running() -> bool:
        with pg_sessions() as session:
            return (
                session.scalar(
                    select(StepRun.id).where(
                        StepRun.execution_id == execution_id, StepRun.status == StepStatus.RUNNING
                    )
                )
                is not None
            )

    wait_until(step_running, timeout=30, what="the step to start")
    with pg_sessions() as session, session.begin():
        cancel_execution(session, execution_id, datetime.now(UTC))
    requested = time.monotonic()
    execution = finished(pg_sessions, execution_id, timeout=20)

    assert time.monotonic() - requested < 5
    assert execution.status is ExecutionStatus.CANCELLED
    assert [(s.step_name, s.status) for s in execution.steps] == [("wait", StepStatus.CANCELLED)]
    assert lam.calls == []
    with pg_sessions() as session:
        kinds = list(
            session.scalars(
                select(ExecutionEvent.kind)
                .where(ExecutionEvent.execution_id == execution_id)
                .order_by(ExecutionEvent.id)
            )
        )
    assert kinds[-3:] == ["cancel_requested", "step_failed", "cancelled"]
