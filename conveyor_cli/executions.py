"""Execution commands: ``conveyor executions list`` and ``cancel``."""

from __future__ import annotations

import click

from conveyor_cli.context import CliContext, emit_json, now_utc, pass_state
from shared.status import ExecutionStatus


@click.group()
def executions() -> None:
    """Inspect and cancel executions."""


@executions.command("list")
@click.option("--workflow", help="Only runs of this workflow.")
@click.option("--status", type=click.Choice([s.value for s in ExecutionStatus]))
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 500))
@click.option("--cursor", help="Continue after a previous page (printed with --json).")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def executions_list(
    state: CliContext,
    workflow: str | None,
    status: str | None,
    limit: int,
    cursor: str | None,
    as_json: bool,
) -> None:
    """List executions, newest first."""
    from shared.executions import describe_execution, list_executions  # noqa: PLC0415

    with state.transaction() as session:
        page, next_cursor = list_executions(
            session,
            workflow=workflow,
            status=ExecutionStatus(status) if status else None,
            limit=limit,
            cursor=cursor,
        )
        items = [describe_execution(execution) for execution in page]
    if as_json:
        emit_json({"items": items, "next_cursor": next_cursor})
        return
    if not items:
        click.echo("no executions")
        return
    click.echo(f"{'ID':36}  {'WORKFLOW':24} {'TRIGGER':9} {'SCHEDULED FOR':21} STATUS")
    for item in items:
        status_text = item["status"] + (f" ({item['reason']})" if item["reason"] else "")
        click.echo(
            f"{item['id']:36}  {(item['workflow'] or '-'):24} {item['trigger']:9} "
            f"{(item['scheduled_for'] or '-'):21} {status_text}"
        )
    if next_cursor:
        click.echo(f"more: --cursor {next_cursor}")


@executions.command("cancel")
@click.argument("execution_id")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def executions_cancel(state: CliContext, execution_id: str, as_json: bool) -> None:
    """Cancel an execution (a running step stops at its next checkpoint)."""
    from shared.executions import cancel_execution, describe_execution  # noqa: PLC0415

    with state.transaction() as session:
        item = describe_execution(cancel_execution(session, execution_id, now_utc()))
    if as_json:
        emit_json(item)
    elif item["status"] == ExecutionStatus.RUNNING:
        click.echo(f"cancellation requested for {execution_id} (running: stops at a checkpoint)")
    else:
        click.echo(f"{execution_id}: {item['status']}")
