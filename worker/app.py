"""The Celery application (``worker.app:app``), built once from the settings.

Run with ``conveyor worker`` (or ``celery -A worker.app:app worker``). The execution engine's task
is registered by :mod:`worker.tasks`. Broker ``sqs://`` with predefined queues, late acks,
prefetch 1, ``task_reject_on_worker_lost``, no remote control, no events, no result backend (see
:func:`shared.queue.celery_config`); SIGTERM is Celery's warm shutdown (running executions
finish, nothing new is taken).
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_process_init, worker_process_shutdown

from shared.fleet import alive_file_step
from shared.logs import configure_logging
from shared.queue import celery_config
from shared.settings import Settings, load_settings


def create_app(settings: Settings) -> Celery:
    app = Celery("conveyor", set_as_current=True)
    app.conf.update(celery_config(settings))
    app.conf.conveyor_settings = settings
    app.conf.include = ["worker.tasks"]
    # Logging is structlog's, to stderr; Celery's stdout/stderr redirection would route our
    # handler's output back into logging (and lose it to its recursion guard).
    app.conf.worker_redirect_stdouts = False
    # the container health check (`conveyor worker --check`) reads the file this step touches
    app.steps["worker"].add(alive_file_step(settings))
    return app


@worker_init.connect
def _load_functions(**_: Any) -> None:
    """Import the python-step functions in the main process: a bad module fails the start."""
    from worker.registry import load_functions  # noqa: PLC0415

    load_functions(settings.function_modules)


@worker_process_init.connect
def _fresh_runtime(**_: Any) -> None:
    """A prefork child starts without the parent's connections."""
    from worker.runtime import reset_runtime  # noqa: PLC0415

    reset_runtime()


@worker_process_shutdown.connect
def _close_runtime(**_: Any) -> None:
    from worker.runtime import reset_runtime  # noqa: PLC0415

    reset_runtime()


settings = load_settings()
configure_logging(settings)
app = create_app(settings)
