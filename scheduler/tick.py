"""The tick: claim due workflows, record their fires, advance them, then enqueue.

One tick, batch by batch, each batch one transaction:

1. ``SELECT … WHERE enabled AND next_run_at <= now ORDER BY next_run_at LIMIT n
   FOR UPDATE SKIP LOCKED`` (served by ``ix_workflows_due``: the cost is O(due), not O(defined));
2. per workflow, the fire times in ``(last_fire_at, now - jitter]``, split by the catch-up and
   overlap policies into runs, a buffered run, and skips (recorded with their reason);
3. ``INSERT … ON CONFLICT (workflow_id, scheduled_for) DO NOTHING``: a second scheduler, a retried
   Lambda or an overlapping tick can never create a second run of the same fire;
4. advance ``last_fire_at``/``next_run_at``; commit;
5. enqueue the new runs (:func:`shared.executions.dispatch`). A crash before this step loses
   nothing: the rows are ``pending`` and the sweeper sends them on the next tick.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from scheduler.bulk import Advance, PlannedRun, write
from scheduler.timing import TimingCache, WorkflowTiming, timing_documents
from shared.executions import BUFFERED, dispatch
from shared.logs import get_logger
from shared.models import Execution, Workflow
from shared.queue import ExecutionPublisher
from shared.schedule import Schedule
from shared.status import ACTIVE_STATUSES, ExecutionStatus

log = get_logger(__name__)

MAX_FIRES_PER_WORKFLOW = 1000
"""Fires enumerated per workflow per batch; a longer outage continues on the next batch."""


@dataclass
class FireReport:
    claimed: int = 0
    fired: int = 0
    buffered: int = 0
    skipped: int = 0
    enqueued: int = 0
    enqueue_failed: int = 0
    remaining: int = 0
    stopped_early: bool = False
    new_runs: list[uuid.UUID] = field(default_factory=list)

    def merge(self, other: FireReport) -> None:
        self.claimed += other.claimed
        self.fired += other.fired
        self.buffered += other.buffered
        self.skipped += other.skipped
        self.enqueued += other.enqueued
        self.enqueue_failed += other.enqueue_failed
        self.new_runs.extend(other.new_runs)


def is_due(now: datetime) -> tuple[ColumnElement[bool], ...]:
    """The due condition, written so PostgreSQL proves it against the partial index
    ``ix_workflows_due`` (``enabled AND next_run_at IS NOT NULL``): a bare ``enabled``, not
    ``enabled IS true``, which the planner cannot match and answers with a sequential scan."""
    return (
        Workflow.enabled.expression,
        Workflow.next_run_at.is_not(None),
        Workflow.next_run_at <= now,
    )


_ACTIVE_COUNTS = text(
    """
    SELECT workflow_id,
           count(*) FILTER (WHERE NOT (status = 'pending' AND reason IS NOT DISTINCT FROM
                                       'buffered')),
           count(*) FILTER (WHERE status = 'pending' AND reason IS NOT DISTINCT FROM 'buffered')
    FROM executions
    WHERE workflow_id = ANY(CAST(:ids AS bigint[]))
      AND status IN ('pending', 'queued', 'running', 'retrying')
    GROUP BY workflow_id
    """
)


def _active_counts(session: Session, ids: list[int]) -> dict[int, tuple[int, int]]:
    """(active not buffered, buffered) executions per workflow in ``ids``."""
    if not ids:
        return {}
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(_ACTIVE_COUNTS, {"ids": ids}).all()
    else:
        is_buffered = (Execution.status == ExecutionStatus.PENDING) & (Execution.reason == BUFFERED)
        rows = session.execute(
            select(
                Execution.workflow_id,
                func.sum(case((is_buffered, 0), else_=1)),
                func.sum(case((is_buffered, 1), else_=0)),
            )
            .where(Execution.workflow_id.in_(ids), Execution.status.in_(ACTIVE_STATUSES))
            .group_by(Execution.workflow_id)
        ).all()
    return {int(wid): (int(active), int(buffered)) for wid, active, buffered in rows}


Window = tuple[list[datetime], datetime | None]


class WindowMemo:
    """Fire times per (schedule, last, until) within one tick.

    Workflows that share an expression and a cursor (every ``0 * * * *`` job due this hour)
    share one computation; schedules are cached objects, so ``id`` identifies them.
    """

    def __init__(self) -> None:
        self._windows: dict[tuple[int, datetime, datetime], Window] = {}

    def window(self, schedule: Schedule, last: datetime, until: datetime) -> Window:
        key = (id(schedule), last, until)
        found = self._windows.get(key)
        if found is None:
            fires = schedule.fire_times(last, until, limit=MAX_FIRES_PER_WORKFLOW)
            following = schedule.next_after(fires[-1] if fires else last)
            found = self._windows[key] = (fires, following)
        return found


class Ticker:
    """Fires due workflows. Holds the timing cache, so keep one per process (warm Lambda)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        publisher: ExecutionPublisher | None,
        *,
        batch_size: int = 1000,
        parallelism: int = 1,
        cache: TimingCache | None = None,
    ) -> None:
        self.sessions = sessions
        self.publisher = publisher
        self.batch_size = batch_size
        self.parallelism = parallelism
        self.cache = cache or TimingCache()

    def _timings(self, session: Session, rows: list[Any]) -> dict[int, WorkflowTiming]:
        found: dict[int, WorkflowTiming] = {}
        missing: list[Any] = []
        for row in rows:
            cached = self.cache.get(row.id, row.version)
            if cached is None:
                missing.append(row)
            else:
                found[row.id] = cached
        if missing:
            for row, (document, max_attempts) in zip(
                missing, timing_documents(session, [row.id for row in missing]), strict=True
            ):
                timing = WorkflowTiming.from_document(
                    row.name, document, row.created_at, max_attempts=max_attempts
                )
                self.cache.put(row.id, row.version, timing)
                found[row.id] = timing
        return found

    def fire_batch(
        self, session: Session, now: datetime, report: FireReport, memo: WindowMemo
    ) -> int:
        """Claim up to one batch of due workflows and record their fires (caller commits)."""
        rows = list(
            session.execute(
                select(
                    Workflow.id,
                    Workflow.name,
                    Workflow.version,
                    Workflow.last_fire_at,
                    Workflow.created_at,
                )
                .where(*is_due(now))
                .order_by(Workflow.next_run_at)
                .limit(self.batch_size)
                .with_for_update(skip_locked=True)
            )
        )
        if not rows:
            return 0
        timings = self._timings(session, rows)
        # overlap: allow never looks at what is running, so it costs no query
        counts = _active_counts(
            session, [row.id for row in rows if timings[row.id].overlap.mode != "allow"]
        )
        runs: list[PlannedRun] = []
        advances: list[Advance] = []
        for row in rows:
            self._plan(row, timings[row.id], counts.get(row.id, (0, 0)), now, memo, runs, advances)
        report.claimed += len(rows)
        for ident, kind in write(session, runs, advances, now):
            if kind == "skipped":
                report.skipped += 1
            elif kind == "buffered":
                report.buffered += 1
            else:
                report.fired += 1
                report.new_runs.append(ident)
        return len(rows)

    @staticmethod
    def _plan(
        row: Any,
        timing: WorkflowTiming,
        counts: tuple[int, int],
        now: datetime,
        memo: WindowMemo,
        runs: list[PlannedRun],
        advances: list[Advance],
    ) -> None:
        schedule = timing.schedule
        last = row.last_fire_at or row.created_at
        if schedule is None:  # the schedule was removed while due: stop scheduling
            advances.append(Advance(row.id, None, last))
            return
        fires, following = memo.window(schedule, last, now - timing.jitter)
        advances.append(
            Advance(
                row.id,
                None if following is None else following + timing.jitter,
                fires[-1] if fires else last,
            )
        )
        if not fires:
            return
        catchup = timing.catchup.decide(fires, now)
        active, buffered = counts
        overlap = timing.overlap.decide(catchup.run, active=active, buffered=buffered)
        ident, name, attempts = row.id, row.name, timing.max_attempts
        pending, skipped = ExecutionStatus.PENDING, ExecutionStatus.SKIPPED
        for fire in overlap.run:
            runs.append(PlannedRun(ident, name, fire, pending, None, attempts))
        for fire in overlap.buffer:
            runs.append(PlannedRun(ident, name, fire, pending, BUFFERED, attempts))
        for fire, reason in (*catchup.skipped, *overlap.skipped):
            runs.append(PlannedRun(ident, name, fire, skipped, reason, attempts))

    def fire_due(
        self,
        now: datetime,
        *,
        time_left: Callable[[], float] | None = None,
        min_seconds_left: float = 10.0,
    ) -> FireReport:
        """Fire every due workflow, batch by batch, enqueueing after each commit.

        ``parallelism`` sessions claim batches side by side (``SKIP LOCKED`` keeps them apart),
        so the database writes one batch while Python plans the next. ``time_left`` (seconds;
        e.g. from the Lambda context) stops claiming when the invocation is about to end; what
        is still due is counted in ``remaining``.
        """
        report = FireReport()
        memo = WindowMemo()
        lock = threading.Lock()

        def claim_until_done() -> None:
            while True:
                if time_left is not None and time_left() < min_seconds_left:
                    with lock:
                        report.stopped_early = True
                    return
                batch = FireReport()
                with self.sessions() as session, session.begin():
                    claimed = self.fire_batch(session, now, batch, memo)
                if batch.new_runs and self.publisher is not None:
                    sent = dispatch(self.sessions, self.publisher, batch.new_runs, now)
                    batch.enqueued += len(sent.sent)
                    batch.enqueue_failed += len(sent.failed)
                with lock:
                    report.merge(batch)
                if claimed < self.batch_size:
                    return

        if self.parallelism == 1:
            claim_until_done()
        else:
            with ThreadPoolExecutor(self.parallelism, thread_name_prefix="tick") as pool:
                for future in [pool.submit(claim_until_done) for _ in range(self.parallelism)]:
                    future.result()
        if report.stopped_early:
            report.remaining = self.count_due(now)
        return report

    def count_due(self, now: datetime) -> int:
        with self.sessions() as session:
            return int(
                session.scalar(select(func.count()).select_from(Workflow).where(*is_due(now))) or 0
            )


def monotonic_budget(seconds: float) -> Callable[[], float]:
    """A ``time_left`` callable for a fixed budget (the local loop)."""
    deadline = time.monotonic() + seconds
    return lambda: deadline - time.monotonic()
