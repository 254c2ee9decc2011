"""``conveyor``: the command-line composition root. Nothing imports this package.

Exit codes: 0 success, 1 a run or operation failed, 2 invalid input (bad file, flag or name),
3 configuration error.
"""

from __future__ import annotations

from typing import Any

import click

from conveyor_cli.context import CliContext, fail
from shared.errors import ConveyorError
from shared.logs import configure_logging
from shared.settings import read_settings


class ConveyorGroup(click.Group):
    """Turns every ConveyorError raised by a command into a message and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConveyorError as error:
            fail(error)


@click.group(cls=ConveyorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="conveyor", prog_name="conveyor")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Conveyor: cron workflows and on-demand tasks on AWS (Celery on SQS, PostgreSQL)."""
    settings = read_settings()  # secrets are resolved when a command first needs them
    configure_logging(settings)
    state = CliContext(settings)
    ctx.obj = state
    ctx.call_on_close(state.close)


def _register() -> None:
    from conveyor_cli.api import api_command  # noqa: PLC0415
    from conveyor_cli.apikeys import apikey  # noqa: PLC0415
    from conveyor_cli.database import db  # noqa: PLC0415
    from conveyor_cli.dev import dev_command  # noqa: PLC0415
    from conveyor_cli.executions import executions  # noqa: PLC0415
    from conveyor_cli.fleet import dlq, workers  # noqa: PLC0415
    from conveyor_cli.scheduler import scheduler  # noqa: PLC0415
    from conveyor_cli.schedules import schedule  # noqa: PLC0415
    from conveyor_cli.tasks import task  # noqa: PLC0415
    from conveyor_cli.workers import worker_command  # noqa: PLC0415
    from conveyor_cli.workflows import workflow  # noqa: PLC0415

    for command in (
        db,
        workflow,
        schedule,
        scheduler,
        executions,
        worker_command,
        task,
        apikey,
        api_command,
        dev_command,
        workers,
        dlq,
    ):
        cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="conveyor")


if __name__ == "__main__":
    main()
