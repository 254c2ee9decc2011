"""Celery tasks. The queue carries doorbells; the database holds the truth."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from celery.exceptions import Reject

from shared.logs import get_logger
from shared.queue import RUN_EXECUTION_TASK
from shared.settings import Settings
from worker.runtime import get_runtime

log = get_logger(__name__)


@shared_task(name=RUN_EXECUTION_TASK, bind=True, acks_late=True, ignore_result=True)
def run_execution(self: Any, execution_id: str) -> str:
    """Claim and run one execution (:class:`worker.engine.ExecutionEngine`).

    Every outcome the engine returns (including duplicates and retries it scheduled itself) acks
    the message. An unexpected error (the database is down, a bug) rejects it without requeue:
    with the queue's redrive policy SQS redelivers it after the visibility timeout and, after
    ``maxReceiveCount`` receipts, moves it to the dead-letter queue.
    """
    settings: Settings = self.app.conf.conveyor_settings
    try:
        return get_runtime(settings).engine.handle(execution_id).value
    except Exception as exc:
        log.exception("execution_crashed", execution_id=execution_id)
        raise Reject(f"{type(exc).__name__}: {exc}", requeue=False) from exc
