"""The columns a new execution row gets, whichever way it is inserted."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.definition import parse_definition_text
from shared.executions import _RUN_COLUMNS, execution_values
from shared.models import executions_table
from shared.status import ExecutionStatus, Trigger

DEFINITION = parse_definition_text(
    """\
name: nightly
input: {region: eu}
retry: {max_attempts: 3}
steps:
  - {name: a, action: python, function: conveyor.heartbeat}
  - {name: b, action: python, function: conveyor.heartbeat, retry: {max_attempts: 5}}
"""
)
NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


def test_the_copying_insert_sets_every_column_a_new_row_gets() -> None:
    values = execution_values(definition=DEFINITION, workflow_id=7, trigger=Trigger.API, now=NOW)
    assert set(_RUN_COLUMNS) == set(values)
    assert set(values) | {"definition"} <= set(executions_table.c.keys())


def test_a_new_row_merges_input_and_budgets_every_steps_retries() -> None:
    values = execution_values(
        definition=DEFINITION,
        workflow_id=7,
        trigger=Trigger.API,
        now=NOW,
        run_input={"day": "mon", "region": "us"},
    )
    assert values["input"] == {"region": "us", "day": "mon"}
    assert values["max_attempts"] == 1 + (3 - 1) + (5 - 1)
    assert values["status"] is ExecutionStatus.PENDING
    assert values["finished_at"] is None
    assert values["created_at"] == values["updated_at"] == NOW


def test_a_row_created_terminal_is_finished_at_creation() -> None:
    values = execution_values(
        definition=DEFINITION,
        workflow_id=None,
        trigger=Trigger.SCHEDULE,
        now=NOW,
        status=ExecutionStatus.SKIPPED,
    )
    assert values["finished_at"] == NOW
