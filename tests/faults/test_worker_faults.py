"""Fault injection against real worker processes: SIGKILL in the middle of steps, redelivered and
duplicated doorbells. Side effects are counted by the fake servers, per idempotency key.

Timing: lease 5 s (heartbeat 1 s) and an SQS visibility timeout of 10 s, so a message whose worker
was killed a few seconds after receiving it comes back after the dead worker's lease expired and
the next worker reclaims the execution (a claim of a ``running`` execution with an expired lease).
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from shared.executions import dispatch
from shared.models import Execution, ExecutionEvent, StepRun
from shared.queue import ExecutionPublisher
from shared.status import TERMINAL_STATUSES, ExecutionStatus, StepStatus
from tests.harness.fakes import FakeHttp, FakeLambda, start_run
from tests.harness.network import wait_until

pytestmark = pytest.mark.slow

VISIBILITY_SECONDS = 10
SLOW_STEP_SECONDS = 1.5


@pytest.fixture
def fault_sqs(sqs_endpoint):
    """Fresh queues with a short visibility timeout and a redrive that tolerates many kills."""
    queues = sqs_endpoint.fresh_queues()
    dlq_arn = queues.client.get_queue_attributes(
        QueueUrl=queues.dlq_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    queues.client.set_queue_attributes(
        QueueUrl=queues.queue_url,
        Attributes={
            "VisibilityTimeout": str(VISIBILITY_SECONDS),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "1000"}
            ),
        },
    )
    yield queues
    queues.delete()


@pytest.fixture
def fakes():
    with FakeLambda() as lam, FakeHttp() as http:
        lam.register("fast", lambda event, context: {"n": event["n"]})
        lam.register("slow", lambda event, context: {"n": event["n"], "slow": True})
        lam.delay("slow", SLOW_STEP_SECONDS)
        yield lam, http


@pytest.fixture
def env(pg_url, fault_sqs, worker_env, fakes):
    lam, _http = fakes
    return worker_env(
        pg_url,
        fault_sqs,
        CONVEYOR_LAMBDA_ENDPOINT_URL=lam.url,
        CONVEYOR_LEASE_SECONDS="5",
        CONVEYOR_HEARTBEAT_SECONDS="1",
        CONVEYOR_RECOVERY_ATTEMPTS="50",
    )


def pipeline(http_url: str) -> dict[str, Any]:
    return {
        "name": "pipeline",
        "steps": [
            {
                "name": "first",
                "action": "lambda",
                "function": "fast",
                "payload": {"n": "{{ input.n }}"},
            },
            {
                "name": "middle",
                "action": "lambda",
                "function": "slow",
                "payload": {"n": "{{ steps.first.output.n }}"},
            },
            {
                "name": "last",
                "action": "http",
                "url": f"{http_url}/done",
                "method": "POST",
                "body": {"n": "{{ steps.middle.output.n }}"},
            },
        ],
    }


def send(pg_sessions, queues, ids) -> None:
    publisher = ExecutionPublisher(queues.client, queues.queue_url, queues.queue_name)
    report = dispatch(pg_sessions, publisher, ids, datetime.now(UTC))
    assert sorted(report.sent) == sorted(ids)


def statuses(pg_sessions, ids) -> Counter[ExecutionStatus]:
    with pg_sessions() as session:
        return Counter(session.scalars(select(Execution.status).where(Execution.id.in_(ids))))


def all_finished(pg_sessions, ids) -> bool:
    counts = statuses(pg_sessions, ids)
    return sum(n for status, n in counts.items() if status in TERMINAL_STATUSES) == len(ids)


def runs_by_step(pg_sessions, execution_id) -> dict[str, list[StepRun]]:
    with pg_sessions() as session:
        runs = session.scalars(
            select(StepRun).where(StepRun.execution_id == execution_id).order_by(StepRun.id)
        )
        grouped: dict[str, list[StepRun]] = {}
        for run in runs:
            grouped.setdefault(run.step_name, []).append(run)
        return grouped


def assert_no_finished_step_ran_twice(pg_sessions, fakes, execution_id) -> int:
    """Every step succeeded exactly once and was never started again after that; side effects
    only happened for recorded step runs. Returns how many runs were lost to a killed worker."""
    lam, http = fakes
    lost = 0
    for step, runs in runs_by_step(pg_sessions, execution_id).items():
        succeeded = [r for r in runs if r.status is StepStatus.SUCCEEDED]
        assert len(succeeded) == 1, (step, [(r.attempt, r.status) for r in runs])
        assert runs[-1] is succeeded[0], f"{step} started again after it succeeded"
        lost += sum(1 for r in runs if r.error and r.error.get("kind") == "worker_lost")
        key = f"{execution_id}:{step}"
        effects = (http if step == "last" else lam).effect_count(key)
        assert 1 <= effects <= len(runs), (step, effects, len(runs))
    return lost


def wait_for_step_in_flight(lam: FakeLambda, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lam.in_flight > 0:
            return True
        time.sleep(0.02)
    return False


@pytest.mark.timeout(600)
def test_a_worker_killed_mid_step_twenty_times_loses_nothing_and_repeats_no_finished_step(
    pg_sessions, fault_sqs, fakes, env, start_worker
) -> None:
    lam, http = fakes
    ids = [start_run(pg_sessions, pipeline(http.url), run_input={"n": i}) for i in range(24)]
    send(pg_sessions, fault_sqs, ids)
    rng = random.Random(20)

    kills = 0
    while kills < 20:
        worker = start_worker(env, concurrency=2)
        # mid-step: a Lambda call is in progress on the fake right now
        assert wait_for_step_in_flight(lam, timeout=VISIBILITY_SECONDS * 3), "no step started"
        time.sleep(rng.uniform(0.0, SLOW_STEP_SECONDS * 0.8))
        worker.kill()
        kills += 1

    start_worker(env, concurrency=2)
    wait_until(lambda: all_finished(pg_sessions, ids), timeout=180, interval=0.25, what="all done")

    assert statuses(pg_sessions, ids) == Counter({ExecutionStatus.SUCCEEDED: len(ids)})
    lost = sum(assert_no_finished_step_ran_twice(pg_sessions, fakes, i) for i in ids)
    assert lost >= 10, f"only {lost} step runs were interrupted by the 20 kills"
    with pg_sessions() as session:
        recovered = session.scalar(
            select(func.count()).where(
                ExecutionEvent.execution_id.in_(ids), ExecutionEvent.kind == "recovered"
            )
        )
        outputs = {
            e.output["result"]["body"]["received"]["n"]
            for e in session.scalars(select(Execution).where(Execution.id.in_(ids)))
            if e.output is not None
        }
    assert recovered is not None
    assert recovered >= 10
    assert outputs == set(range(24))


def test_the_same_doorbell_delivered_a_hundred_times_runs_the_execution_once(
    pg_sessions, fault_sqs, fakes, env, start_worker
) -> None:
    lam, http = fakes
    execution_id = start_run(pg_sessions, pipeline(http.url), run_input={"n": 7})
    publisher = ExecutionPublisher(fault_sqs.client, fault_sqs.queue_url, fault_sqs.queue_name)
    body = publisher.body_for(str(execution_id))
    for start in range(0, 100, 10):
        fault_sqs.client.send_message_batch(
            QueueUrl=fault_sqs.queue_url,
            Entries=[{"Id": str(i), "MessageBody": body} for i in range(start, start + 10)],
        )

    start_worker(env, concurrency=4)
    wait_until(lambda: fault_sqs.depth() == (0, 0), timeout=120, interval=0.2, what="drained")

    assert statuses(pg_sessions, [execution_id]) == Counter({ExecutionStatus.SUCCEEDED: 1})
    runs = runs_by_step(pg_sessions, execution_id)
    assert {step: len(r) for step, r in runs.items()} == {"first": 1, "middle": 1, "last": 1}
    for step in ("first", "middle"):
        assert lam.effect_count(f"{execution_id}:{step}") == 1
    assert http.effect_count(f"{execution_id}:last") == 1
    assert len(lam.calls) == 2
    assert len(http.calls) == 1
    with pg_sessions() as session:
        assert session.get(Execution, execution_id).attempt == 1


def test_after_a_kill_the_redelivered_message_lets_a_new_worker_reclaim_the_expired_lease(
    pg_sessions, fault_sqs, fakes, env, start_worker
) -> None:
    lam, http = fakes
    lam.delay("slow", 3)
    execution_id = start_run(pg_sessions, pipeline(http.url), run_input={"n": 1})
    send(pg_sessions, fault_sqs, [execution_id])

    first = start_worker(env, concurrency=1)
    assert wait_for_step_in_flight(lam, timeout=30)
    time.sleep(1)  # the middle step is running
    first.kill()
    killed = time.monotonic()
    with pg_sessions() as session:
        execution = session.get(Execution, execution_id)
        assert execution.status is ExecutionStatus.RUNNING
        dead_worker = execution.worker_id

    start_worker(env, concurrency=1)
    wait_until(
        lambda: all_finished(pg_sessions, [execution_id]), timeout=60, what="reclaimed and done"
    )

    # not before the SQS visibility timeout brought the message back
    assert time.monotonic() - killed >= VISIBILITY_SECONDS - 3
    with pg_sessions() as session:
        execution = session.get(Execution, execution_id)
        assert execution.status is ExecutionStatus.SUCCEEDED
        assert execution.attempt == 2
        assert execution.worker_id != dead_worker
        events = list(
            session.scalars(
                select(ExecutionEvent)
                .where(ExecutionEvent.execution_id == execution_id)
                .order_by(ExecutionEvent.id)
            )
        )
    recovered = [e for e in events if e.kind == "recovered"]
    assert len(recovered) == 1
    assert recovered[0].data == {"previous_worker": dead_worker}
    runs = runs_by_step(pg_sessions, execution_id)
    assert [(r.attempt, r.status) for r in runs["first"]] == [(1, StepStatus.SUCCEEDED)]
    assert [(r.attempt, r.status) for r in runs["middle"]] == [
        (1, StepStatus.FAILED),
        (2, StepStatus.SUCCEEDED),
    ]
    assert runs["middle"][0].error["kind"] == "worker_lost"
    assert lam.effect_count(f"{execution_id}:first") == 1
    assert_no_finished_step_ran_twice(pg_sessions, fakes, execution_id)
