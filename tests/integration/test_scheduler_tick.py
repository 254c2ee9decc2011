"""The tick on real PostgreSQL and SQS: idempotent, O(due), policies applied exactly."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from scheduler.tick import Ticker, is_due
from shared.models import Execution, Workflow
from shared.queue import ExecutionPublisher, decode_message_body
from shared.status import ExecutionStatus
from tests.integration.scheduling import apply, by_status, definition, executions, finish

T0 = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)
PENDING, QUEUED, SKIPPED = ExecutionStatus.PENDING, ExecutionStatus.QUEUED, ExecutionStatus.SKIPPED


def minute(n: int) -> datetime:
    return datetime(2026, 6, 1, 12, 0, tzinfo=UTC) + timedelta(minutes=n)


@pytest.fixture
def publisher(sqs) -> ExecutionPublisher:
    return ExecutionPublisher(sqs.client, sqs.queue_url, sqs.queue_name, parallelism=4)


def drain(sqs) -> list[str]:
    ids: list[str] = []
    while True:
        messages = sqs.client.receive_message(QueueUrl=sqs.queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if not messages:
            return ids
        for message in messages:
            ids.append(decode_message_body(message["Body"]).args[0])
            sqs.client.delete_message(
                QueueUrl=sqs.queue_url, ReceiptHandle=message["ReceiptHandle"]
            )


def bulk_workflows(sessions: sessionmaker[Session], count: int, due_at: datetime) -> None:
    document = definition("w", "* * * * *", overlap="allow")
    with sessions() as session, session.begin():
        session.execute(
            insert(Workflow),
            [
                {
                    "name": f"w{i:05d}",
                    "definition": {**document, "name": f"w{i:05d}"},
                    "schedule": "* * * * *",
                    "timezone": "UTC",
                    "enabled": True,
                    "next_run_at": due_at,
                    "last_fire_at": due_at - timedelta(minutes=1),
                    "version": 1,
                    "created_at": due_at - timedelta(hours=1),
                    "updated_at": due_at - timedelta(hours=1),
                }
                for i in range(count)
            ],
        )


def test_eight_concurrent_ticks_over_1000_due_workflows_create_exactly_1000_executions(
    pg_sessions,
) -> None:
    # The database side only: moto's SQS slows down quadratically with depth (each call scans
    # the queue), so enqueueing is proven on smaller sets below.
    bulk_workflows(pg_sessions, 1000, minute(1))
    now = minute(1) + timedelta(seconds=5)
    reports = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            reports.append(Ticker(pg_sessions, None, batch_size=50).fire_due(now))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    rows = executions(pg_sessions)
    assert len(rows) == 1000
    assert {row.scheduled_for for row in rows} == {minute(1)}
    assert len({row.workflow_id for row in rows}) == 1000
    assert sum(r.claimed for r in reports) == 1000
    assert sum(r.fired for r in reports) == 1000
    assert by_status(rows) == {(PENDING, None): 1000}


def test_a_tick_enqueues_one_message_per_new_run_and_marks_them_queued(
    pg_sessions, publisher, sqs
) -> None:
    bulk_workflows(pg_sessions, 120, minute(1))
    report = Ticker(pg_sessions, publisher, batch_size=50).fire_due(minute(1))
    assert (report.claimed, report.fired, report.enqueued) == (120, 120, 120)
    rows = executions(pg_sessions)
    assert by_status(rows) == {(QUEUED, None): 120}
    assert sorted(drain(sqs)) == sorted(str(row.id) for row in rows)


def test_a_second_tick_at_the_same_instant_creates_nothing(pg_sessions, publisher) -> None:
    apply(pg_sessions, definition("every-minute", "* * * * *"), T0)
    ticker = Ticker(pg_sessions, publisher)
    assert ticker.fire_due(minute(1)).fired == 1
    assert ticker.fire_due(minute(1)).claimed == 0
    # even with the cursor forced back, the unique (workflow, scheduled_for) holds
    with pg_sessions() as session, session.begin():
        session.execute(update(Workflow).values(next_run_at=minute(1), last_fire_at=T0))
    again = ticker.fire_due(minute(1))
    assert again.claimed == 1
    assert again.fired == 0
    assert len(executions(pg_sessions)) == 1


@pytest.mark.parametrize(
    ("catchup", "extra", "expected"),
    [
        # down from 12:00:30 to 15:00:30: fires 12:01 … 15:00 (180) came due
        ("latest", {}, {(PENDING, None): 1, (SKIPPED, "missed"): 179}),
        ("none", {}, {(PENDING, None): 1, (SKIPPED, "missed"): 179}),
        ("all", {"catchup_cap": 100}, {(PENDING, None): 100, (SKIPPED, "missed"): 80}),
        ("all", {"catchup_cap": 500}, {(PENDING, None): 180}),
        ("all", {"start_deadline": "30m"}, {(PENDING, None): 30, (SKIPPED, "missed"): 150}),
        ("latest", {"start_deadline": "10s"}, {(SKIPPED, "missed"): 180}),
    ],
)
def test_a_scheduler_down_three_hours_applies_the_catchup_policy_exactly(
    pg_sessions, catchup, extra, expected
) -> None:
    apply(
        pg_sessions, definition("busy", "* * * * *", catchup=catchup, overlap="allow", **extra), T0
    )
    now = T0 + timedelta(hours=3)
    report = Ticker(pg_sessions, None).fire_due(now)
    rows = executions(pg_sessions)
    assert by_status(rows) == expected
    assert report.fired + report.skipped == 180
    runs = [row.scheduled_for for row in rows if row.status is PENDING]
    if runs:
        assert max(runs) == minute(180)  # the newest fire is always among the runs
    with pg_sessions() as session:
        workflow = session.scalar(select(Workflow))
        assert workflow is not None
        assert workflow.last_fire_at == minute(180)
        assert workflow.next_run_at == minute(181)


def test_catchup_none_runs_nothing_when_the_newest_fire_is_older_than_the_grace(
    pg_sessions,
) -> None:
    apply(pg_sessions, definition("strict", "0 * * * *", catchup="none"), T0)
    report = Ticker(pg_sessions, None).fire_due(datetime(2026, 6, 1, 15, 30, tzinfo=UTC))
    assert report.fired == 0
    assert by_status(executions(pg_sessions)) == {(SKIPPED, "missed"): 3}


def test_overlap_skip_records_a_fire_while_the_previous_run_is_active(pg_sessions) -> None:
    apply(pg_sessions, definition("solo", "* * * * *", overlap="skip"), T0)
    ticker = Ticker(pg_sessions, None)
    ticker.fire_due(minute(1))
    ticker.fire_due(minute(2))
    assert by_status(executions(pg_sessions)) == {(PENDING, None): 1, (SKIPPED, "overlap"): 1}
    finish(pg_sessions, ExecutionStatus.SUCCEEDED, minute(2))
    ticker.fire_due(minute(3))
    rows = executions(pg_sessions)
    assert [(r.scheduled_for, r.status, r.reason) for r in rows] == [
        (minute(1), ExecutionStatus.SUCCEEDED, None),
        (minute(2), SKIPPED, "overlap"),
        (minute(3), PENDING, None),
    ]


def test_overlap_allow_runs_every_fire_concurrently(pg_sessions) -> None:
    apply(pg_sessions, definition("many", "* * * * *", overlap="allow"), T0)
    ticker = Ticker(pg_sessions, None)
    for n in (1, 2, 3):
        ticker.fire_due(minute(n))
    assert by_status(executions(pg_sessions)) == {(PENDING, None): 3}


def test_overlap_buffer_one_keeps_one_waiting_and_releases_it_when_the_active_run_ends(
    pg_sessions, publisher, sqs
) -> None:
    from scheduler.sweeper import Sweeper

    apply(pg_sessions, definition("queue-one", "* * * * *", overlap="buffer_one"), T0)
    ticker = Ticker(pg_sessions, publisher)
    for n in (1, 2, 3):
        ticker.fire_due(minute(n))
    rows = executions(pg_sessions)
    assert [(r.scheduled_for, r.status, r.reason) for r in rows] == [
        (minute(1), QUEUED, None),
        (minute(2), PENDING, "buffered"),
        (minute(3), SKIPPED, "overlap"),
    ]
    sweeper = Sweeper(pg_sessions, publisher)
    assert sweeper.sweep(minute(3)).released_buffered == 0  # still busy
    finish(pg_sessions, ExecutionStatus.SUCCEEDED, minute(3))
    assert sweeper.sweep(minute(3) + timedelta(seconds=1)).released_buffered == 1
    rows = executions(pg_sessions)
    assert rows[1].status is QUEUED
    assert rows[1].reason is None
    assert str(rows[1].id) in drain(sqs)


def test_a_paused_workflow_does_not_fire_and_resuming_does_not_replay_the_pause(
    pg_sessions,
) -> None:
    from shared.catalog import set_enabled

    apply(pg_sessions, definition("pausable", "* * * * *", catchup="all"), T0)
    ticker = Ticker(pg_sessions, None)
    with pg_sessions() as session, session.begin():
        set_enabled(session, "pausable", False, T0 + timedelta(seconds=1))
    assert ticker.fire_due(minute(30)).claimed == 0
    with pg_sessions() as session, session.begin():
        resumed = set_enabled(session, "pausable", True, minute(30) + timedelta(seconds=10))
        assert resumed.next_run_at == minute(31)
    report = ticker.fire_due(minute(31))
    assert (report.fired, report.skipped) == (1, 0)
    assert [r.scheduled_for for r in executions(pg_sessions)] == [minute(31)]


def test_a_crash_between_commit_and_enqueue_loses_nothing(pg_sessions, publisher, sqs) -> None:
    from scheduler.sweeper import Sweeper

    apply(pg_sessions, definition("fragile", "* * * * *"), T0)
    # the tick commits its executions, then "crashes" before sending (no publisher)
    crashed = Ticker(pg_sessions, None).fire_due(minute(1))
    assert crashed.fired == 1
    assert drain(sqs) == []
    [row] = executions(pg_sessions)
    assert row.status is PENDING
    # the next tick's sweeper sends it (once it is older than the outbox grace)
    sweeper = Sweeper(pg_sessions, publisher, outbox_grace=timedelta(seconds=30))
    assert sweeper.sweep(minute(1) + timedelta(seconds=10)).resent == 0
    assert sweeper.sweep(minute(2)).resent == 1
    assert drain(sqs) == [str(row.id)]
    [row] = executions(pg_sessions)
    assert row.status is QUEUED


def test_a_queue_outage_leaves_executions_pending_for_the_sweeper(pg_sessions, sqs) -> None:
    broken = ExecutionPublisher(sqs.client, sqs.queue_url + "-missing", sqs.queue_name)
    apply(pg_sessions, definition("outage", "* * * * *"), T0)
    report = Ticker(pg_sessions, broken).fire_due(minute(1))
    assert (report.fired, report.enqueued, report.enqueue_failed) == (1, 0, 1)
    assert by_status(executions(pg_sessions)) == {(PENDING, None): 1}


@pytest.mark.parametrize(
    ("schedule", "zone", "window", "expected"),
    [
        # Berlin spring forward 2026-03-29: 02:30 local does not exist → fires at 03:00 CEST
        (
            "30 2 * * *",
            "Europe/Berlin",
            ("2026-03-28T12:00:00Z", "2026-03-30T12:00:00Z"),
            ["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"],
        ),
        # Berlin fall back 2026-10-25: 02:30 happens twice → fires once, the first (CEST)
        (
            "30 2 * * *",
            "Europe/Berlin",
            ("2026-10-24T12:00:00Z", "2026-10-25T12:00:00Z"),
            ["2026-10-25T00:30:00Z"],
        ),
        # New York fall back 2026-11-01: hourly keeps firing every real hour (both 1 a.m.s)
        (
            "0 * * * *",
            "America/New_York",
            ("2026-11-01T04:30:00Z", "2026-11-01T07:30:00Z"),
            ["2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z", "2026-11-01T07:00:00Z"],
        ),
    ],
)
def test_dst_days_fire_per_the_vixie_rule(pg_sessions, schedule, zone, window, expected) -> None:
    start, end = (datetime.fromisoformat(w.replace("Z", "+00:00")) for w in window)
    apply(
        pg_sessions,
        definition("dst", schedule, timezone=zone, catchup="all", overlap="allow"),
        start,
    )
    ticker = Ticker(pg_sessions, None)
    now = start
    while now < end:  # tick every 10 minutes across the transition
        now += timedelta(minutes=10)
        ticker.fire_due(now)
    got = [r.scheduled_for.isoformat().replace("+00:00", "Z") for r in executions(pg_sessions)]
    assert got == expected


def test_the_ticks_due_lookup_is_served_by_the_partial_next_run_index(pg_sessions) -> None:
    bulk_workflows(pg_sessions, 5000, T0 + timedelta(days=1))  # many idle workflows
    query = (
        select(Workflow.id)
        .where(*is_due(T0))
        .order_by(Workflow.next_run_at)
        .limit(500)
        .with_for_update(skip_locked=True)
    )
    with pg_sessions() as session, session.begin():
        session.execute(text("ANALYZE workflows"))
        compiled = query.compile(dialect=session.get_bind().dialect)
        plan = "\n".join(
            row[0]
            for row in session.connection().exec_driver_sql(
                "EXPLAIN " + compiled.string, compiled.params
            )
        )
    assert "ix_workflows_due" in plan, plan
    assert "Seq Scan" not in plan, plan


def test_executions_inserted_by_the_tick_carry_the_frozen_definition(pg_sessions) -> None:
    apply(pg_sessions, definition("frozen", "* * * * *", input={"region": "eu"}), T0)
    Ticker(pg_sessions, None).fire_due(minute(1))
    [row] = executions(pg_sessions)
    assert row.definition["name"] == "frozen"
    assert row.input == {"region": "eu"}
    assert row.trigger.value == "schedule"
    with pg_sessions() as session:
        assert session.scalar(select(func.count()).select_from(Execution)) == 1


def test_a_ticker_with_parallel_sessions_fires_each_due_workflow_once(pg_sessions) -> None:
    bulk_workflows(pg_sessions, 700, minute(1))
    report = Ticker(pg_sessions, None, batch_size=64, parallelism=3).fire_due(minute(1))
    assert (report.claimed, report.fired) == (700, 700)
    rows = executions(pg_sessions)
    assert len(rows) == 700
    assert len({row.workflow_id for row in rows}) == 700


def test_a_scheduled_run_may_claim_once_plus_every_steps_retries(pg_sessions) -> None:
    steps = [
        {
            "name": "a",
            "action": "python",
            "function": "conveyor.noop",
            "retry": {"max_attempts": 3},
        },
        {"name": "b", "action": "python", "function": "conveyor.noop"},
        {"name": "c", "action": "python", "function": "conveyor.noop"},
    ]
    apply(
        pg_sessions,
        {**definition("budget", "* * * * *"), "steps": steps, "retry": {"max_attempts": 2}},
        T0,
    )
    Ticker(pg_sessions, None).fire_due(minute(1))
    [row] = executions(pg_sessions)
    assert row.max_attempts == 1 + (3 - 1) + (2 - 1) + (2 - 1)


def test_the_tick_works_the_same_on_sqlite_and_postgresql(sessions) -> None:
    apply(
        sessions,
        definition(
            "both", "* * * * *", overlap="skip", catchup="latest", retry={"max_attempts": 2}
        ),
        T0,
    )
    ticker = Ticker(sessions, None)
    first = ticker.fire_due(minute(1))
    second = ticker.fire_due(minute(3))
    assert (first.fired, second.fired, second.skipped) == (1, 0, 2)
    rows = executions(sessions)
    assert [(r.scheduled_for, r.status, r.reason) for r in rows] == [
        (minute(1), PENDING, None),
        (minute(2), SKIPPED, "missed"),
        (minute(3), SKIPPED, "overlap"),
    ]
    assert rows[0].max_attempts == 2
    assert rows[0].definition["name"] == "both"
