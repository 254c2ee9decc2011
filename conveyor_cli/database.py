"""Schema commands: ``conveyor db upgrade``."""

from __future__ import annotations

import click

from conveyor_cli.context import CliContext, pass_state


@click.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@pass_state
def db_upgrade(state: CliContext, revision: str) -> None:
    """Apply the migrations up to REVISION."""
    import migrations  # noqa: PLC0415

    migrations.upgrade(state.settings.resolved_database_url, revision)
    click.echo(f"database at {revision}")
