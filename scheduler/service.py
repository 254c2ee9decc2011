"""The scheduler as one object: sweep, fire what is due, publish the backlog metric.

Built once per process (Lambda container, local loop) from the settings; ``tick(now)`` is the
unit the handler, the CLI and the tests call.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TextIO

from sqlalchemy.orm import Session, sessionmaker

from scheduler.metrics import BacklogSample, emf_line, sample_backlog
from scheduler.sweeper import Sweeper, SweepReport
from scheduler.tick import FireReport, Ticker
from shared.logs import get_logger
from shared.models import iso
from shared.queue import ExecutionPublisher
from shared.settings import Settings

log = get_logger(__name__)


@dataclass
class TickReport:
    now: datetime
    fire: FireReport
    sweep: SweepReport
    backlog: BacklogSample | None = None
    duration_ms: float = 0.0
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "now": iso(self.now),
            "claimed": self.fire.claimed,
            "fired": self.fire.fired,
            "skipped": self.fire.skipped,
            "buffered": self.fire.buffered,
            "enqueued": self.fire.enqueued,
            "enqueue_failed": self.fire.enqueue_failed,
            "remaining": self.fire.remaining,
            "stopped_early": self.fire.stopped_early,
            "swept": {
                "recovered": self.sweep.recovered,
                "lost": self.sweep.lost,
                "timed_out": self.sweep.timed_out,
                "resent": self.sweep.resent,
                "released_retries": self.sweep.released_retries,
                "released_buffered": self.sweep.released_buffered,
                "send_failed": self.sweep.send_failed,
            },
            "backlog": None if self.backlog is None else self.backlog.to_json(),
            "duration_ms": round(self.duration_ms, 1),
            "errors": self.errors,
        }


class SchedulerService:
    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        publisher: ExecutionPublisher | None,
        *,
        ecs_client: Any = None,
        metrics_out: TextIO | None = None,
    ) -> None:
        self.settings = settings
        self.publisher = publisher
        self.ticker = Ticker(
            sessions,
            publisher,
            batch_size=settings.tick_batch_size,
            parallelism=settings.tick_parallelism,
        )
        self.sweeper = Sweeper(
            sessions,
            publisher,
            recovery_attempts=settings.recovery_attempts,
            outbox_grace=timedelta(seconds=settings.outbox_grace_seconds),
        )
        self.ecs_client = ecs_client
        self.metrics_out = metrics_out or sys.stdout

    def close(self) -> None:
        """Release the database connections the service's sessions hold."""
        bind = self.ticker.sessions.kw.get("bind")
        if bind is not None:
            bind.dispose()

    def tick(self, now: datetime, *, time_left: Callable[[], float] | None = None) -> TickReport:
        started = time.perf_counter()
        sweep = self.sweeper.sweep(now)
        fire = self.ticker.fire_due(now, time_left=time_left)
        report = TickReport(now=now, fire=fire, sweep=sweep)
        report.backlog = self._publish_backlog(now, report)
        report.duration_ms = (time.perf_counter() - started) * 1000
        log.info("tick_finished", **report.to_json())
        return report

    def _publish_backlog(self, now: datetime, report: TickReport) -> BacklogSample | None:
        if self.publisher is None or not self.settings.publish_backlog_metric:
            return None
        try:
            sample = sample_backlog(
                self.publisher.sqs,
                self.publisher.queue_url,
                ecs=self.ecs_client,
                cluster=self.settings.ecs_cluster,
                service=self.settings.ecs_service,
            )
        except Exception as exc:  # a metric must never fail the tick
            report.errors.append(f"backlog metric: {type(exc).__name__}: {exc}")
            log.warning("backlog_metric_failed", error=str(exc))
            return None
        service = self.settings.ecs_service or "conveyor-worker"
        print(emf_line(sample, service=service, now=now), file=self.metrics_out, flush=True)
        return sample
