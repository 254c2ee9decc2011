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

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from scheduler.timing import TimingCache, WorkflowTiming
from shared.executions import BUFFERED, dispatch
from shared.logs import get_logger
from shared.models import Execution, ExecutionEvent, Workflow
from shared.queue import ExecutionPublisher
from shared.status import ACTIVE_STATUSES, ExecutionStatus, Trigger

log = get_logger(__name__)

MAX_FIRES_PER_WORKFLOW = 1000
"""Fires enumerated per workflow per batch; a longer outage continues on the next batch."""

workflows_table: Table = Workflow.__table__  # type: ignore[assignment]
executions_table: Table = Execution.__table__  # type: ignore[assignment]
events_table: Table = ExecutionEvent.__table__  # type: ignore[assignment]


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


def _insert(session: Session) -> Any:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(executions_table).on_conflict_do_nothing(
        index_elements=["workflow_id", "scheduled_for"]
    )


def _active_counts(session: Session, ids: list[int]) -> dict[int, tuple[int, int]]:
    """(active not buffered, buffered) executions per workflow in ``ids``."""
    is_buffered = (Execution.status == ExecutionStatus.PENDING) & (Execution.reason == BUFFERED)
    rows = session.execute(
        select(
            Execution.workflow_id,
            func.sum(case((is_buffered, 0), else_=1)),
            func.sum(case((is_buffered, 1), else_=0)),
        )
        .where(Execution.workflow_id.in_(ids), Execution.status.in_(ACTIVE_STATUSES))
        .group_by(Execution.workflow_id)
    )
    return {int(wid): (int(active), int(buffered)) for wid, active, buffered in rows}


class Ticker:
    """Fires due workflows. Holds the timing cache, so keep one per process (warm Lambda)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        publisher: ExecutionPublisher | None,
        *,
        batch_size: int = 500,
        cache: TimingCache | None = None,
    ) -> None:
        self.sessions = sessions
        self.publisher = publisher
        self.batch_size = batch_size
        self.cache = cache or TimingCache()

    def _timings(
        self, session: Session, rows: list[Any]
    ) -> dict[int, tuple[WorkflowTiming, dict[str, Any]]]:
        found: dict[int, tuple[WorkflowTiming, dict[str, Any]]] = {}
        missing: list[Any] = []
        for row in rows:
            cached = self.cache.get(row.id, row.version)
            if cached is None:
                missing.append(row)
            else:
                found[row.id] = cached
        if missing:
            documents: dict[int, dict[str, Any]] = {
                ident: document
                for ident, document in session.execute(
                    select(Workflow.id, Workflow.definition).where(
                        Workflow.id.in_([row.id for row in missing])
                    )
                )
            }
            for row in missing:
                document = documents[row.id]
                timing = WorkflowTiming.from_document(row.name, document, row.created_at)
                self.cache.put(row.id, row.version, timing, document)
                found[row.id] = (timing, document)
        return found

    def fire_batch(self, session: Session, now: datetime, report: FireReport) -> int:
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
                .where(
                    Workflow.enabled.is_(True),
                    Workflow.next_run_at.is_not(None),
                    Workflow.next_run_at <= now,
                )
                .order_by(Workflow.next_run_at)
                .limit(self.batch_size)
                .with_for_update(skip_locked=True)
            )
        )
        if not rows:
            return 0
        timings = self._timings(session, rows)
        counts = _active_counts(session, [row.id for row in rows])
        executions: list[dict[str, Any]] = []
        advances: list[dict[str, Any]] = []
        for row in rows:
            timing, document = timings[row.id]
            executions += self._plan(
                row,
                timing,
                document=document,
                counts=counts.get(row.id, (0, 0)),
                now=now,
                advances=advances,
            )
        report.claimed += len(rows)
        if executions:
            inserted = session.execute(
                _insert(session).returning(
                    executions_table.c.id, executions_table.c.status, executions_table.c.reason
                ),
                executions,
            ).all()
            events = []
            for ident, status, reason in inserted:
                if status is ExecutionStatus.SKIPPED:
                    report.skipped += 1
                    events.append(
                        {
                            "execution_id": ident,
                            "kind": "skipped",
                            "at": now,
                            "message": f"not run: {reason}",
                        }
                    )
                elif reason == BUFFERED:
                    report.buffered += 1
                    events.append(
                        {
                            "execution_id": ident,
                            "kind": "buffered",
                            "at": now,
                            "message": "waiting for the active run to end",
                        }
                    )
                else:
                    report.fired += 1
                    report.new_runs.append(ident)
                    events.append(
                        {
                            "execution_id": ident,
                            "kind": "created",
                            "at": now,
                            "message": "scheduled run",
                        }
                    )
            if events:
                session.execute(events_table.insert(), events)
        session.execute(
            update(workflows_table)
            .where(workflows_table.c.id == bindparam("b_id"))
            .values(
                next_run_at=bindparam("b_next"),
                last_fire_at=bindparam("b_last"),
            ),
            advances,
        )
        return len(rows)

    def _plan(
        self,
        row: Any,
        timing: WorkflowTiming,
        *,
        document: dict[str, Any],
        counts: tuple[int, int],
        now: datetime,
        advances: list[dict[str, Any]],
    ) -> list[dict[str, Any]]:
        schedule = timing.schedule
        last = row.last_fire_at or row.created_at
        if schedule is None:  # schedule removed while due: stop scheduling
            advances.append({"b_id": row.id, "b_next": None, "b_last": last})
            return []
        fires = schedule.fire_times(last, now - timing.jitter, limit=MAX_FIRES_PER_WORKFLOW)
        newest = fires[-1] if fires else last
        following = schedule.next_after(newest)
        advances.append(
            {
                "b_id": row.id,
                "b_next": None if following is None else following + timing.jitter,
                "b_last": newest,
            }
        )
        if not fires:
            return []
        catchup = timing.catchup.decide(fires, now)
        active, buffered = counts
        overlap = timing.overlap.decide(catchup.run, active=active, buffered=buffered)
        base = {
            "workflow_id": row.id,
            "workflow_name": row.name,
            "trigger": Trigger.SCHEDULE,
            "definition": document,
            "input": timing.input,
            "attempt": 0,
            "max_attempts": timing.max_attempts,
            "cancel_requested": False,
            "created_at": now,
            "updated_at": now,
        }
        planned = [
            {
                **base,
                "id": uuid.uuid4(),
                "scheduled_for": fire,
                "status": ExecutionStatus.PENDING,
                "reason": None,
            }
            for fire in overlap.run
        ]
        planned += [
            {
                **base,
                "id": uuid.uuid4(),
                "scheduled_for": fire,
                "status": ExecutionStatus.PENDING,
                "reason": BUFFERED,
            }
            for fire in overlap.buffer
        ]
        planned += [
            {
                **base,
                "id": uuid.uuid4(),
                "scheduled_for": fire,
                "status": ExecutionStatus.SKIPPED,
                "reason": reason,
                "finished_at": now,
            }
            for fire, reason in (*catchup.skipped, *overlap.skipped)
        ]
        for item in planned:
            item.setdefault("finished_at", None)
        return planned

    def fire_due(
        self,
        now: datetime,
        *,
        time_left: Callable[[], float] | None = None,
        min_seconds_left: float = 10.0,
    ) -> FireReport:
        """Fire every due workflow, batch by batch, enqueueing after each commit.

        ``time_left`` (seconds; e.g. from the Lambda context) stops claiming when the
        invocation is about to end; what is still due is counted in ``remaining``.
        """
        report = FireReport()
        while True:
            if time_left is not None and time_left() < min_seconds_left:
                report.stopped_early = True
                report.remaining = self.count_due(now)
                break
            before = len(report.new_runs)
            with self.sessions() as session, session.begin():
                claimed = self.fire_batch(session, now, report)
            new_runs = report.new_runs[before:]
            if new_runs and self.publisher is not None:
                sent = dispatch(self.sessions, self.publisher, new_runs, now)
                report.enqueued += len(sent.sent)
                report.enqueue_failed += len(sent.failed)
            if claimed < self.batch_size:
                break
        return report

    def count_due(self, now: datetime) -> int:
        with self.sessions() as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(Workflow)
                    .where(
                        Workflow.enabled.is_(True),
                        Workflow.next_run_at.is_not(None),
                        Workflow.next_run_at <= now,
                    )
                )
                or 0
            )


def monotonic_budget(seconds: float) -> Callable[[], float]:
    """A ``time_left`` callable for a fixed budget (the local loop)."""
    deadline = time.monotonic() + seconds
    return lambda: deadline - time.monotonic()
