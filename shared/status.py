"""Execution and step status: one ``str`` Enum shared by the database, the API and the CLI."""

from __future__ import annotations

from enum import StrEnum


class ExecutionStatus(StrEnum):
    """Lifecycle of one execution (one run of a workflow or one ad-hoc task).

    pending  -> committed, not yet sent to the queue (the outbox state)
    queued   -> a message was sent; a worker may claim it
    running  -> claimed by a worker holding a lease
    retrying -> a step failed, a retry is scheduled (``not_before``); the sweeper or a delayed
                message brings it back to ``queued``
    succeeded / failed / cancelled / timed_out / skipped -> terminal
    """

    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES

    @property
    def is_active(self) -> bool:
        return self in ACTIVE_STATUSES


TERMINAL_STATUSES: frozenset[ExecutionStatus] = frozenset(
    {
        ExecutionStatus.SUCCEEDED,
        ExecutionStatus.FAILED,
        ExecutionStatus.CANCELLED,
        ExecutionStatus.TIMED_OUT,
        ExecutionStatus.SKIPPED,
    }
)
ACTIVE_STATUSES: frozenset[ExecutionStatus] = frozenset(
    {
        ExecutionStatus.PENDING,
        ExecutionStatus.QUEUED,
        ExecutionStatus.RUNNING,
        ExecutionStatus.RETRYING,
    }
)


class StepStatus(StrEnum):
    """Lifecycle of one attempt at one step."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


class Trigger(StrEnum):
    """What created an execution."""

    SCHEDULE = "schedule"
    MANUAL = "manual"
    BACKFILL = "backfill"
    API = "api"
    WEBHOOK = "webhook"
    EVENT = "event"
