"""Worker commands: ``conveyor worker``."""

from __future__ import annotations

import click

from conveyor_cli.context import CliContext, pass_state


@click.command("worker")
@click.option("--concurrency", type=click.IntRange(1, 256), help="Processes (default: settings).")
@click.option("--loglevel", default="INFO", show_default=True)
@click.option(
    "--check",
    is_flag=True,
    help="Health check: exit 0 while the worker's alive file is fresh, else 1.",
)
@pass_state
def worker_command(state: CliContext, concurrency: int | None, loglevel: str, check: bool) -> None:
    """Run a Celery worker consuming the execution queue (warm shutdown on SIGTERM)."""
    if check:
        from conveyor_cli.fleet import worker_check  # noqa: PLC0415

        # reads only the local file: no secret lookups, no database, no AWS call
        worker_check(state.raw_settings)
    from worker.app import app  # noqa: PLC0415

    argv = [
        "worker",
        "--loglevel",
        loglevel,
        "--without-heartbeat",
        "--without-gossip",
        "--without-mingle",
    ]
    if concurrency:
        argv += ["--concurrency", str(concurrency)]
    app.worker_main(argv)
