"""What the tick needs to know about a workflow, read from its stored definition and cached.

A definition was fully validated when it was applied; the tick only reads the timing fields, so
it builds this small object straight from the stored JSON (no template validation per tick) and
caches it per ``(workflow id, version)``: a warm Lambda container reuses it across ticks.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from scheduler.policies import CatchupPolicy, OverlapPolicy, jitter_offset
from shared.duration import parse_duration
from shared.schedule import Schedule, parse_schedule


def _duration(value: Any) -> timedelta | None:
    return None if value is None else parse_duration(value)


def max_attempts_of(document: dict[str, Any]) -> int:
    default = (document.get("retry") or {}).get("max_attempts", 1)
    return max(
        int((step.get("retry") or {}).get("max_attempts", default))
        for step in document.get("steps", [{}])
    )


@dataclass(frozen=True)
class WorkflowTiming:
    name: str
    schedule: Schedule | None
    catchup: CatchupPolicy
    overlap: OverlapPolicy
    jitter: timedelta
    input: dict[str, Any]
    max_attempts: int

    @classmethod
    def from_document(cls, name: str, document: dict[str, Any], anchor: datetime) -> WorkflowTiming:
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
            input=dict(document.get("input") or {}),
            max_attempts=max_attempts_of(document),
        )


class TimingCache:
    """A bounded LRU of :class:`WorkflowTiming` (and the definition document) per version."""

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple[int, int], tuple[WorkflowTiming, dict[str, Any]]] = (
            OrderedDict()
        )

    def get(self, workflow_id: int, version: int) -> tuple[WorkflowTiming, dict[str, Any]] | None:
        key = (workflow_id, version)
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(
        self, workflow_id: int, version: int, timing: WorkflowTiming, document: dict[str, Any]
    ) -> None:
        self._items[(workflow_id, version)] = (timing, document)
        self._items.move_to_end((workflow_id, version))
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)
