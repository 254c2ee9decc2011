"""Workflow commands: apply, list, show, pause, resume, delete."""

from __future__ import annotations

from pathlib import Path

import click

from conveyor_cli.context import (
    CliContext,
    emit_json,
    now_utc,
    parse_json_object,
    pass_state,
    require_instant,
)


@click.group()
def workflow() -> None:
    """Define and manage workflows."""


@workflow.command("apply")
@click.option(
    "-f",
    "--file",
    "path",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="A definition file (YAML/JSON) or a directory of them.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_state
def workflow_apply(state: CliContext, path: Path, as_json: bool) -> None:
    """Create or update workflows from FILE or every file in DIR (all or nothing)."""
    from shared.catalog import apply_definitions  # noqa: PLC0415
    from shared.definition import load_definition_files  # noqa: PLC0415

    loaded = load_definition_files(path)
    with state.transaction() as session:
        results = apply_definitions(session, [definition for _, definition in loaded], now_utc())
    if as_json:
        emit_json([result.to_json() for result in results])
        return
    for result in results:
        when = result.next_run_at.isoformat() if result.next_run_at else "on demand"
        click.echo(f"{result.action:9} {result.name} (v{result.version}, next run: {when})")


@workflow.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def workflow_list(state: CliContext, as_json: bool) -> None:
    """List workflows."""
    from shared.catalog import active_counts, describe, list_workflows  # noqa: PLC0415

    with state.transaction() as session:
        active = active_counts(session)
        items = [describe(w, active=active.get(w.id, 0)) for w in list_workflows(session)]
    if as_json:
        emit_json(items)
        return
    if not items:
        click.echo("no workflows (apply some with: conveyor workflow apply -f FILE)")
        return
    click.echo(f"{'NAME':28} {'ENABLED':7} {'SCHEDULE':28} {'NEXT RUN':26} ACTIVE")
    for item in items:
        click.echo(
            f"{item['name']:28} {'yes' if item['enabled'] else 'no':7} "
            f"{item['schedule'] or '-':28} {item['next_run_at'] or '-':26} "
            f"{item['active_executions']}"
        )


@workflow.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def workflow_show(state: CliContext, name: str, as_json: bool) -> None:
    """Show a workflow and its definition."""
    import yaml  # noqa: PLC0415

    from shared.catalog import describe, get_workflow  # noqa: PLC0415

    with state.transaction() as session:
        found = get_workflow(session, name)
        item = describe(found)
        item["definition"] = found.definition
    if as_json:
        emit_json(item)
        return
    for key, value in item.items():
        if key != "definition":
            click.echo(f"{key}: {value}")
    click.echo("definition:")
    click.echo(yaml.safe_dump(item["definition"], sort_keys=False, indent=2).rstrip())


def _set_enabled(state: CliContext, name: str, enabled: bool, as_json: bool) -> None:
    from shared.catalog import describe, set_enabled  # noqa: PLC0415

    with state.transaction() as session:
        item = describe(set_enabled(session, name, enabled, now_utc()))
    if as_json:
        emit_json(item)
    else:
        state_word = "resumed" if enabled else "paused"
        click.echo(f"{state_word} {name} (next run: {item['next_run_at'] or '-'})")


@workflow.command("pause")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def workflow_pause(state: CliContext, name: str, as_json: bool) -> None:
    """Stop scheduling NAME (running executions finish)."""
    _set_enabled(state, name, False, as_json)


@workflow.command("resume")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def workflow_resume(state: CliContext, name: str, as_json: bool) -> None:
    """Schedule NAME again from now on (missed fire times are not replayed)."""
    _set_enabled(state, name, True, as_json)


@workflow.command("delete")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def workflow_delete(state: CliContext, name: str, as_json: bool) -> None:
    """Delete NAME (its past executions are kept)."""
    from shared.catalog import delete_workflow  # noqa: PLC0415

    with state.transaction() as session:
        delete_workflow(session, name)
    if as_json:
        emit_json({"name": name, "deleted": True})
    else:
        click.echo(f"deleted {name}")


@workflow.command("trigger")
@click.argument("name")
@click.option("--input", "input_json", help="JSON object merged over the workflow's input.")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def workflow_trigger(state: CliContext, name: str, input_json: str | None, as_json: bool) -> None:
    """Start a run of NAME now; prints the new execution id."""
    from shared.executions import start_workflow  # noqa: PLC0415
    from shared.status import Trigger  # noqa: PLC0415

    run_input = parse_json_object(input_json, option="--input")
    with state.transaction() as session:
        created = start_workflow(
            session, name, trigger=Trigger.MANUAL, now=now_utc(), run_input=run_input
        )
        execution_id = created.id
    note = state.dispatch([execution_id])
    if as_json:
        emit_json({"id": str(execution_id), "workflow": name, "note": note})
    else:
        click.echo(str(execution_id))
        if note:
            click.echo(note, err=True)


@workflow.command("backfill")
@click.argument("name")
@click.option("--from", "start", required=True, help="ISO 8601 (inclusive).")
@click.option("--to", "end", required=True, help="ISO 8601 (inclusive).")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def workflow_backfill(state: CliContext, name: str, start: str, end: str, as_json: bool) -> None:
    """One execution per fire time of NAME in [--from, --to]; running it twice adds nothing."""
    from shared.executions import backfill  # noqa: PLC0415

    begin = require_instant(start, option="--from")
    finish = require_instant(end, option="--to")
    with state.transaction() as session:
        created, existing = backfill(session, name, begin, finish, now_utc())
    note = state.dispatch(created)
    if as_json:
        emit_json({"created": [str(i) for i in created], "existing": existing, "note": note})
    else:
        click.echo(f"created {len(created)} execution(s), {existing} already existed")
        if note:
            click.echo(note, err=True)
