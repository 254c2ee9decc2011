"""The execution engine: claim an execution, run its steps, record everything, finish or retry.

One call, :meth:`ExecutionEngine.handle`, per doorbell (SQS message). The database decides
everything; the message only names the execution (invariant 1). See ``docs/worker.md``.

1. **Claim** with one conditional ``UPDATE … RETURNING``: a waiting execution (pending, queued,
   retrying; due; not cancelled) or a running one whose lease expired (its worker died: event
   ``recovered``) becomes ``running`` under our lease. Anything else (finished, cancelled, held by
   a live lease) is a duplicate doorbell: dropped (the message is acked) and logged.
2. **Heartbeat**: a thread extends the lease every ``heartbeat_seconds`` while we run (only while
   ``worker_id`` is still ours) and reads ``cancel_requested``.
3. **Steps** run in order, resuming at the first step without a ``succeeded`` step run. Each step
   run is written when it starts (``running``, rendered input) and completed when it ends. The
   action runs in its own thread; the engine waits for it with the step's budget (step timeout or
   execution deadline, whichever is sooner) and interrupts it on timeout, cancellation or lease
   loss (cooperatively: see :class:`~worker.actions.base.ActionContext`).
4. **Failures**: transient errors retry in-process (tenacity, a short budget honouring
   ``retry_after``); then the step's retry policy either schedules a new attempt (``retrying``
   with ``not_before``, the lease released, a doorbell with ``DelaySeconds`` when the delay is at
   most 900 s, else the sweeper) or ends the execution (``failed`` / ``timed_out``).

The final output of a succeeded execution is ``{"steps": {name: output, …}, "result": <output
of the last step>}``.
"""

from __future__ import annotations

import contextvars
import json
import math
import random
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Table, and_, insert, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_any,
    stop_before_delay,
)
from tenacity.stop import stop_base

from shared.definition import TEMPLATE_FIELDS, Step, WorkflowDefinition, load_stored_definition
from shared.errors import (
    ActionError,
    ConveyorError,
    InvalidDefinition,
    PermanentActionError,
    TransientActionError,
)
from shared.executions import dispatch, record_event
from shared.logs import bind, get_logger
from shared.models import Execution, StepRun, iso, utcnow
from shared.queue import ExecutionPublisher
from shared.settings import Settings
from shared.status import ExecutionStatus, StepStatus
from shared.templating import TemplateRenderError, render_value
from worker.actions.base import Action, ActionContext, ActionResult, StepInterruptedError
from worker.backoff import Backoff, RandomSource
from worker.clients import Clients

log = get_logger("worker.engine")

EXECUTIONS = cast(Table, Execution.__table__)
STEP_RUNS = cast(Table, StepRun.__table__)
WAITING = (ExecutionStatus.PENDING, ExecutionStatus.QUEUED, ExecutionStatus.RETRYING)
POLL_SECONDS = 0.2
"""How often the engine looks at the heartbeat's findings while a step runs."""
CANCEL_GRACE_SECONDS = 1.0
"""After a cancellation, how long an action may take to notice and return its result."""
WORKER_LOST = "worker_lost"


class Outcome(StrEnum):
    """What one doorbell led to (the task's return value, also logged)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    RETRYING = "retrying"
    DUPLICATE = "duplicate"
    NOT_DUE = "not_due"
    NOT_FOUND = "not_found"
    LEASE_LOST = "lease_lost"


@dataclass(frozen=True)
class TransientBudget:
    """In-process retries of transient errors before the workflow's retry policy is asked."""

    attempts: int = 3
    within: float = 10.0
    initial: float = 0.5
    maximum: float = 4.0


@dataclass
class Claim:
    """A claimed execution: what the steps need, and what earlier attempts left behind."""

    id: uuid.UUID
    attempt: int
    max_attempts: int
    workflow: str
    definition: WorkflowDefinition
    input: dict[str, Any]
    scheduled_for: datetime | None
    deadline_at: datetime
    recovered: bool
    outputs: dict[str, Any] = field(default_factory=dict)
    """Outputs of steps that already succeeded (never run again)."""
    failures: dict[str, int] = field(default_factory=dict)
    """Per step, failed or timed-out runs that count against its retry policy."""


@dataclass(frozen=True)
class Failure:
    kind: str  # transient | permanent | timeout | deadline | cancelled | template
    message: str
    type: str
    details: Any = None
    retry_after: float | None = None

    def as_error(self, step: str | None) -> dict[str, Any]:
        error = {"kind": self.kind, "type": self.type, "message": self.message}
        if step is not None:
            error["step"] = step
        if self.details is not None:
            error["details"] = _jsonable(self.details)
        return error


RETRY_ON_KIND = {"transient": "transient", "timeout": "timeout", "permanent": "error"}
FINAL_STATUS = {
    "transient": ExecutionStatus.FAILED,
    "permanent": ExecutionStatus.FAILED,
    "template": ExecutionStatus.FAILED,
    "timeout": ExecutionStatus.TIMED_OUT,
    "deadline": ExecutionStatus.TIMED_OUT,
    "cancelled": ExecutionStatus.CANCELLED,
}
STEP_STATUS = {
    "timeout": StepStatus.TIMED_OUT,
    "deadline": StepStatus.TIMED_OUT,
    "cancelled": StepStatus.CANCELLED,
}


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def default_worker_id() -> str:
    import os  # noqa: PLC0415

    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaseLostError(ConveyorError):
    """Our lease on the execution is gone (another worker reclaimed it): write nothing more."""


class _ActionThread(threading.Thread):
    def __init__(self, target: Callable[[], ActionResult], name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._target_fn = target
        self._context = contextvars.copy_context()
        self.result: ActionResult | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()

    def run(self) -> None:
        try:
            self.result = self._context.run(self._target_fn)
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()


class _OutOfBudget(stop_base):
    """Stop retrying once the step must stop or the next sleep would use up its budget."""

    def __init__(self, ctx: ActionContext) -> None:
        self.ctx = ctx

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.ctx.stopped or retry_state.upcoming_sleep >= self.ctx.remaining()


class Heartbeat:
    """Extends the lease every ``interval`` seconds; notices cancellation and a lost lease."""

    def __init__(self, engine: ExecutionEngine, execution_id: uuid.UUID) -> None:
        self.engine = engine
        self.execution_id = execution_id
        self.cancel_requested = False
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=contextvars.copy_context().run,
            args=(self._run,),
            name=f"heartbeat-{execution_id}",
            daemon=True,
        )

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.engine.settings.heartbeat_seconds):
            self.beat()

    def beat(self) -> None:
        try:
            with self.engine.sessions() as session, session.begin():
                state = self.engine.extend_lease(session, self.execution_id)
        except SQLAlchemyError as exc:
            log.warning("heartbeat_failed", error=f"{type(exc).__name__}: {exc}")
            return
        if state is None:
            self.lost = True
            self._stop.set()
        elif state:
            self.cancel_requested = True


class ExecutionEngine:
    """Runs executions; one instance per worker process (thread-safe for one run at a time)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        *,
        clients: Clients | None = None,
        actions: Mapping[str, Action] | None = None,
        publisher: ExecutionPublisher | None = None,
        worker_id: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        rng: RandomSource | None = None,
        transient: TransientBudget | None = None,
    ) -> None:
        from worker.actions import default_actions  # noqa: PLC0415

        self.sessions = sessions
        self.settings = settings
        self.clients = clients or Clients(settings)
        self.actions: Mapping[str, Action] = actions or default_actions()
        self.publisher = publisher
        self.worker_id = worker_id or default_worker_id()
        self.clock = clock
        self.rng: RandomSource = rng or random.SystemRandom()
        self.transient = transient or TransientBudget()
        self.lease = timedelta(seconds=settings.lease_seconds)

    # ------------------------------------------------------------------ entry point
    def handle(self, execution_id: str | uuid.UUID) -> Outcome:
        """Claim and run one execution; the returned outcome never asks for redelivery."""
        try:
            key = execution_id if isinstance(execution_id, uuid.UUID) else uuid.UUID(execution_id)
        except ValueError:
            log.warning("execution_invalid_id", execution_id=str(execution_id))
            return Outcome.NOT_FOUND
        with bind(execution_id=str(key)):
            claim, outcome = self.claim(key)
            if claim is None:
                assert outcome is not None
                return outcome
            with bind(workflow=claim.workflow, attempt=claim.attempt):
                heartbeat = Heartbeat(self, claim.id).start()
                try:
                    result = self._run(claim, heartbeat)
                except LeaseLostError:
                    result = Outcome.LEASE_LOST
                finally:
                    heartbeat.stop()
                if result is Outcome.LEASE_LOST:
                    log.warning("lease_lost")
                return result

    # ------------------------------------------------------------------ claim
    def claim(self, execution_id: uuid.UUID) -> tuple[Claim | None, Outcome | None]:
        """The conditional claim; ``(claim, None)`` or ``(None, why not)``."""
        now = self.clock()
        t = EXECUTIONS
        prior = t.alias("prior")
        claimable = or_(
            and_(
                t.c.status.in_(WAITING),
                or_(t.c.not_before.is_(None), t.c.not_before <= now),
                t.c.cancel_requested.is_(False),
            ),
            and_(t.c.status == ExecutionStatus.RUNNING, t.c.lease_expires_at < now),
        )
        values = {
            "status": ExecutionStatus.RUNNING,
            "attempt": t.c.attempt + 1,
            "lease_expires_at": now + self.lease,
            "heartbeat_at": now,
            "worker_id": self.worker_id,
            "not_before": None,
            "started_at": func_coalesce(t.c.started_at, now),
            "updated_at": now,
        }
        returned = (
            t.c.attempt,
            t.c.max_attempts,
            t.c.workflow_name,
            t.c.definition,
            t.c.input,
            t.c.scheduled_for,
            t.c.started_at,
            t.c.deadline_at,
        )
        row: tuple[Any, ...] | None
        with self.sessions() as session, session.begin():
            if session.get_bind().dialect.name == "postgresql":
                # one statement: the self-join reads the row as it was before the update
                statement = (
                    update(t)
                    .where(t.c.id == execution_id, prior.c.id == t.c.id, claimable)
                    .values(**values)
                    .returning(*returned, prior.c.status, prior.c.worker_id)
                )
                found = session.execute(statement).first()
                row = None if found is None else tuple(found)
            else:
                # SQLite's UPDATE … FROM returns the new values for the alias too; it runs one
                # writer at a time, so reading the prior state first in the same transaction
                # is exact once the (conditional) update succeeds.
                before = session.execute(
                    select(t.c.status, t.c.worker_id).where(t.c.id == execution_id)
                ).first()
                updated = session.execute(
                    update(t)
                    .where(t.c.id == execution_id, claimable)
                    .values(**values)
                    .returning(*returned)
                ).first()
                row = None if updated is None or before is None else (*updated, *before)
            if row is None:
                return None, self._not_claimed(session, execution_id, now)
            (
                attempt,
                max_attempts,
                workflow,
                document,
                run_input,
                scheduled_for,
                started_at,
                deadline_at,
                prior_status,
                prior_worker,
            ) = row
            recovered = prior_status == ExecutionStatus.RUNNING
            try:
                definition = load_stored_definition(document, source=f"<execution {execution_id}>")
            except InvalidDefinition as exc:
                self._finish(
                    session,
                    execution_id,
                    now,
                    ExecutionStatus.FAILED,
                    error={"kind": "permanent", "type": "InvalidDefinition", "message": str(exc)},
                    message="the stored definition is invalid",
                )
                log.error("execution_failed", reason="invalid_definition")
                return None, Outcome.FAILED
            if deadline_at is None:
                deadline_at = started_at + definition.timeout
                session.execute(
                    update(t).where(t.c.id == execution_id).values(deadline_at=deadline_at)
                )
            claim = Claim(
                id=execution_id,
                attempt=attempt,
                max_attempts=max_attempts,
                workflow=workflow or definition.name,
                definition=definition,
                input=dict(run_input or {}),
                scheduled_for=scheduled_for,
                deadline_at=deadline_at,
                recovered=recovered,
            )
            with bind(workflow=claim.workflow, attempt=attempt):
                return self._after_claim(session, claim, now, prior_worker)

    def _after_claim(
        self, session: Session, claim: Claim, now: datetime, prior_worker: str | None
    ) -> tuple[Claim | None, Outcome | None]:
        limit = claim.max_attempts + self.settings.recovery_attempts
        if claim.attempt > 1:
            # A step run left ``running`` belongs to a worker that died (whether its execution
            # was reclaimed here or re-queued by the sweeper): close it, it does not count.
            session.execute(
                update(STEP_RUNS)
                .where(
                    STEP_RUNS.c.execution_id == claim.id,
                    STEP_RUNS.c.status == StepStatus.RUNNING,
                )
                .values(
                    status=StepStatus.FAILED,
                    finished_at=now,
                    error={
                        "kind": WORKER_LOST,
                        "type": "WorkerLost",
                        "message": "the worker running this step stopped renewing its lease",
                    },
                )
            )
        if claim.recovered:
            record_event(
                session,
                claim.id,
                "recovered",
                f"lease of {prior_worker} expired; reclaimed",
                at=now,
                attempt=claim.attempt,
                data={"previous_worker": prior_worker},
            )
            log.warning("execution_recovered", previous_worker=prior_worker)
        if claim.attempt > limit:
            message = (
                f"gave up after {claim.attempt - 1} attempts (max_attempts {claim.max_attempts} "
                f"+ {self.settings.recovery_attempts} recovery attempts)"
            )
            self._finish(
                session,
                claim.id,
                now,
                ExecutionStatus.FAILED,
                error={
                    "kind": "attempts_exhausted",
                    "type": "AttemptsExhausted",
                    "message": message,
                },
                message=message,
            )
            log.error("execution_failed", reason="attempts_exhausted", message=message)
            return None, Outcome.FAILED
        if claim.deadline_at <= now:
            message = f"execution deadline {iso(claim.deadline_at)} passed before this attempt"
            self._finish(
                session,
                claim.id,
                now,
                ExecutionStatus.TIMED_OUT,
                error={"kind": "deadline", "type": "StepTimeout", "message": message},
                message=message,
            )
            log.warning("execution_timed_out", reason="deadline_before_attempt")
            return None, Outcome.TIMED_OUT
        for name, status, output, error in session.execute(
            select(STEP_RUNS.c.step_name, STEP_RUNS.c.status, STEP_RUNS.c.output, STEP_RUNS.c.error)
            .where(STEP_RUNS.c.execution_id == claim.id)
            .order_by(STEP_RUNS.c.id)
        ):
            if status == StepStatus.SUCCEEDED:
                claim.outputs[name] = output
            elif status in (StepStatus.FAILED, StepStatus.TIMED_OUT) and not (
                isinstance(error, dict) and error.get("kind") == WORKER_LOST
            ):
                claim.failures[name] = claim.failures.get(name, 0) + 1
        record_event(
            session,
            claim.id,
            "started",
            f"attempt {claim.attempt} on {self.worker_id}",
            at=now,
            attempt=claim.attempt,
            data={"worker_id": self.worker_id, "resume_after": sorted(claim.outputs)},
        )
        log.info("execution_claimed", recovered=claim.recovered, done_steps=len(claim.outputs))
        return claim, None

    def _not_claimed(self, session: Session, execution_id: uuid.UUID, now: datetime) -> Outcome:
        t = EXECUTIONS
        row = session.execute(
            select(t.c.status, t.c.not_before, t.c.cancel_requested, t.c.lease_expires_at).where(
                t.c.id == execution_id
            )
        ).first()
        if row is None:
            log.warning("execution_not_found")
            return Outcome.NOT_FOUND
        status, not_before, cancel_requested, lease_expires_at = row
        if status in WAITING and not cancel_requested and not_before is not None:
            wait = math.ceil((not_before - now).total_seconds())
            if wait <= self.settings.max_delay_seconds:
                session.commit()
                self._send(execution_id, now, max(wait, 1))
            log.info("execution_not_due", not_before=iso(not_before), wait_seconds=wait)
            return Outcome.NOT_DUE
        log.info(
            "execution_duplicate",
            status=str(status),
            cancel_requested=cancel_requested,
            lease_expires_at=iso(lease_expires_at),
        )
        return Outcome.DUPLICATE

    # ------------------------------------------------------------------ lease
    def extend_lease(self, session: Session, execution_id: uuid.UUID) -> bool | None:
        """Renew our lease; ``None`` if it is no longer ours, else ``cancel_requested``."""
        now = self.clock()
        t = EXECUTIONS
        row = session.execute(
            update(t)
            .where(
                t.c.id == execution_id,
                t.c.worker_id == self.worker_id,
                t.c.status == ExecutionStatus.RUNNING,
            )
            .values(heartbeat_at=now, lease_expires_at=now + self.lease)
            .returning(t.c.cancel_requested)
        ).first()
        return None if row is None else bool(row[0])

    def _guard(self, session: Session, execution_id: uuid.UUID) -> bool:
        """Renew the lease inside a transaction that is about to write; raise if it is gone."""
        state = self.extend_lease(session, execution_id)
        if state is None:
            raise LeaseLostError(f"execution {execution_id} is no longer ours")
        return state

    # ------------------------------------------------------------------ steps
    def _run(self, claim: Claim, heartbeat: Heartbeat) -> Outcome:
        steps = claim.definition.steps
        remaining = [(i, s) for i, s in enumerate(steps) if s.name not in claim.outputs]
        if not remaining:
            with self.sessions() as session, session.begin():
                self._guard(session, claim.id)
                self._succeed(session, claim, self.clock())
            return Outcome.SUCCEEDED
        for position, (index, step) in enumerate(remaining):
            last = position == len(remaining) - 1
            with bind(step=step.name):
                outcome = self._run_step(claim, index, step, heartbeat, last=last)
            if outcome is not None:
                return outcome
        return Outcome.SUCCEEDED

    def _context(self, claim: Claim, now: datetime) -> dict[str, Any]:
        return {
            "input": claim.input,
            "steps": {name: {"output": output} for name, output in claim.outputs.items()},
            "scheduled_for": iso(claim.scheduled_for),
            "execution_id": str(claim.id),
            "workflow": claim.workflow,
            "attempt": claim.attempt,
            "now": iso(now),
        }

    def _render(self, claim: Claim, index: int, step: Step, now: datetime) -> dict[str, Any]:
        context = self._context(claim, now)
        return {
            name: render_value(getattr(step, name), context, field=f"steps[{index}].{name}")
            for name in TEMPLATE_FIELDS[step.action]
            if getattr(step, name, None) is not None
        }

    def _run_step(  # noqa: PLR0911 (one branch per way a step can end)
        self, claim: Claim, index: int, step: Step, heartbeat: Heartbeat, *, last: bool
    ) -> Outcome | None:
        """Run one step; ``None`` means go on with the next step."""
        now = self.clock()
        rendered: dict[str, Any] | None = None
        render_failure: Failure | None = None
        try:
            rendered = self._render(claim, index, step, now)
        except TemplateRenderError as exc:
            render_failure = Failure("template", str(exc), type(exc).__name__)
        with self.sessions() as session, session.begin():
            if self._guard(session, claim.id):
                self._finish(
                    session,
                    claim.id,
                    now,
                    ExecutionStatus.CANCELLED,
                    message=f"cancelled before step {step.name}",
                    step=step.name,
                    attempt=claim.attempt,
                )
                log.info("execution_cancelled", before_step=step.name)
                return Outcome.CANCELLED
            run_id = session.execute(
                insert(STEP_RUNS)
                .values(
                    execution_id=claim.id,
                    step_name=step.name,
                    step_index=index,
                    attempt=claim.attempt,
                    status=StepStatus.RUNNING,
                    input=rendered,
                    started_at=now,
                )
                .returning(STEP_RUNS.c.id)
            ).scalar_one()
            record_event(
                session,
                claim.id,
                "step_started",
                f"{step.action} step {step.name}",
                at=now,
                step=step.name,
                attempt=claim.attempt,
            )
        log.info("step_started", action=step.action)
        if render_failure is not None:
            return self._step_failed(claim, step, run_id, render_failure)
        assert rendered is not None

        started = time.monotonic()
        deadline_left = (claim.deadline_at - self.clock()).total_seconds()
        step_budget = step.timeout.total_seconds()
        by_deadline = deadline_left < step_budget
        budget_end = started + min(step_budget, max(deadline_left, 0.0))
        ctx = ActionContext(
            execution_id=claim.id,
            workflow=claim.workflow,
            step=step.name,
            step_index=index,
            attempt=claim.attempt,
            settings=self.settings,
            clients=self.clients,
            deadline=budget_end,
        )
        action = self.actions.get(step.action)
        if action is None:
            return self._step_failed(
                claim,
                step,
                run_id,
                Failure("permanent", f"unknown action {step.action!r}", "PermanentActionError"),
            )
        runner = _ActionThread(
            lambda: self._call_with_retries(action, step, rendered, ctx),
            name=f"action-{claim.id}-{step.name}",
        )
        runner.start()
        timeout_kind = "deadline" if by_deadline else "timeout"
        interrupted = _watch(runner, heartbeat, budget_end, timeout_kind)
        if interrupted is not None:
            ctx.stop.set()
            if interrupted == "lease_lost":
                raise LeaseLostError("lease lost while the step ran")
            if interrupted == "cancelled":
                runner.done.wait(CANCEL_GRACE_SECONDS)
                if runner.result is None:
                    if not runner.done.is_set():
                        log.warning("action_abandoned", reason="cancelled")
                    return self._step_failed(
                        claim,
                        step,
                        run_id,
                        Failure("cancelled", "cancelled while the step ran", "Cancelled"),
                    )
            else:
                if not runner.done.is_set():
                    log.warning("action_abandoned", reason=interrupted)
                seconds = time.monotonic() - started
                what = "execution deadline" if interrupted == "deadline" else "step timeout"
                return self._step_failed(
                    claim,
                    step,
                    run_id,
                    Failure(
                        interrupted,
                        f"step {step.name} interrupted by its {what} after {seconds:.1f}s",
                        "StepTimeout",
                        details={"budget_seconds": round(min(step_budget, deadline_left), 3)},
                    ),
                )
        if runner.result is not None:
            return self._step_succeeded(claim, step, run_id, runner.result, last=last)
        return self._step_failed(claim, step, run_id, _failure_of(runner.error))

    def _call_with_retries(
        self, action: Action, step: Step, rendered: dict[str, Any], ctx: ActionContext
    ) -> ActionResult:
        budget = self.transient

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome is not None else None
            base = min(budget.initial * 2 ** (state.attempt_number - 1), budget.maximum)
            if isinstance(error, TransientActionError) and error.retry_after is not None:
                base = error.retry_after
            return float(base)

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome is not None else None
            log.info(
                "step_transient_error",
                try_number=state.attempt_number,
                sleep_seconds=round(state.upcoming_sleep, 3),
                error=str(error),
            )

        retrying = Retrying(
            stop=stop_any(
                stop_after_attempt(budget.attempts),
                stop_before_delay(budget.within),
                _OutOfBudget(ctx),
            ),
            wait=wait,
            retry=retry_if_exception_type(TransientActionError),
            sleep=ctx.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(action.run, step, rendered, ctx)

    # ------------------------------------------------------------------ step endings
    def _step_succeeded(
        self, claim: Claim, step: Step, run_id: int, result: ActionResult, *, last: bool
    ) -> Outcome | None:
        now = self.clock()
        output = _jsonable(result.output)
        with self.sessions() as session, session.begin():
            cancel = self._guard(session, claim.id)
            session.execute(
                update(STEP_RUNS)
                .where(STEP_RUNS.c.id == run_id)
                .values(
                    status=StepStatus.SUCCEEDED,
                    output=output,
                    usage=_jsonable(result.usage) if result.usage is not None else None,
                    finished_at=now,
                )
            )
            record_event(
                session,
                claim.id,
                "step_succeeded",
                f"step {step.name} succeeded",
                at=now,
                step=step.name,
                attempt=claim.attempt,
            )
            claim.outputs[step.name] = output
            log.info("step_succeeded")
            if last:
                self._succeed(session, claim, now)
                return Outcome.SUCCEEDED
            if cancel:
                self._finish(
                    session,
                    claim.id,
                    now,
                    ExecutionStatus.CANCELLED,
                    message=f"cancelled after step {step.name}",
                    step=step.name,
                    attempt=claim.attempt,
                )
                log.info("execution_cancelled", after_step=step.name)
                return Outcome.CANCELLED
        return None

    def _succeed(self, session: Session, claim: Claim, now: datetime) -> None:
        last_name = claim.definition.steps[-1].name
        output = {"steps": dict(claim.outputs), "result": claim.outputs.get(last_name)}
        self._finish(
            session,
            claim.id,
            now,
            ExecutionStatus.SUCCEEDED,
            output=output,
            message="all steps succeeded",
            attempt=claim.attempt,
        )
        log.info("execution_succeeded")

    def _step_failed(self, claim: Claim, step: Step, run_id: int, failure: Failure) -> Outcome:
        now = self.clock()
        policy = claim.definition.effective_retry(step)
        step_attempt = claim.failures.get(step.name, 0) + 1
        retry_key = RETRY_ON_KIND.get(failure.kind)
        delay: float | None = None
        if (
            retry_key is not None
            and retry_key in policy.retry_on
            and step_attempt < policy.max_attempts
        ):
            delay = Backoff.from_spec(policy).delay(step_attempt, self.rng)
            if failure.retry_after is not None:
                delay = max(delay, failure.retry_after)
            if now + timedelta(seconds=delay) >= claim.deadline_at:
                delay = None  # the retry could not start before the execution's deadline
        step_status = STEP_STATUS.get(failure.kind, StepStatus.FAILED)
        error = failure.as_error(step.name)
        with self.sessions() as session, session.begin():
            if self._guard(session, claim.id) and delay is not None:
                # cancelled while the step failed: no retry (a retrying execution with
                # cancel_requested could never be claimed again)
                delay = None
                failure = Failure("cancelled", failure.message, failure.type, failure.details)
            session.execute(
                update(STEP_RUNS)
                .where(STEP_RUNS.c.id == run_id)
                .values(status=step_status, error=error, finished_at=now)
            )
            record_event(
                session,
                claim.id,
                "step_failed",
                failure.message,
                at=now,
                step=step.name,
                attempt=claim.attempt,
                data={"kind": failure.kind, "status": step_status.value, "try": step_attempt},
            )
            log.warning(
                "step_failed", kind=failure.kind, error=failure.message, step_attempt=step_attempt
            )
            if delay is not None:
                not_before = now + timedelta(seconds=delay)
                session.execute(
                    update(EXECUTIONS)
                    .where(EXECUTIONS.c.id == claim.id)
                    .values(
                        status=ExecutionStatus.RETRYING,
                        not_before=not_before,
                        worker_id=None,
                        lease_expires_at=None,
                        error=error,
                        updated_at=now,
                    )
                )
                record_event(
                    session,
                    claim.id,
                    "retry_scheduled",
                    f"step {step.name} try {step_attempt + 1} of {policy.max_attempts} "
                    f"in {delay:.1f}s",
                    at=now,
                    step=step.name,
                    attempt=claim.attempt,
                    data={"delay_seconds": round(delay, 3), "not_before": iso(not_before)},
                )
            else:
                final = FINAL_STATUS[failure.kind]
                self._finish(
                    session,
                    claim.id,
                    now,
                    final,
                    error=error,
                    message=failure.message,
                    step=step.name,
                    attempt=claim.attempt,
                )
        if delay is None:
            final = FINAL_STATUS[failure.kind]
            log.warning(f"execution_{final.value}", step_failed=step.name)
            return Outcome(final.value)
        log.info("retry_scheduled", delay_seconds=round(delay, 3), step_attempt=step_attempt)
        seconds = math.ceil(delay)
        if seconds <= self.settings.max_delay_seconds:
            self._send(claim.id, now, seconds)
        return Outcome.RETRYING

    def _finish(
        self,
        session: Session,
        execution_id: uuid.UUID,
        now: datetime,
        status: ExecutionStatus,
        *,
        message: str,
        output: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        step: str | None = None,
        attempt: int | None = None,
    ) -> None:
        """Move an execution we hold to a terminal status and record the event."""
        values: dict[str, Any] = {
            "status": status,
            "finished_at": now,
            "lease_expires_at": None,
            "updated_at": now,
        }
        if output is not None:
            values["output"] = output
        if status is ExecutionStatus.SUCCEEDED:
            values["error"] = None
        if error is not None:
            values["error"] = error
        session.execute(update(EXECUTIONS).where(EXECUTIONS.c.id == execution_id).values(values))
        record_event(
            session, execution_id, status.value, message, at=now, step=step, attempt=attempt
        )

    def _send(self, execution_id: uuid.UUID, now: datetime, delay_seconds: int) -> None:
        """A delayed doorbell (retries, early messages). Failure leaves it to the sweeper."""
        if self.publisher is None:
            log.warning("doorbell_not_sent", reason="no publisher configured")
            return
        try:
            report = dispatch(
                self.sessions,
                self.publisher,
                [execution_id],
                now,
                delays={execution_id: delay_seconds},
            )
        except Exception as exc:  # the sweeper re-sends what was not sent
            log.warning("doorbell_not_sent", error=f"{type(exc).__name__}: {exc}")
            return
        if report.failed:
            log.warning("doorbell_not_sent", error=report.failed.get(execution_id))


def _watch(
    runner: _ActionThread, heartbeat: Heartbeat, budget_end: float, timeout_kind: str
) -> str | None:
    """Wait for the action; the reason to interrupt it (lease_lost, cancelled, a timeout)."""
    while not runner.done.wait(max(0.0, min(budget_end - time.monotonic(), POLL_SECONDS))):
        if heartbeat.lost:
            return "lease_lost"
        if heartbeat.cancel_requested:
            return "cancelled"
        if time.monotonic() >= budget_end:
            return timeout_kind
    if isinstance(runner.error, StepInterruptedError):
        return timeout_kind  # the action noticed its budget ran out before we did
    return None


def func_coalesce(column: Any, value: datetime) -> Any:
    from sqlalchemy import func  # noqa: PLC0415

    return func.coalesce(column, value)


def _failure_of(error: BaseException | None) -> Failure:
    if isinstance(error, TransientActionError):
        return Failure(
            "transient", str(error), type(error).__name__, error.details, error.retry_after
        )
    if isinstance(error, PermanentActionError):
        return Failure("permanent", str(error), type(error).__name__, error.details)
    if isinstance(error, StepInterruptedError):
        return Failure("cancelled", str(error), type(error).__name__)
    if isinstance(error, ActionError):
        return Failure("permanent", str(error), type(error).__name__, error.details)
    if error is None:  # pragma: no cover - the thread always sets one of result/error
        return Failure("permanent", "the action returned nothing", "RuntimeError")
    details = {"traceback": traceback.format_exception(error)[-20:]}
    return Failure("permanent", f"{type(error).__name__}: {error}", type(error).__name__, details)
