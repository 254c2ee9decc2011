"""The execution engine in-process (no Celery) against a real PostgreSQL: claim conditions, resume,
duplicates, retries, timeouts, cancellation, the event timeline."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from shared.executions import cancel_execution, record_event
from shared.models import Execution, ExecutionEvent, StepRun
from shared.status import ExecutionStatus, StepStatus
from tests.harness.fakes import RecordingPublisher, start_run
from worker.engine import ExecutionEngine, Outcome, TransientBudget
from worker.registry import register

CALLS: Counter[str] = Counter()


@register("tests.count", replace=True)
def _count(name: str, value: Any = None) -> dict[str, Any]:
    CALLS[name] += 1
    return {"name": name, "value": value, "calls": CALLS[name]}


@register("tests.explode", replace=True)
def _explode(message: str = "boom") -> None:
    raise ValueError(message)


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    CALLS.clear()


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def make_engine(pg_sessions, make_settings, publisher):
    def make(worker_id: str = "worker-a", **overrides: Any) -> ExecutionEngine:
        values: dict[str, Any] = {"lease_seconds": 5, "heartbeat_seconds": 1}
        values.update(overrides)
        return ExecutionEngine(
            pg_sessions,
            make_settings(**values),
            publisher=publisher,
            worker_id=worker_id,
            rng=random.Random(7),
            transient=TransientBudget(attempts=3, within=5, initial=0.05, maximum=0.2),
        )

    return make


def python_step(name: str, function: str = "tests.count", **extra: Any) -> dict[str, Any]:
    args = extra.pop("args", {"name": name})
    return {"name": name, "action": "python", "function": function, "args": args, **extra}


def workflow(*steps: dict[str, Any], name: str = "wf", **extra: Any) -> dict[str, Any]:
    return {"name": name, "steps": list(steps), **extra}


def load(sessions, execution_id) -> Execution:
    with sessions() as session:
        execution = session.get(Execution, execution_id)
        assert execution is not None
        session.expunge(execution)
        return execution


def step_runs(sessions, execution_id) -> list[StepRun]:
    with sessions() as session:
        return list(
            session.scalars(
                select(StepRun).where(StepRun.execution_id == execution_id).order_by(StepRun.id)
            )
        )


def event_kinds(sessions, execution_id) -> list[str]:
    with sessions() as session:
        return list(
            session.scalars(
                select(ExecutionEvent.kind)
                .where(ExecutionEvent.execution_id == execution_id)
                .order_by(ExecutionEvent.id)
            )
        )


def set_state(sessions, execution_id, **values: Any) -> None:
    with sessions() as session, session.begin():
        session.execute(update(Execution).where(Execution.id == execution_id).values(**values))


# ------------------------------------------------------------------------------ happy path


def test_steps_run_in_order_and_outputs_feed_the_templates_of_later_steps(
    pg_sessions, make_engine
) -> None:
    document = workflow(
        python_step("one", args={"name": "one", "value": "{{ input.region }}"}),
        python_step(
            "two",
            args={
                "name": "two",
                "value": "{{ steps.one.output.value }}-{{ workflow }}-{{ attempt }}",
            },
        ),
        input={"region": "eu"},
    )
    execution_id = start_run(pg_sessions, document)

    assert make_engine().handle(str(execution_id)) is Outcome.SUCCEEDED

    execution = load(pg_sessions, execution_id)
    assert execution.status is ExecutionStatus.SUCCEEDED
    assert execution.output == {
        "steps": {
            "one": {"name": "one", "value": "eu", "calls": 1},
            "two": {"name": "two", "value": "eu-wf-1", "calls": 1},
        },
        "result": {"name": "two", "value": "eu-wf-1", "calls": 1},
    }
    assert execution.attempt == 1
    assert execution.started_at is not None
    assert execution.finished_at is not None
    assert execution.deadline_at == execution.started_at + timedelta(hours=1)
    runs = step_runs(pg_sessions, execution_id)
    assert [(r.step_name, r.status, r.attempt) for r in runs] == [
        ("one", StepStatus.SUCCEEDED, 1),
        ("two", StepStatus.SUCCEEDED, 1),
    ]
    assert runs[1].input == {"args": {"name": "two", "value": "eu-wf-1"}}
    assert all(r.finished_at is not None and r.finished_at >= r.started_at for r in runs)
    assert event_kinds(pg_sessions, execution_id) == [
        "created",
        "started",
        "step_started",
        "step_succeeded",
        "step_started",
        "step_succeeded",
        "succeeded",
    ]


# ------------------------------------------------------------------------------ claim


@pytest.mark.parametrize(
    ("state", "outcome"),
    [
        ({"status": ExecutionStatus.PENDING}, Outcome.SUCCEEDED),
        ({"status": ExecutionStatus.QUEUED}, Outcome.SUCCEEDED),
        ({"status": ExecutionStatus.RETRYING, "not_before": -1}, Outcome.SUCCEEDED),
        ({"status": ExecutionStatus.RETRYING, "not_before": +60}, Outcome.NOT_DUE),
        ({"status": ExecutionStatus.QUEUED, "cancel_requested": True}, Outcome.DUPLICATE),
        ({"status": ExecutionStatus.RUNNING, "lease": +30}, Outcome.DUPLICATE),
        ({"status": ExecutionStatus.RUNNING, "lease": -1}, Outcome.SUCCEEDED),
        ({"status": ExecutionStatus.SUCCEEDED}, Outcome.DUPLICATE),
        ({"status": ExecutionStatus.FAILED}, Outcome.DUPLICATE),
        ({"status": ExecutionStatus.CANCELLED}, Outcome.DUPLICATE),
        ({"status": ExecutionStatus.TIMED_OUT}, Outcome.DUPLICATE),
    ],
    ids=lambda value: "-".join(map(str, value.values())) if isinstance(value, dict) else value,
)
def test_a_claim_takes_only_due_waiting_executions_or_ones_whose_lease_expired(
    pg_sessions, make_engine, publisher, state: dict[str, Any], outcome: Outcome
) -> None:
    execution_id = start_run(pg_sessions, workflow(python_step("one")))
    now = datetime.now(UTC)
    values: dict[str, Any] = {"status": state["status"]}
    if "not_before" in state:
        values["not_before"] = now + timedelta(seconds=state["not_before"])
    if "lease" in state:
        values.update(
            lease_expires_at=now + timedelta(seconds=state["lease"]),
            worker_id="dead-worker",
            attempt=1,
        )
    if state.get("cancel_requested"):
        values["cancel_requested"] = True
    set_state(pg_sessions, execution_id, **values)

    assert make_engine().handle(execution_id) is outcome

    after = load(pg_sessions, execution_id)
    if outcome is Outcome.SUCCEEDED:
        assert after.status is ExecutionStatus.SUCCEEDED
        assert CALLS["one"] == 1
    elif outcome is Outcome.NOT_DUE:  # re-sent with the remaining delay, nothing else
        assert publisher.sent == [(str(execution_id), 60)]
        assert after.status is ExecutionStatus.QUEUED
        assert CALLS["one"] == 0
    else:
        assert after.status is state["status"]  # untouched
        assert CALLS["one"] == 0
    if state.get("lease", 0) < 0:
        kinds = event_kinds(pg_sessions, execution_id)
        assert "recovered" in kinds
        assert after.attempt == 2


def test_a_duplicate_message_for_a_finished_execution_runs_nothing(
    pg_sessions, make_engine
) -> None:
    execution_id = start_run(pg_sessions, workflow(python_step("one"), python_step("two")))
    engine = make_engine()

    assert engine.handle(execution_id) is Outcome.SUCCEEDED
    for _ in range(3):
        assert engine.handle(execution_id) is Outcome.DUPLICATE

    assert Counter({"one": 1, "two": 1}) == CALLS
    assert len(step_runs(pg_sessions, execution_id)) == 2
    assert load(pg_sessions, execution_id).attempt == 1


def test_an_unknown_execution_id_is_dropped(make_engine) -> None:
    engine = make_engine()
    assert engine.handle("00000000-0000-0000-0000-000000000001") is Outcome.NOT_FOUND
    assert engine.handle("not-a-uuid") is Outcome.NOT_FOUND


def test_concurrent_claims_of_one_execution_let_exactly_one_worker_run_it(
    pg_sessions, make_engine
) -> None:
    execution_id = start_run(
        pg_sessions,
        workflow(python_step("nap", "conveyor.sleep", args={"seconds": 0.5})),
    )
    engines = [make_engine(worker_id=f"w{i}") for i in range(6)]
    outcomes: list[Outcome] = []
    threads = [
        threading.Thread(target=lambda e=e: outcomes.append(e.handle(execution_id)))
        for e in engines
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == sorted([Outcome.SUCCEEDED] + [Outcome.DUPLICATE] * 5)
    assert len(step_runs(pg_sessions, execution_id)) == 1


def test_an_execution_past_its_claim_limit_fails_with_a_clear_error_instead_of_running(
    pg_sessions, make_engine
) -> None:
    execution_id = start_run(pg_sessions, workflow(python_step("one")))
    # max_attempts 1 + recovery_attempts 2: the third recovery is refused
    now = datetime.now(UTC)
    set_state(
        pg_sessions,
        execution_id,
        status=ExecutionStatus.RUNNING,
        attempt=3,
        worker_id="dead-worker",
        lease_expires_at=now - timedelta(seconds=1),
    )

    assert make_engine(recovery_attempts=2).handle(execution_id) is Outcome.FAILED

    execution = load(pg_sessions, execution_id)
    assert execution.status is ExecutionStatus.FAILED
    assert execution.error is not None
    assert execution.error["kind"] == "attempts_exhausted"
    assert "gave up after 3 attempts" in execution.error["message"]
    assert CALLS["one"] == 0


# ------------------------------------------------------------------------------ resume


def test_a_recovered_execution_resumes_at_the_first_unfinished_step_and_never_reruns_a_finished_one(
    pg_sessions, make_engine
) -> None:
    document = workflow(
        python_step("one"),
        python_step("two", args={"name": "two", "value": "{{ steps.one.output.value }}"}),
        python_step("three"),
    )
    execution_id = start_run(pg_sessions, document)
    now = datetime.now(UTC)
    # A worker finished step one, was in the middle of step two and died.
    set_state(
        pg_sessions,
        execution_id,
        status=ExecutionStatus.RUNNING,
        attempt=1,
        worker_id="dead-worker",
        started_at=now - timedelta(seconds=30),
        lease_expires_at=now - timedelta(seconds=1),
    )
    with pg_sessions() as session, session.begin():
        session.add_all(
            [
                StepRun(
                    execution_id=execution_id,
                    step_name="one",
                    step_index=0,
                    attempt=1,
                    status=StepStatus.SUCCEEDED,
                    output={"value": "from-before"},
                    started_at=now - timedelta(seconds=20),
                    finished_at=now - timedelta(seconds=19),
                ),
                StepRun(
                    execution_id=execution_id,
                    step_name="two",
                    step_index=1,
                    attempt=1,
                    status=StepStatus.RUNNING,
                    started_at=now - timedelta(seconds=19),
                ),
            ]
        )
        record_event(session, execution_id, "started", at=now - timedelta(seconds=30))

    assert make_engine().handle(execution_id) is Outcome.SUCCEEDED

    assert Counter({"two": 1, "three": 1}) == CALLS
    runs = step_runs(pg_sessions, execution_id)
    assert [(r.step_name, r.attempt, r.status) for r in runs] == [
        ("one", 1, StepStatus.SUCCEEDED),
        ("two", 1, StepStatus.FAILED),  # the dead worker's run, closed as worker_lost
        ("two", 2, StepStatus.SUCCEEDED),
        ("three", 2, StepStatus.SUCCEEDED),
    ]
    assert runs[1].error is not None
    assert runs[1].error["kind"] == "worker_lost"
    assert runs[2].output == {"name": "two", "value": "from-before", "calls": 1}
    execution = load(pg_sessions, execution_id)
    assert execution.output is not None
    assert execution.output["steps"]["one"] == {"value": "from-before"}
    kinds = event_kinds(pg_sessions, execution_id)
    assert kinds[-7:] == [
        "recovered",
        "started",
        "step_started",
        "step_succeeded",
        "step_started",
        "step_succeeded",
        "succeeded",
    ]


# ------------------------------------------------------------------------------ failures


def test_a_missing_template_key_fails_the_step_and_the_execution_with_a_clear_message(
    pg_sessions, make_engine
) -> None:
    document = workflow(
        python_step("one"),
        python_step("two", args={"name": "{{ steps.one.output.nope }}"}),
        retry={"max_attempts": 3, "retry_on": ["transient", "timeout", "error"]},
    )
    execution_id = start_run(pg_sessions, document)

    assert make_engine().handle(execution_id) is Outcome.FAILED

    execution = load(pg_sessions, execution_id)
    assert execution.status is ExecutionStatus.FAILED
    assert execution.error is not None
    assert execution.error["kind"] == "template"
    assert execution.error["step"] == "two"
    assert "steps[1].args.name" in execution.error["message"]
    assert "missing key 'nope'" in execution.error["message"]
    assert [r.status for r in step_runs(pg_sessions, execution_id)] == [
        StepStatus.SUCCEEDED,
        StepStatus.FAILED,
    ]


def test_a_permanent_error_fails_the_execution_at_once_without_a_retry(
    pg_sessions, make_engine, publisher
) -> None:
    document = workflow(
        python_step("bad", "tests.explode", args={"message": "nope"}),
        retry={"max_attempts": 5, "initial": "1s"},
    )
    execution_id = start_run(pg_sessions, document)

    assert make_engine().handle(execution_id) is Outcome.FAILED

    execution = load(pg_sessions, execution_id)
    assert execution.error is not None
    assert execution.error["kind"] == "permanent"
    assert "ValueError: nope" in execution.error["message"]
    assert "traceback" in execution.error["details"]
    assert publisher.sent == []
    assert event_kinds(pg_sessions, execution_id)[-2:] == ["step_failed", "failed"]


def test_a_retryable_failure_schedules_a_delayed_retry_and_the_retry_resumes_the_step(
    pg_sessions, make_engine, publisher
) -> None:
    document = workflow(
        python_step("one"),
        python_step("bad", "tests.explode", args={}),
        retry={
            "max_attempts": 3,
            "initial": "2s",
            "jitter": "none",
            "retry_on": ["error"],
        },
    )
    execution_id = start_run(pg_sessions, document)
    engine = make_engine()
    before = datetime.now(UTC)

    assert engine.handle(execution_id) is Outcome.RETRYING

    execution = load(pg_sessions, execution_id)
    assert execution.status is ExecutionStatus.QUEUED  # the delayed doorbell was sent
    assert execution.worker_id is None
    assert execution.lease_expires_at is None
    assert execution.not_before is not None
    assert before + timedelta(seconds=2) <= execution.not_before
    assert execution.not_before <= datetime.now(UTC) + timedelta(seconds=2)
    assert publisher.sent == [(str(execution_id), 2)]
    assert event_kinds(pg_sessions, execution_id)[-3:] == [
        "step_failed",
        "retry_scheduled",
        "queued",
    ]

    # The doorbell arrives early: not claimed, sent again for the rest of the delay.
    assert engine.handle(execution_id) is Outcome.NOT_DUE
    set_state(pg_sessions, execution_id, not_before=datetime.now(UTC))
    assert engine.handle(execution_id) is Outcome.RETRYING  # second failure, 4s back-off
    assert publisher.sent[-1] == (str(execution_id), 4)
    set_state(pg_sessions, execution_id, not_before=datetime.now(UTC))
    assert engine.handle(execution_id) is Outcome.FAILED  # third failure: out of attempts

    assert CALLS["one"] == 1  # never re-run
    runs = step_runs(pg_sessions, execution_id)
    assert [(r.step_name, r.attempt, r.status) for r in runs] == [
        ("one", 1, StepStatus.SUCCEEDED),
        ("bad", 1, StepStatus.FAILED),
        ("bad", 2, StepStatus.FAILED),
        ("bad", 3, StepStatus.FAILED),
    ]
    execution = load(pg_sessions, execution_id)
    assert execution.status is ExecutionStatus.FAILED
    assert execution.error is not None
    assert "ValueError: boom" in execution.error["message"]


def test_a_retry_longer_than_the_sqs_delay_limit_is_left_to_the_sweeper(
    pg_sessions, make_engine, publisher
) -> None:
    document = workflow(
        python_step("bad", "tests.explode", args={}),
        retry={"max_attempts": 2, "initial": "20m", "max": "1h", "jitter": "none"},
        timeout="2h",
    )
    document["retry"]["retry_on"] = ["error"]
    execution_id = start_run(pg_sessions, document)

    assert make_engine().handle(execution_id) is Outcome.RETRYING

    execution = load(pg_sessions, execution_id)
    assert execution.status is ExecutionStatus.RETRYING
    assert publisher.sent == []


def test_transient_errors_retry_in_process_before_the_retry_policy_is_asked(
    pg_sessions, make_engine
) -> None:
    from shared.errors import TransientActionError

    attempts: list[float] = []

    @register("tests.flaky", replace=True)
    def _flaky() -> str:
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise TransientActionError("throttled", retry_after=0.1)
        return "ok"

    execution_id = start_run(pg_sessions, workflow(python_step("one", "tests.flaky", args={})))

    assert make_engine().handle(execution_id) is Outcome.SUCCEEDED

    assert len(attempts) == 3
    assert attempts[1] - attempts[0] >= 0.1  # Retry-After honoured
    assert [r.status for r in step_runs(pg_sessions, execution_id)] == [StepStatus.SUCCEEDED]


# ------------------------------------------------------------------------------ timeouts


def test_a_step_past_its_timeout_is_interrupted_and_the_execution_times_out(
    pg_sessions, make_engine
) -> None:
    document = workflow(
        python_step("nap", "conveyor.sleep", args={"seconds": 30}, timeout="500ms"),
        python_step("after"),
    )
    execution_id = start_run(pg_sessions, document)
    started = time.monotonic()

    assert make_engine().handle(execution_id) is Outcome.TIMED_OUT

    assert time.monotonic() - started < 5
    execution = load(pg_sessions, execution_id)
    assert execution.status is ExecutionStatus.TIMED_OUT
    assert execution.error is not None
    assert execution.error["kind"] == "timeout"
    assert [r.status for r in step_runs(pg_sessions, execution_id)] == [StepStatus.TIMED_OUT]
    assert event_kinds(pg_sessions, execution_id)[-2:] == ["step_failed", "timed_out"]
    assert CALLS["after"] == 0


def test_the_execution_deadline_bounds_a_step_with_a_longer_timeout(
    pg_sessions, make_engine
) -> None:
    document = workflow(
        python_step("nap", "conveyor.sleep", args={"seconds": 30}, timeout="1m"),
        timeout="1s",
        retry={"max_attempts": 3},
    )
    execution_id = start_run(pg_sessions, document)

    assert make_engine().handle(execution_id) is Outcome.TIMED_OUT

    execution = load(pg_sessions, execution_id)
    assert execution.error is not None
    assert execution.error["kind"] == "deadline"
    # and a late doorbell after the deadline does not run it again
    assert make_engine().handle(execution_id) is Outcome.DUPLICATE


# ------------------------------------------------------------------------------ cancellation


def test_a_cancelled_execution_stops_at_the_next_checkpoint_and_runs_no_further_step(
    pg_sessions, make_engine
) -> None:
    document = workflow(
        python_step("nap", "conveyor.sleep", args={"seconds": 30}),
        python_step("after"),
    )
    execution_id = start_run(pg_sessions, document)
    outcome: list[Outcome] = []
    runner = threading.Thread(target=lambda: outcome.append(make_engine().handle(execution_id)))
    runner.start()
    deadline = time.monotonic() + 10
    # Cancel once the first step is under way (a run cancelled between its claim and its first
    # step ends with no step run at all, which is right but not what this test is about).
    while [r.status for r in step_runs(pg_sessions, execution_id)] != [StepStatus.RUNNING]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    requested = time.monotonic()
    with pg_sessions() as session, session.begin():
        cancel_execution(session, execution_id, datetime.now(UTC))
    runner.join(timeout=15)

    assert outcome == [Outcome.CANCELLED]
    assert time.monotonic() - requested < 3  # one heartbeat (1 s) plus a poll
    execution = load(pg_sessions, execution_id)
    assert execution.status is ExecutionStatus.CANCELLED
    assert [r.status for r in step_runs(pg_sessions, execution_id)] == [StepStatus.CANCELLED]
    assert event_kinds(pg_sessions, execution_id)[-2:] == ["step_failed", "cancelled"]
    assert CALLS["after"] == 0


def test_a_worker_whose_lease_was_taken_over_writes_nothing_more(pg_sessions, make_engine) -> None:
    document = workflow(python_step("nap", "conveyor.sleep", args={"seconds": 30}))
    execution_id = start_run(pg_sessions, document)
    outcome: list[Outcome] = []
    runner = threading.Thread(target=lambda: outcome.append(make_engine().handle(execution_id)))
    runner.start()
    deadline = time.monotonic() + 10
    while [r.status for r in step_runs(pg_sessions, execution_id)] != [StepStatus.RUNNING]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    set_state(pg_sessions, execution_id, worker_id="someone-else")
    runner.join(timeout=15)

    assert outcome == [Outcome.LEASE_LOST]
    execution = load(pg_sessions, execution_id)
    assert execution.status is ExecutionStatus.RUNNING
    assert execution.worker_id == "someone-else"
    assert [r.status for r in step_runs(pg_sessions, execution_id)] == [StepStatus.RUNNING]


def test_a_fresh_claim_is_not_a_recovery_and_an_expired_lease_is_on_both_backends(
    sessions, make_settings, publisher
) -> None:
    engine = ExecutionEngine(
        sessions,
        make_settings(lease_seconds=5, heartbeat_seconds=1),
        publisher=publisher,
        worker_id="worker-b",
        rng=random.Random(7),
        transient=TransientBudget(attempts=3, within=5, initial=0.05, maximum=0.2),
    )
    fresh = start_run(sessions, workflow(python_step("one")))
    assert engine.handle(fresh) is Outcome.SUCCEEDED
    assert "recovered" not in event_kinds(sessions, fresh)

    dead = start_run(sessions, workflow(python_step("two"), name="wf-dead"))
    set_state(
        sessions,
        dead,
        status=ExecutionStatus.RUNNING,
        lease_expires_at=datetime.now(UTC) - timedelta(seconds=1),
        worker_id="dead-worker",
        attempt=1,
    )
    assert engine.handle(dead) is Outcome.SUCCEEDED
    assert "recovered" in event_kinds(sessions, dead)
    assert load(sessions, dead).attempt == 2
