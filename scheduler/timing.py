"""What the tick needs to know about a workflow, read from its stored definition and cached.

A definition was fully validated when it was applied; the tick only reads the timing fields, so
it builds this small object straight from the stored JSON (no template validation per tick) and
caches it per ``(workflow id, version)``: a warm Lambda container reuses it across ticks.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from scheduler.policies import CatchupPolicy, OverlapPolicy, jitter_offset
from shared.duration import parse_duration
from shared.models import Workflow
from shared.schedule import Schedule, parse_schedule


def _duration(value: Any) -> timedelta | None:
    return None if value is None else parse_duration(value)


def max_attempts_of(document: dict[str, Any]) -> int:
    """Claims a run may need: one, plus every step's retries (as shared.executions counts)."""
    default = (document.get("retry") or {}).get("max_attempts", 1)
    return 1 + sum(
        int((step.get("retry") or {}).get("max_attempts", default)) - 1
        for step in document.get("steps", [])
    )


@dataclass(frozen=True)
class WorkflowTiming:
    name: str
    schedule: Schedule | None
    catchup: CatchupPolicy
    overlap: OverlapPolicy
    jitter: timedelta
    max_attempts: int

    @classmethod
    def from_document(
        cls,
        name: str,
        document: dict[str, Any],
        anchor: datetime,
        *,
        max_attempts: int | None = None,
    ) -> WorkflowTiming:
        """From the stored definition (or the timing fields of it, with ``max_attempts``)."""
        expression = document.get("schedule")
        schedule = (
            parse_schedule(
                expression,
                document.get("timezone", "UTC"),
                dst=document.get("dst", "vixie"),
                anchor=anchor,
            )
            if expression
            else None
        )
        return cls(
            name=name,
            schedule=schedule,
            catchup=CatchupPolicy(
                mode=document.get("catchup", "latest"),
                start_deadline=_duration(document.get("start_deadline")),
                cap=int(document.get("catchup_cap", 100)),
            ),
            overlap=OverlapPolicy(mode=document.get("overlap", "skip")),
            jitter=jitter_offset(name, _duration(document.get("jitter")) or timedelta(0)),
            max_attempts=max_attempts if max_attempts is not None else max_attempts_of(document),
        )


class TimingCache:
    """A bounded LRU of :class:`WorkflowTiming` per workflow version."""

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[int, int], WorkflowTiming] = OrderedDict()

    def get(self, workflow_id: int, version: int) -> WorkflowTiming | None:
        key = (workflow_id, version)
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, workflow_id: int, version: int, timing: WorkflowTiming) -> None:
        with self._lock:
            self._items[(workflow_id, version)] = timing
            self._items.move_to_end((workflow_id, version))
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


# The timing fields of a stored definition, decoded by PostgreSQL: steps, input and templates
# (the bulk of a document) never cross the wire; max_attempts is summed over the steps in SQL.
_PG_TIMING = text(
    """
    SELECT w.id,
           w.definition - 'steps' - 'input' - 'description' - 'webhooks',
           1 + (SELECT coalesce(sum(coalesce((s -> 'retry' ->> 'max_attempts')::int,
                                             (w.definition -> 'retry' ->> 'max_attempts')::int,
                                             1) - 1), 0)
                FROM jsonb_array_elements(w.definition -> 'steps') AS s)
    FROM workflows AS w WHERE w.id = ANY(CAST(:ids AS bigint[]))
    """
)


def timing_documents(session: Session, ids: list[int]) -> list[tuple[dict[str, Any], int | None]]:
    """(timing document, max_attempts or None) for each id, in the order given."""
    if session.get_bind().dialect.name == "postgresql":
        rows = {row[0]: (row[1], row[2]) for row in session.execute(_PG_TIMING, {"ids": ids})}
    else:
        rows = {
            ident: (document, None)
            for ident, document in session.execute(
                select(Workflow.id, Workflow.definition).where(Workflow.id.in_(ids))
            )
        }
    return [rows[ident] for ident in ids]
