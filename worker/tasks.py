"""Celery tasks. The queue carries doorbells; the database holds the truth."""

from __future__ import annotations

from celery import shared_task

from shared.logs import get_logger
from shared.queue import RUN_EXECUTION_TASK

log = get_logger(__name__)


@shared_task(name=RUN_EXECUTION_TASK, acks_late=True)
def run_execution(execution_id: str) -> None:
    """Claim and run one execution (the engine lands with the worker issue)."""
    log.info("execution_received", execution_id=execution_id)
