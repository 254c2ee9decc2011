"""Fleet commands: ``conveyor workers status|scale|resume`` (ECS) and ``conveyor dlq list|redrive``.

Also :func:`worker_check`, the body of ``conveyor worker --check`` (the container health check).
The logic lives in :mod:`shared.fleet`; this module parses flags and prints.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from conveyor_cli.context import (
    EXIT_FAILED,
    EXIT_OK,
    CliContext,
    emit_json,
    now_utc,
    pass_state,
)
from shared.errors import ConfigurationError
from shared.fleet import (
    NO_DATABASE,
    DlqListing,
    EcsService,
    FleetClients,
    FleetStatus,
    RedriveReport,
    ScaleResult,
    alive_max_age,
    check_alive_file,
    database_configured,
    fleet_status,
    list_dead_letters,
    redrive_dead_letters,
    require_dlq_url,
    resume_autoscaling,
    scale_service,
)
from shared.settings import Settings


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


# ------------------------------------------------------------------------------ workers


@click.group("workers")
def workers() -> None:
    """The worker fleet on ECS: counts, backlog, scaling (CONVEYOR_ECS_CLUSTER/_SERVICE)."""


def _print_status(status: FleetStatus) -> None:
    s = status.service
    click.echo(
        f"{'service':9} {s.cluster}/{s.service}  {s.status}  desired {s.desired}  "
        f"running {s.running}  pending {s.pending}"
        + (f"  ({s.deployments} deployments: rolling out)" if s.deployments > 1 else "")
    )
    if status.scaling is not None:
        click.echo(
            f"{'scaling':9} min {status.scaling.minimum}  max {status.scaling.maximum}  "
            f"autoscaling {status.scaling.dynamic_scaling}"
        )
    else:
        click.echo(f"{'scaling':9} no autoscaling target")
    if status.queue is not None:
        q = status.queue
        oldest = status.oldest
        age = "unknown" if oldest is None or oldest.seconds is None else _age(oldest.seconds)
        click.echo(
            f"{'queue':9} visible {q.visible}  in flight {q.in_flight}  delayed {q.delayed}  "
            f"oldest {age}"
        )
    if status.dlq is not None:
        click.echo(f"{'dlq':9} {status.dlq.visible + status.dlq.in_flight}")
    if status.running is not None:
        total = sum(load.running for load in status.running)
        click.echo(f"{'running':9} {total} execution{'s' if total != 1 else ''}")
        if status.running:
            width = max(24, *(len(load.worker_id or "-") for load in status.running))
            click.echo(f"  {'WORKER':{width}}  RUNNING")
            for load in status.running:
                click.echo(f"  {(load.worker_id or '-'):{width}}  {load.running:7d}")
    if status.oldest is not None and status.oldest.seconds is None:
        click.echo(f"note: oldest message age {status.oldest.note}")
    for note in status.notes:
        click.echo(f"note: {note}")


@workers.command("status")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def workers_status(state: CliContext, as_json: bool) -> None:
    """ECS task counts, queue backlog and oldest message, DLQ depth, running executions."""
    sessions = state.sessions if database_configured(state.settings) else None
    status = fleet_status(state.settings, FleetClients(state.settings), sessions, now_utc())
    if as_json:
        emit_json(status.to_json())
    else:
        _print_status(status)


def _print_scale(result: ScaleResult) -> None:
    previous = result.service.desired
    change = "unchanged" if previous == result.desired else f"{previous} -> {result.desired}"
    click.echo(
        f"{result.service.cluster}/{result.service.service}: desired count {change} "
        f"(allowed [{result.bounds.minimum}, {result.bounds.maximum}] from {result.bounds.source})"
    )
    click.echo(f"note: {result.note}")


@workers.command("scale")
@click.argument("count", type=click.IntRange(min=0))
@click.option("--min", "minimum", type=click.IntRange(min=0), help="Lowest allowed count.")
@click.option("--max", "maximum", type=click.IntRange(min=0), help="Highest allowed count.")
@click.option(
    "--hold",
    is_flag=True,
    help="Also suspend target-tracking autoscaling so the count stays (undo: workers resume).",
)
@click.option("--json", "as_json", is_flag=True)
@pass_state
def workers_scale(
    state: CliContext,
    count: int,
    minimum: int | None,
    maximum: int | None,
    hold: bool,
    as_json: bool,
) -> None:
    """Set the number of worker tasks, within the autoscaling target's [min, max].

    --min/--max give the range when the service has no scalable target (they must match the
    target when it has one).
    """
    target = EcsService.from_settings(state.settings)
    result = scale_service(
        FleetClients(state.settings),
        target,
        count,
        minimum=minimum,
        maximum=maximum,
        hold=hold,
    )
    if as_json:
        emit_json(result.to_json())
    else:
        _print_scale(result)


@workers.command("resume")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def workers_resume(state: CliContext, as_json: bool) -> None:
    """Resume target-tracking autoscaling suspended by `workers scale --hold`."""
    target = EcsService.from_settings(state.settings)
    scaling = resume_autoscaling(FleetClients(state.settings), target)
    if as_json:
        emit_json(scaling.to_json())
    else:
        click.echo(
            f"{scaling.resource_id}: autoscaling {scaling.dynamic_scaling} "
            f"(min {scaling.minimum}, max {scaling.maximum})"
        )


# ------------------------------------------------------------------------------ dlq


@click.group("dlq")
def dlq() -> None:
    """The dead-letter queue (CONVEYOR_DLQ_URL): inspect and replay."""


def _print_listing(listing: DlqListing) -> None:
    if not listing.items:
        click.echo("the dead-letter queue is empty")
    else:
        click.echo(
            f"{'EXECUTION':36}  {'STATUS':10} {'WORKFLOW':20} {'RECV':>4}  {'SENT':20} MESSAGE"
        )
    for letter in listing.items:
        execution = letter.execution
        if letter.execution_id is None:
            ident, status, workflow = "-", "-", letter.problem or "-"
        else:
            ident = str(letter.execution_id)
            if execution is not None:
                status = execution.status.value
            else:
                status = "unknown" if listing.joined else "-"
            workflow = (execution.workflow or "-") if execution is not None else "-"
        sent = "-" if letter.sent_at is None else letter.sent_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        receives = "-" if letter.receive_count is None else str(letter.receive_count)
        click.echo(
            f"{ident:36}  {status:10} {workflow:20} {receives:>4}  {sent:20} {letter.message_id}"
        )
    if listing.depth > len(listing.items):
        click.echo(f"showing {len(listing.items)} of about {listing.depth} (--limit)")
    for note in listing.notes:
        click.echo(f"note: {note}")


@dlq.command("list")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True)
@pass_state
def dlq_list(state: CliContext, limit: int, as_json: bool) -> None:
    """Show dead letters (not consumed: they are made visible again) with their executions."""
    url = require_dlq_url(state.settings)
    sessions = state.sessions if database_configured(state.settings) else None
    listing = list_dead_letters(FleetClients(state.settings).sqs, url, sessions, limit=limit)
    if as_json:
        emit_json(listing.to_json())
    else:
        _print_listing(listing)


_VERB = {
    "redriven": ("redriven", "would redrive"),
    "already_finished": ("deleted: already finished", "would delete: already finished"),
    "duplicate": ("deleted: duplicate", "would delete: duplicate"),
    "left_to_scheduler": ("deleted: the scheduler sends it", "would delete: scheduler sends it"),
    "unknown_execution": ("kept: unknown execution", "would keep: unknown execution"),
    "not_a_doorbell": ("kept: not a doorbell", "would keep: not a doorbell"),
    "send_failed": ("kept: send failed", "would keep: send failed"),
}


def _print_redrive(report: RedriveReport) -> None:
    for item in report.items:
        ident = item.letter.execution_id or f"message {item.letter.message_id}"
        verb = _VERB[item.action.value][1 if report.dry_run else 0]
        click.echo(f"{ident}  {verb}" + (f" ({item.detail})" if item.detail else ""))
    for ident in report.not_found:
        click.echo(f"{ident}  not in the dead-letter queue")
    counts = {k: v for k, v in report.counts().items() if v}
    summary = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()) or "nothing"
    click.echo(("dry run: " if report.dry_run else "") + summary)


@dlq.command("redrive")
@click.argument("ids", nargs=-1)
@click.option("--all", "select_all", is_flag=True, help="Every dead letter.")
@click.option("--dry-run", is_flag=True, help="Say what would happen; change nothing.")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def dlq_redrive(
    state: CliContext, ids: tuple[str, ...], select_all: bool, dry_run: bool, as_json: bool
) -> None:
    """Replay dead letters (IDS: execution or message ids, or --all) to the execution queue.

    A fresh doorbell is sent for each execution that has not finished; a finished execution's
    dead letter is only deleted. Safe to re-run.
    """
    url = require_dlq_url(state.settings)
    publisher = state.publisher
    if publisher is None:
        raise ConfigurationError("CONVEYOR_QUEUE_URL is not set: redrive sends doorbells there")
    if not database_configured(state.settings):
        raise ConfigurationError(
            f"{NO_DATABASE}: redrive decides from the executions in the database"
        )
    report = redrive_dead_letters(
        FleetClients(state.settings).sqs,
        url,
        state.sessions,
        publisher,
        ids=ids,
        select_all=select_all,
        dry_run=dry_run,
        now=now_utc(),
    )
    if as_json:
        emit_json(report.to_json())
    else:
        _print_redrive(report)
    if report.failed:
        sys.exit(EXIT_FAILED)


# ------------------------------------------------------------------------------ health check


def worker_check(settings: Settings) -> NoReturn:
    """``conveyor worker --check``: exit 0 while the worker's alive file is fresh, else 1."""
    result = check_alive_file(settings.worker_alive_file, alive_max_age(settings))
    click.echo(result.message, err=not result.healthy)
    sys.exit(EXIT_OK if result.healthy else EXIT_FAILED)
