"""The Celery application (``worker.app:app``), built once from the settings.

Run with ``conveyor worker`` (or ``celery -A worker.app:app worker``). The execution engine's task
is registered by :mod:`worker.tasks`.
"""

from __future__ import annotations

from celery import Celery

from shared.logs import configure_logging
from shared.queue import celery_config
from shared.settings import Settings, load_settings


def create_app(settings: Settings) -> Celery:
    app = Celery("conveyor", set_as_current=True)
    app.conf.update(celery_config(settings))
    app.conf.conveyor_settings = settings
    app.conf.include = ["worker.tasks"]
    return app


settings = load_settings()
configure_logging(settings)
app = create_app(settings)
