"""The one small interface every action implements, and what an action gets to work with.

An action turns a step (the validated definition model) and its *rendered* template fields into
an :class:`ActionResult`, or raises :class:`~shared.errors.TransientActionError` (the same call
may succeed later) or :class:`~shared.errors.PermanentActionError` (it will not). The engine owns
everything else: in-process retries of transient errors, the step's timeout, cancellation,
persistence.

Actions run in a thread of their own (see ``docs/worker.md``); they must bound every blocking
call by :meth:`ActionContext.remaining` and, where they wait or loop, check
:meth:`ActionContext.check` so a cancelled or timed-out step stops promptly.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from shared.errors import ActionError
from shared.settings import Settings

if TYPE_CHECKING:
    from worker.clients import Clients


class StepInterruptedError(ActionError):
    """Raised inside an action at a checkpoint once its step was cancelled or timed out."""


@dataclass(frozen=True)
class ActionResult:
    output: Any
    usage: dict[str, Any] | None = None


@dataclass
class ActionContext:
    """Per step run: identity, the idempotency key, the time budget and the stop signal."""

    execution_id: uuid.UUID
    workflow: str
    step: str
    step_index: int
    attempt: int
    settings: Settings
    clients: Clients
    deadline: float
    """``time.monotonic()`` value at which the step's budget (step timeout or execution deadline,
    whichever is sooner) runs out."""
    stop: threading.Event = field(default_factory=threading.Event)
    """Set by the engine when the step is cancelled, timed out or the lease was lost."""

    @property
    def idempotency_key(self) -> str:
        """Stable for the step across every attempt of the execution."""
        return f"{self.execution_id}:{self.step}"

    def metadata(self) -> dict[str, Any]:
        """What actions pass on to side effects so they can de-duplicate and trace."""
        return {
            "idempotency_key": self.idempotency_key,
            "execution_id": str(self.execution_id),
            "workflow": self.workflow,
            "step": self.step,
            "attempt": self.attempt,
        }

    def remaining(self, *, floor: float = 0.001) -> float:
        """Seconds left in the budget (at least ``floor`` so it can be used as a timeout)."""
        return max(self.deadline - time.monotonic(), floor)

    @property
    def stopped(self) -> bool:
        return self.stop.is_set()

    def check(self) -> None:
        """A checkpoint: raise :class:`StepInterruptedError` once the step must stop."""
        if self.stop.is_set():
            raise StepInterruptedError("step interrupted (cancelled, timed out or lease lost)")

    def sleep(self, seconds: float) -> None:
        """Sleep cooperatively: raises when the step must stop or its budget runs out first."""
        budget = self.remaining()
        if self.stop.wait(max(0.0, min(seconds, budget))):
            self.check()
        if seconds > budget:
            raise StepInterruptedError("the step's time budget ran out while sleeping")


class Action(Protocol):
    """``run(step, rendered, ctx) -> ActionResult``; ``rendered`` holds the template fields."""

    def run(self, step: Any, rendered: dict[str, Any], ctx: ActionContext) -> ActionResult: ...


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header (delta seconds or an HTTP date) as seconds, None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime  # noqa: PLC0415

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    from datetime import UTC, datetime  # noqa: PLC0415

    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def truncate(text: str, limit: int = 4000) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
