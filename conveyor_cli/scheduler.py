"""Scheduler commands: ``conveyor scheduler tick`` (one tick) and ``run`` (a local loop)."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

import click

from conveyor_cli.context import CliContext, emit_json, now_utc, parse_instant, pass_state


@click.group()
def scheduler() -> None:
    """Fire due workflows and sweep the outbox (what the scheduler Lambda does every minute)."""


@scheduler.command("tick")
@click.option("--now", "now_text", help="ISO 8601 instant to tick at (default: the clock).")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@pass_state
def scheduler_tick(state: CliContext, now_text: str | None, as_json: bool) -> None:
    """Run one tick: sweep, fire what is due, enqueue."""
    from scheduler.service import SchedulerService  # noqa: PLC0415

    service = SchedulerService(
        state.settings, state.sessions, state.publisher, metrics_out=sys.stderr
    )
    report = service.tick(parse_instant(now_text, option="--now") or now_utc()).to_json()
    if as_json:
        emit_json(report)
        return
    swept = sum(v for v in report["swept"].values())
    click.echo(
        f"claimed {report['claimed']}, fired {report['fired']}, skipped {report['skipped']}, "
        f"enqueued {report['enqueued']}, swept {swept} in {report['duration_ms']} ms"
    )


@scheduler.command("run")
@click.option(
    "--interval",
    default=60.0,
    show_default=True,
    type=click.FloatRange(0.1, 3600),
    help="Seconds between ticks.",
)
@pass_state
def scheduler_run(state: CliContext, interval: float) -> None:
    """Tick every --interval seconds until interrupted (SIGINT/SIGTERM)."""
    from scheduler.service import SchedulerService  # noqa: PLC0415
    from shared.logs import get_logger  # noqa: PLC0415

    log = get_logger("conveyor.scheduler")
    service = SchedulerService(
        state.settings, state.sessions, state.publisher, metrics_out=sys.stderr
    )
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("scheduler_stopping", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    log.info("scheduler_started", interval=interval)
    while not stop.is_set():
        try:
            service.tick(now_utc())
        except Exception as exc:  # a failed tick is logged; the next one retries
            log.exception("tick_failed", error=str(exc))
        stop.wait(interval)
    log.info("scheduler_stopped")
