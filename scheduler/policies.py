"""Scheduling policies: pure decisions the tick applies to the fire times it finds due.

Nothing here touches a database, a queue or a clock: every function takes ``now`` (and whatever
else it needs) as an argument and returns a small frozen value, so each policy is table-tested.

The tick uses them in this order for one workflow:

1. ``CatchupPolicy.decide(due, now)``: of the fire times in ``(last, now]``, which to run and
   which to record as skipped (``missed``);
2. ``OverlapPolicy.decide(run, active=..., buffered=...)``: of those, which start now, which wait
   (status ``pending`` until the active run ends) and which are skipped (``overlap``);
3. ``jitter_offset(name, max_jitter)``: how long after its ``scheduled_for`` a run is enqueued;
4. ``next_run_after(schedule, now)``: the workflow's new ``next_run_at`` (also on resume, so a
   paused workflow does not replay the fires it slept through).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

from shared.schedule import Schedule, jitter_offset

__all__ = [
    "DEFAULT_GRACE",
    "MISSED",
    "OVERLAP",
    "CatchupDecision",
    "CatchupMode",
    "CatchupPolicy",
    "OverlapDecision",
    "OverlapMode",
    "OverlapPolicy",
    "jitter_offset",
    "next_run_after",
    "next_run_after_resume",
]

CatchupMode = Literal["none", "latest", "all"]
OverlapMode = Literal["allow", "skip", "buffer_one"]

MISSED: Final = "missed"
"""Skip reason: the fire time was not run because the scheduler was late or down."""
OVERLAP: Final = "overlap"
"""Skip reason: the fire time was not run because a previous run was still active."""
DEFAULT_GRACE: Final = timedelta(minutes=2)
"""How late a fire may be and still count as current for ``catchup: none`` (about one tick)."""

Skipped = tuple[datetime, str]


def _ascending(times: Sequence[datetime], now: datetime | None = None) -> list[datetime]:
    ordered = sorted(set(times))
    if now is not None and ordered and ordered[-1] > now:
        raise ValueError(f"fire time {ordered[-1].isoformat()} is after now {now.isoformat()}")
    return ordered


# ------------------------------------------------------------------------------- catch-up
@dataclass(frozen=True)
class CatchupDecision:
    """Fire times to run (ascending) and fire times to record as skipped, with the reason."""

    run: tuple[datetime, ...] = ()
    skipped: tuple[Skipped, ...] = ()


@dataclass(frozen=True)
class CatchupPolicy:
    """What to do with the fire times that came due while the scheduler was late or down.

    * ``none``: run only the newest fire, and only if it is current: within ``start_deadline``
      of ``now`` when one is set, otherwise within ``grace`` (about one tick). Skip the rest.
    * ``latest``: run the newest fire (if within ``start_deadline`` when one is set); skip the
      older ones.
    * ``all``: run every fire within ``start_deadline`` (all of them without one), oldest first,
      but at most ``cap``: when there are more, the *newest* ``cap`` run and the older ones are
      skipped.

    Every fire not run is skipped with reason ``missed``.
    """

    mode: CatchupMode = "latest"
    start_deadline: timedelta | None = None
    cap: int = 100
    grace: timedelta = DEFAULT_GRACE

    def __post_init__(self) -> None:
        if self.mode not in ("none", "latest", "all"):
            raise ValueError(f"unknown catch-up mode {self.mode!r}: expected none, latest or all")
        if self.cap < 1:
            raise ValueError(f"cap must be at least 1, got {self.cap}")
        if self.start_deadline is not None and self.start_deadline < timedelta(0):
            raise ValueError("start_deadline must not be negative")
        if self.grace < timedelta(0):
            raise ValueError("grace must not be negative")

    def _in_time(self, fire: datetime, now: datetime) -> bool:
        if self.start_deadline is not None:
            return now - fire <= self.start_deadline
        if self.mode == "none":
            return now - fire <= self.grace
        return True

    def decide(self, due: Sequence[datetime], now: datetime) -> CatchupDecision:
        """Split the due fire times (all ``<= now``) into runs and ``missed`` skips."""
        fires = _ascending(due, now)
        if self.mode == "all":
            in_time = [f for f in fires if self._in_time(f, now)]
            run = in_time[-self.cap :]
        else:
            run = fires[-1:] if fires and self._in_time(fires[-1], now) else []
        chosen = set(run)
        return CatchupDecision(
            run=tuple(run),
            skipped=tuple((f, MISSED) for f in fires if f not in chosen),
        )


# -------------------------------------------------------------------------------- overlap
@dataclass(frozen=True)
class OverlapDecision:
    """Fire times to start now, to buffer (pending until the active run ends) and to skip."""

    run: tuple[datetime, ...] = ()
    buffer: tuple[datetime, ...] = ()
    skipped: tuple[Skipped, ...] = ()


@dataclass(frozen=True)
class OverlapPolicy:
    """What to do with a fire while an earlier run of the same workflow is still active.

    ``active`` counts executions that are running (claimed, not finished); ``buffered`` counts
    executions already waiting for them (pending start). Fires are considered oldest first and
    each one that starts or is buffered counts as occupying the workflow for the next.

    * ``allow``: everything runs, concurrently.
    * ``skip``: a fire runs only when nothing is active or waiting; every other fire is skipped
      with reason ``overlap`` (so with several due fires only the oldest runs).
    * ``buffer_one``: like ``skip``, but one fire may wait for the active run to end; only one
      ever waits, the oldest: later fires are skipped while it waits.
    """

    mode: OverlapMode = "skip"

    def __post_init__(self) -> None:
        if self.mode not in ("allow", "skip", "buffer_one"):
            raise ValueError(
                f"unknown overlap mode {self.mode!r}: expected allow, skip or buffer_one"
            )

    def decide(
        self, fires: Sequence[datetime], *, active: int, buffered: int = 0
    ) -> OverlapDecision:
        """Decide, per fire time, run now / buffer / skip (``overlap``)."""
        if active < 0 or buffered < 0:
            raise ValueError("active and buffered must not be negative")
        ordered = _ascending(fires)
        if self.mode == "allow":
            return OverlapDecision(run=tuple(ordered))
        run: list[datetime] = []
        buffer: list[datetime] = []
        skipped: list[Skipped] = []
        busy = active > 0 or buffered > 0
        waiting_room = 1 - buffered if self.mode == "buffer_one" else 0
        for fire in ordered:
            if not busy:
                run.append(fire)
                busy = True
            elif waiting_room > 0:
                buffer.append(fire)
                waiting_room -= 1
            else:
                skipped.append((fire, OVERLAP))
        return OverlapDecision(run=tuple(run), buffer=tuple(buffer), skipped=tuple(skipped))


# ---------------------------------------------------------------------------- the rest
def next_run_after(schedule: Schedule, after: datetime) -> datetime | None:
    """The ``next_run_at`` that follows ``after`` (``None``: the schedule has no more fires)."""
    return schedule.next_after(after)


def next_run_after_resume(schedule: Schedule, now: datetime) -> datetime | None:
    """``next_run_at`` for a workflow being resumed (or re-enabled) at ``now``.

    Computed from ``now``, not from the last fire before the pause, so the fires the workflow
    slept through are neither run nor recorded: a resume never causes a storm.
    """
    return schedule.next_after(now)
