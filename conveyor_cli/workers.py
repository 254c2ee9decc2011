"""Worker commands: ``conveyor worker``."""

from __future__ import annotations

import click


@click.command("worker")
@click.option("--concurrency", type=click.IntRange(1, 256), help="Processes (default: settings).")
@click.option("--loglevel", default="INFO", show_default=True)
def worker_command(concurrency: int | None, loglevel: str) -> None:
    """Run a Celery worker consuming the execution queue (warm shutdown on SIGTERM)."""
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
