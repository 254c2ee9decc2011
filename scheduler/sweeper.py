"""The sweeper, run on every tick: nothing committed is ever lost between the database and SQS.

* **Dead workers**: a ``running`` execution whose lease expired is recovered (back to the queue)
  while attempts remain, timed out when its deadline passed, and failed with a clear error
  otherwise.
* **Outbox**: ``pending`` executions that were committed but never sent (a crash or an SQS error
  between commit and enqueue) are sent.
* **Delayed retries**: ``retrying`` executions whose delay exceeded SQS's 900 s are sent once
  they are within 900 s of their ``not_before`` (with the remaining delay).
* **Buffered runs** (``overlap: buffer_one``) are released when their workflow is idle.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from shared.executions import BUFFERED, dispatch, record_event, release_buffered
from shared.models import Execution
from shared.queue import SQS_MAX_DELAY_SECONDS, ExecutionPublisher
from shared.status import ExecutionStatus


@dataclass
class SweepReport:
    recovered: int = 0
    lost: int = 0
    timed_out: int = 0
    resent: int = 0
    released_retries: int = 0
    released_buffered: int = 0
    send_failed: int = 0

    def total(self) -> int:
        return self.recovered + self.lost + self.timed_out + self.resent + self.released_retries


class Sweeper:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        publisher: ExecutionPublisher | None,
        *,
        recovery_attempts: int = 3,
        outbox_grace: timedelta = timedelta(seconds=30),
        batch_size: int = 1000,
    ) -> None:
        self.sessions = sessions
        self.publisher = publisher
        self.recovery_attempts = recovery_attempts
        self.outbox_grace = outbox_grace
        self.batch_size = batch_size

    def _recover_expired(
        self, session: Session, now: datetime, report: SweepReport
    ) -> list[uuid.UUID]:
        requeued: list[uuid.UUID] = []
        expired = session.scalars(
            select(Execution)
            .where(Execution.status == ExecutionStatus.RUNNING, Execution.lease_expires_at < now)
            .order_by(Execution.lease_expires_at)
            .limit(self.batch_size)
            .with_for_update(skip_locked=True)
        )
        for execution in expired:
            lost_for = now - (execution.lease_expires_at or now)
            if execution.deadline_at is not None and execution.deadline_at <= now:
                self._finish(
                    session,
                    execution,
                    status=ExecutionStatus.TIMED_OUT,
                    now=now,
                    kind="timed_out",
                    message="the execution's deadline passed while its worker was unresponsive",
                )
                report.timed_out += 1
            elif execution.attempt >= execution.max_attempts + self.recovery_attempts:
                self._finish(
                    session,
                    execution,
                    status=ExecutionStatus.FAILED,
                    now=now,
                    kind="worker_lost",
                    message=f"its worker stopped heartbeating and all {execution.attempt} "
                    "attempts are used",
                )
                report.lost += 1
            else:
                execution.status = ExecutionStatus.PENDING
                execution.worker_id = None
                execution.lease_expires_at = None
                execution.updated_at = now
                record_event(
                    session,
                    execution.id,
                    "recovered",
                    f"worker lease expired {lost_for.total_seconds():.0f}s ago; requeued",
                    at=now,
                    attempt=execution.attempt,
                )
                report.recovered += 1
                requeued.append(execution.id)
        return requeued

    @staticmethod
    def _finish(
        session: Session,
        execution: Execution,
        *,
        status: ExecutionStatus,
        now: datetime,
        kind: str,
        message: str,
    ) -> None:
        execution.status = status
        execution.error = {"type": kind, "message": message}
        execution.finished_at = now
        execution.updated_at = now
        execution.lease_expires_at = None
        record_event(session, execution.id, status.value, message, at=now)

    def sweep(self, now: datetime) -> SweepReport:
        report = SweepReport()
        with self.sessions() as session, session.begin():
            requeued = self._recover_expired(session, now, report)
            released = release_buffered(session, now)
            report.released_buffered = len(released)
        stale = now - self.outbox_grace
        with self.sessions() as session:
            unsent = list(
                session.scalars(
                    select(Execution.id)
                    .where(
                        Execution.status == ExecutionStatus.PENDING,
                        or_(Execution.reason.is_(None), Execution.reason != BUFFERED),
                        Execution.updated_at <= stale,
                    )
                    .limit(self.batch_size)
                )
            )
            retries = list(
                session.execute(
                    select(Execution.id, Execution.not_before)
                    .where(
                        Execution.status == ExecutionStatus.RETRYING,
                        Execution.updated_at <= stale,
                        or_(
                            Execution.not_before.is_(None),
                            Execution.not_before <= now + timedelta(seconds=SQS_MAX_DELAY_SECONDS),
                        ),
                    )
                    .limit(self.batch_size)
                )
            )
        ids = [*requeued, *released, *unsent, *(ident for ident, _ in retries)]
        delays = {
            ident: max(0, math.ceil((not_before - now).total_seconds()))
            for ident, not_before in retries
            if not_before is not None
        }
        report.resent = len(unsent)
        report.released_retries = len(retries)
        if ids and self.publisher is not None:
            sent = dispatch(
                self.sessions, self.publisher, list(dict.fromkeys(ids)), now, delays=delays
            )
            report.send_failed = len(sent.failed)
        return report
