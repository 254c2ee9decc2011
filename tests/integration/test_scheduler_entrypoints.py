"""Scheduler entry points: the Lambda handler with a real EventBridge event, and the CLI."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

import scheduler.handler as scheduler_handler
from conveyor_cli.main import cli
from scheduler.metrics import BacklogSample, emf_line
from scheduler.service import SchedulerService
from shared.queue import ExecutionPublisher
from tests.integration.scheduling import apply, definition, executions

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "events"
T0 = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)


class FakeLambdaContext:
    """The part of the Lambda context the handler reads (AWS provides the real one)."""

    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms
        self.function_name = "conveyor-scheduler"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def scheduler_env(monkeypatch, pg_url, sqs, tmp_path) -> Iterator[dict[str, str]]:
    env = {
        **sqs.env(),
        "CONVEYOR_DATABASE_URL": pg_url,
        "CONVEYOR_HOME": str(tmp_path),
        "CONVEYOR_LOG_FORMAT": "json",
        "CONVEYOR_LOG_LEVEL": "WARNING",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    scheduler_handler.reset()
    yield env
    scheduler_handler.reset()


def test_the_lambda_handler_ticks_on_a_real_eventbridge_scheduled_event(
    scheduler_env, pg_sessions, capsys
) -> None:
    sessions = pg_sessions
    apply(sessions, definition("hello", "* * * * *"), datetime.now(UTC) - timedelta(minutes=3))
    event = json.loads((FIXTURES / "eventbridge-scheduled.json").read_text())
    result = scheduler_handler.handler(event, FakeLambdaContext(remaining_ms=60_000))
    assert result["ok"] is True
    assert result["claimed"] == 1
    assert result["fired"] == 1
    assert result["enqueued"] == 1
    assert "lag_ms" in result
    metric_lines = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line
    ]
    assert metric_lines[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Conveyor"
    assert metric_lines[0]["BacklogPerWorker"] == 1.0


def test_the_handler_stops_claiming_when_the_invocation_is_about_to_end(
    scheduler_env, pg_sessions
) -> None:
    sessions = pg_sessions
    apply(sessions, definition("late", "* * * * *"), datetime.now(UTC) - timedelta(minutes=3))
    result = scheduler_handler.handler({}, FakeLambdaContext(remaining_ms=2_000))
    assert result["stopped_early"] is True
    assert result["claimed"] == 0
    assert result["remaining"] == 1


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ([1, 2], "event: expected a JSON object"),
        ({"detail-type": "Object Created"}, "detail-type: expected 'Scheduled Event'"),
        ({"detail-type": "Scheduled Event", "time": "yesterday"}, "time: not an ISO 8601"),
    ],
)
def test_a_malformed_event_is_answered_with_what_was_wrong(scheduler_env, event, message) -> None:
    result = scheduler_handler.handler(event, FakeLambdaContext(60_000))
    assert result["ok"] is False
    assert message in result["error"]


def test_the_backlog_metric_is_an_emf_document() -> None:
    line = emf_line(BacklogSample(visible=30, in_flight=4, workers=3), service="svc", now=T0)
    document = json.loads(line)
    assert document["BacklogPerWorker"] == 10.0
    assert document["Service"] == "svc"
    assert document["_aws"]["Timestamp"] == int(T0.timestamp() * 1000)
    assert document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Service"]]


def test_a_tick_service_reports_counts_and_publishes_one_metric_line(
    pg_url, pg_sessions, sqs, make_settings
):
    sessions = pg_sessions
    apply(sessions, definition("svc", "* * * * *"), T0)
    out = io.StringIO()
    settings = make_settings(
        database_url=pg_url, queue_url=sqs.queue_url, queue_name=sqs.queue_name
    )
    publisher = ExecutionPublisher(sqs.client, sqs.queue_url, sqs.queue_name)
    service = SchedulerService(settings, sessions, publisher, metrics_out=out)
    report = service.tick(T0 + timedelta(minutes=1)).to_json()
    assert (report["claimed"], report["fired"], report["enqueued"]) == (1, 1, 1)
    assert report["backlog"] == {"visible": 1, "in_flight": 0, "workers": 1, "per_worker": 1.0}
    assert len(out.getvalue().splitlines()) == 1


def invoke(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_cli_tick_trigger_backfill_list_and_cancel(
    scheduler_env, pg_sessions, sqs, tmp_path
) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(
        "name: nightly\nschedule: '0 3 * * *'\nsteps:\n"
        "  - {name: work, action: python, function: conveyor.noop}\n"
    )
    assert invoke(scheduler_env, "workflow", "apply", "-f", str(path))[0] == 0

    code, out, err = invoke(scheduler_env, "scheduler", "tick", "--json")
    assert code == 0, err
    counts = json.loads(out)
    assert {"claimed", "fired", "skipped", "enqueued", "swept"} <= counts.keys()

    code, out, err = invoke(scheduler_env, "workflow", "trigger", "nightly", "--input", '{"a": 1}')
    assert code == 0, err
    triggered = out.strip()
    assert "queued 1" in err

    args = ["workflow", "backfill", "nightly", "--from", "2026-01-01", "--to", "2026-01-03T23:00"]
    code, out, _ = invoke(scheduler_env, *args, "--json")
    assert len(json.loads(out)["created"]) == 3
    code, out, _ = invoke(scheduler_env, *args, "--json")
    assert json.loads(out)["created"] == []
    assert json.loads(out)["existing"] == 3

    code, out, _ = invoke(scheduler_env, "executions", "list", "--workflow", "nightly", "--json")
    items = json.loads(out)["items"]
    assert len(items) == 4
    for item in items:
        assert {"id", "workflow", "trigger", "scheduled_for", "status", "reason"} <= item.keys()
    assert {item["trigger"] for item in items} == {"manual", "backfill"}
    assert items[0]["id"] == triggered or triggered in {item["id"] for item in items}

    code, out, _ = invoke(scheduler_env, "executions", "cancel", triggered, "--json")
    assert json.loads(out)["status"] == "cancelled"
    code, out, _ = invoke(scheduler_env, "executions", "list", "--status", "cancelled", "--json")
    assert [item["id"] for item in json.loads(out)["items"]] == [triggered]
    rows = executions(pg_sessions, "nightly")
    assert {row.scheduled_for.date().isoformat() for row in rows if row.scheduled_for} == {
        "2026-01-01",
        "2026-01-02",
        "2026-01-03",
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["workflow", "trigger", "nope"], "no workflow named 'nope'"),
        (["workflow", "trigger", "x", "--input", "[1]"], "--input: expected a JSON object"),
        (["workflow", "trigger", "x", "--input", "{"], "--input: not valid JSON"),
        (["scheduler", "tick", "--now", "soon"], "--now: not an ISO 8601"),
        (["executions", "cancel", "not-a-uuid"], "not an execution id"),
        (["executions", "list", "--cursor", "zzz"], "cursor: not a cursor"),
    ],
)
def test_cli_bad_input_exits_2_with_the_reason(scheduler_env, args, message) -> None:
    code, _, err = invoke(scheduler_env, *args)
    assert code == 2
    assert message in err
