"""Operating the worker fleet: ECS counts and scaling, queue depth, the dead-letter queue, and the
worker container's health check.

The logic behind ``conveyor workers status|scale|resume``, ``conveyor dlq list|redrive`` and
``conveyor worker --check``; the CLI only parses flags and prints. Every AWS client is passed in,
so tests point them at an emulator.

* **Scaling** stays inside the service's Application Auto Scaling target (Terraform's
  ``min_count``/``max_count``); ``--min``/``--max`` stand in only where no target exists.
* **Dead letters** are read without being consumed: received with a visibility timeout that
  holds them for the length of the command, then made visible again (visibility 0). A redrive
  sends a *fresh* doorbell through :func:`shared.executions.dispatch` (invariant 1: the database
  decides what runs), then deletes the dead letter; a crash between the two only leaves a
  duplicate doorbell, which the worker's conditional claim ignores (invariant 2).
* **Liveness**: the worker touches a file every ``heartbeat_seconds`` from its event loop;
  ``worker --check`` is healthy while the file is younger than three heartbeats.
"""

from __future__ import annotations

import math
import os
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from shared.errors import ConfigurationError, ConveyorError, InvalidInput, NotFound
from shared.executions import BUFFERED, dispatch
from shared.models import Execution, iso
from shared.queue import (
    RUN_EXECUTION_TASK,
    SQS_BATCH_LIMIT,
    SQS_MAX_DELAY_SECONDS,
    ExecutionPublisher,
    decode_message_body,
    sqs_client,
)
from shared.settings import Settings
from shared.status import TERMINAL_STATUSES, ExecutionStatus

if TYPE_CHECKING:
    from celery.bootsteps import StartStopStep
    from mypy_boto3_application_autoscaling import ApplicationAutoScalingClient
    from mypy_boto3_application_autoscaling.type_defs import ScalableTargetTypeDef
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

ECS_DIMENSION: Final = "ecs:service:DesiredCount"
OLDEST_AGE_WINDOW = timedelta(minutes=15)
ALIVE_HEARTBEATS = 3
"""``worker --check`` fails once the alive file is older than this many heartbeat periods."""

_QUEUE_MISSING = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")


class AwsCallFailed(ConveyorError):
    """An AWS call failed (permissions, throttling, network): exit 1, the message says which."""


@contextmanager
def aws_call(what: str, *, missing: Mapping[str, str] | None = None) -> Iterator[None]:
    """Turn botocore errors into Conveyor errors; ``missing`` maps error codes that mean
    "the configured thing does not exist" to a configuration message."""
    try:
        yield
    except NoCredentialsError as exc:
        raise ConfigurationError(
            f"{what}: no AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, or a role)"
        ) from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "?"))
        if missing and code in missing:
            raise ConfigurationError(missing[code]) from exc
        raise AwsCallFailed(f"{what} failed: {code}: {error.get('Message', '')}") from exc
    except BotoCoreError as exc:
        raise AwsCallFailed(f"{what} failed: {exc}") from exc


# ------------------------------------------------------------------------------ configuration


@dataclass(frozen=True)
class EcsService:
    cluster: str
    service: str

    @property
    def resource_id(self) -> str:
        """The Application Auto Scaling resource id of the service."""
        return f"service/{self.cluster}/{self.service}"

    @classmethod
    def from_settings(cls, settings: Settings) -> EcsService:
        missing = [
            name
            for name, value in (
                ("CONVEYOR_ECS_CLUSTER", settings.ecs_cluster),
                ("CONVEYOR_ECS_SERVICE", settings.ecs_service),
            )
            if not value
        ]
        if missing:
            verb = "is" if len(missing) == 1 else "are"
            raise ConfigurationError(
                f"{' and '.join(missing)} {verb} not set: name the workers' ECS cluster and "
                "service (terraform outputs ecs_cluster and ecs_service)"
            )
        assert settings.ecs_cluster is not None
        assert settings.ecs_service is not None
        return cls(settings.ecs_cluster, settings.ecs_service)


NO_DATABASE = "CONVEYOR_DATABASE_URL is not set"


def database_configured(settings: Settings) -> bool:
    """Whether the database was named explicitly. The fleet commands run against a deployed
    environment, where the local SQLite default would only be an empty stand-in."""
    return settings.database_url is not None


def _database_error(exc: SQLAlchemyError) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}"


def require_dlq_url(settings: Settings) -> str:
    if not settings.dlq_url:
        raise ConfigurationError(
            "CONVEYOR_DLQ_URL is not set: the dead-letter queue's URL (terraform output dlq_url)"
        )
    return settings.dlq_url


class FleetClients:
    """The AWS clients the fleet commands use, built on first use in ``settings.region``.

    boto3's ``AWS_ENDPOINT_URL`` (and per-service variants) select an emulator.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def _session(self) -> Any:
        import boto3  # noqa: PLC0415

        return boto3.session.Session(region_name=self.settings.region)

    def _client(self, service: str) -> Any:
        from botocore.config import Config  # noqa: PLC0415

        config = Config(retries={"max_attempts": 5, "mode": "standard"})
        return self._session.client(service, region_name=self.settings.region, config=config)

    @cached_property
    def ecs(self) -> ECSClient:
        client: ECSClient = self._client("ecs")
        return client

    @cached_property
    def autoscaling(self) -> ApplicationAutoScalingClient:
        client: ApplicationAutoScalingClient = self._client("application-autoscaling")
        return client

    @cached_property
    def cloudwatch(self) -> CloudWatchClient:
        client: CloudWatchClient = self._client("cloudwatch")
        return client

    @cached_property
    def sqs(self) -> Any:
        return sqs_client(self.settings)


# ------------------------------------------------------------------------------ ECS + autoscaling


@dataclass(frozen=True)
class ServiceCounts:
    cluster: str
    service: str
    status: str
    desired: int
    running: int
    pending: int
    deployments: int

    def to_json(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "name": self.service,
            "status": self.status,
            "desired": self.desired,
            "running": self.running,
            "pending": self.pending,
            "deployments": self.deployments,
        }


def describe_service(ecs: ECSClient, target: EcsService) -> ServiceCounts:
    """The service's task counts (ECS ``DescribeServices``); a missing service is configuration."""
    with aws_call(
        "ECS DescribeServices",
        missing={
            "ClusterNotFoundException": (
                f"ECS cluster {target.cluster!r} not found (CONVEYOR_ECS_CLUSTER)"
            )
        },
    ):
        response = ecs.describe_services(cluster=target.cluster, services=[target.service])
    for service in response.get("services", []):
        if service.get("serviceName") != target.service:
            continue
        status = service.get("status", "UNKNOWN")
        if status == "INACTIVE":
            break
        return ServiceCounts(
            cluster=target.cluster,
            service=target.service,
            status=status,
            desired=int(service.get("desiredCount", 0)),
            running=int(service.get("runningCount", 0)),
            pending=int(service.get("pendingCount", 0)),
            deployments=len(service.get("deployments", [])),
        )
    raise ConfigurationError(
        f"ECS service {target.service!r} not found in cluster {target.cluster!r} "
        "(CONVEYOR_ECS_SERVICE)"
    )


@dataclass(frozen=True)
class ScalingTarget:
    """The service's Application Auto Scaling target: Terraform's min/max, and whether target
    tracking is suspended (``workers scale --hold``)."""

    resource_id: str
    minimum: int
    maximum: int
    scale_in_suspended: bool
    scale_out_suspended: bool

    @property
    def held(self) -> bool:
        return self.scale_in_suspended and self.scale_out_suspended

    @property
    def dynamic_scaling(self) -> str:
        if self.held:
            return "suspended"
        if self.scale_in_suspended or self.scale_out_suspended:
            return "partly suspended"
        return "active"

    def to_json(self) -> dict[str, Any]:
        return {
            "resource_id": self.resource_id,
            "min": self.minimum,
            "max": self.maximum,
            "dynamic_scaling": self.dynamic_scaling,
        }

    @classmethod
    def from_api(cls, item: ScalableTargetTypeDef) -> ScalingTarget:
        suspended = item.get("SuspendedState", {})
        return cls(
            resource_id=item["ResourceId"],
            minimum=int(item["MinCapacity"]),
            maximum=int(item["MaxCapacity"]),
            scale_in_suspended=bool(suspended.get("DynamicScalingInSuspended", False)),
            scale_out_suspended=bool(suspended.get("DynamicScalingOutSuspended", False)),
        )


def find_scaling_target(
    autoscaling: ApplicationAutoScalingClient, target: EcsService
) -> ScalingTarget | None:
    """The service's scalable target (``DescribeScalableTargets``), or None when it has none."""
    with aws_call("Application Auto Scaling DescribeScalableTargets"):
        response = autoscaling.describe_scalable_targets(
            ServiceNamespace="ecs",
            ResourceIds=[target.resource_id],
            ScalableDimension=ECS_DIMENSION,
        )
    for item in response.get("ScalableTargets", []):
        if item["ResourceId"] == target.resource_id:
            return ScalingTarget.from_api(item)
    return None


def _set_dynamic_scaling(
    autoscaling: ApplicationAutoScalingClient, resource_id: str, *, suspended: bool
) -> None:
    with aws_call("Application Auto Scaling RegisterScalableTarget"):
        # Without MinCapacity/MaxCapacity an existing target keeps its bounds.
        autoscaling.register_scalable_target(
            ServiceNamespace="ecs",
            ResourceId=resource_id,
            ScalableDimension=ECS_DIMENSION,
            SuspendedState={
                "DynamicScalingInSuspended": suspended,
                "DynamicScalingOutSuspended": suspended,
            },
        )


@dataclass(frozen=True)
class Bounds:
    minimum: int
    maximum: int
    source: str  # "the scalable target service/c/s" or "--min/--max"


def resolve_bounds(
    target: EcsService,
    scaling: ScalingTarget | None,
    minimum: int | None,
    maximum: int | None,
) -> Bounds:
    """The range a manual count must stay in: the scalable target's, else ``--min``/``--max``.

    Flags that contradict an existing target are refused: the target is what autoscaling (and
    Terraform) enforce, so a different range on the command line is a mistake, not an override.
    """
    if (minimum is None) != (maximum is None):
        raise InvalidInput("--min and --max go together")
    if minimum is not None and maximum is not None and minimum > maximum:
        raise InvalidInput(f"--min {minimum} is greater than --max {maximum}")
    if scaling is not None:
        if minimum is not None and (minimum, maximum) != (scaling.minimum, scaling.maximum):
            raise InvalidInput(
                f"--min {minimum} --max {maximum} disagree with the scalable target "
                f"{scaling.resource_id} (min {scaling.minimum}, max {scaling.maximum}); drop "
                "the flags, or change worker_min_count/worker_max_count in Terraform and apply"
            )
        return Bounds(
            scaling.minimum, scaling.maximum, f"the scalable target {scaling.resource_id}"
        )
    if minimum is None or maximum is None:
        raise InvalidInput(
            f"no scalable target for {target.resource_id}, so the allowed range is unknown: "
            "pass --min and --max (Terraform's worker_min_count and worker_max_count)"
        )
    return Bounds(minimum, maximum, "--min/--max")


@dataclass(frozen=True)
class ScaleResult:
    service: ServiceCounts  # before the change
    desired: int
    bounds: Bounds
    scaling: ScalingTarget | None  # after the change
    note: str

    def to_json(self) -> dict[str, Any]:
        return {
            "cluster": self.service.cluster,
            "service": self.service.service,
            "previous_desired": self.service.desired,
            "desired": self.desired,
            "min": self.bounds.minimum,
            "max": self.bounds.maximum,
            "bounds_from": self.bounds.source,
            "autoscaling": None if self.scaling is None else self.scaling.to_json(),
            "note": self.note,
        }


def scale_service(
    clients: FleetClients,
    target: EcsService,
    count: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    hold: bool = False,
) -> ScaleResult:
    """Set the service's desired count (``UpdateService``) within the allowed range.

    ``hold`` first suspends the target's dynamic (target tracking) scaling so the count stays;
    :func:`resume_autoscaling` undoes that.
    """
    if count < 0:
        raise InvalidInput(f"the count must be 0 or more, got {count}")
    service = describe_service(clients.ecs, target)
    scaling = find_scaling_target(clients.autoscaling, target)
    bounds = resolve_bounds(target, scaling, minimum, maximum)
    if not bounds.minimum <= count <= bounds.maximum:
        raise InvalidInput(
            f"{count} is outside the allowed range [{bounds.minimum}, {bounds.maximum}] "
            f"(from {bounds.source})"
        )
    if hold and scaling is None:
        raise InvalidInput(
            f"--hold needs a scalable target and {target.resource_id} has none: "
            "nothing would change the count anyway"
        )
    if hold and scaling is not None and not scaling.held:
        _set_dynamic_scaling(clients.autoscaling, scaling.resource_id, suspended=True)
        scaling = find_scaling_target(clients.autoscaling, target)
    with aws_call("ECS UpdateService"):
        clients.ecs.update_service(
            cluster=target.cluster, service=target.service, desiredCount=count
        )
    if scaling is None:
        note = "no autoscaling target: the count stays until changed again"
    elif scaling.held:
        note = (
            "autoscaling is suspended: the count stays until `conveyor workers resume` "
            "(`workers status` shows `autoscaling suspended`)"
        )
    else:
        note = (
            "autoscaling may change the count again at its next evaluation; "
            "`--hold` suspends it until `conveyor workers resume`"
        )
    return ScaleResult(service=service, desired=count, bounds=bounds, scaling=scaling, note=note)


def resume_autoscaling(clients: FleetClients, target: EcsService) -> ScalingTarget:
    """Let target tracking move the count again (undo ``workers scale --hold``)."""
    scaling = find_scaling_target(clients.autoscaling, target)
    if scaling is None:
        raise NotFound(f"no scalable target for {target.resource_id}: nothing to resume")
    if scaling.scale_in_suspended or scaling.scale_out_suspended:
        _set_dynamic_scaling(clients.autoscaling, scaling.resource_id, suspended=False)
        resumed = find_scaling_target(clients.autoscaling, target)
        assert resumed is not None
        return resumed
    return scaling


# ------------------------------------------------------------------------------ queue depth


@dataclass(frozen=True)
class QueueDepth:
    url: str
    visible: int
    in_flight: int
    delayed: int

    @property
    def name(self) -> str:
        return queue_name_of(self.url)


def queue_name_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def queue_depth(sqs: Any, url: str, *, setting: str = "CONVEYOR_QUEUE_URL") -> QueueDepth:
    with aws_call(
        "SQS GetQueueAttributes",
        missing=dict.fromkeys(_QUEUE_MISSING, f"queue {url} does not exist ({setting})"),
    ):
        attributes = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
    return QueueDepth(
        url=url,
        visible=int(attributes.get("ApproximateNumberOfMessages", 0)),
        in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        delayed=int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
    )


@dataclass(frozen=True)
class OldestAge:
    """``AWS/SQS ApproximateAgeOfOldestMessage``: SQS publishes it to CloudWatch (no queue
    attribute gives it), once a minute; ``seconds`` is None when CloudWatch has no datapoint."""

    seconds: float | None
    at: datetime | None
    note: str


def oldest_message_age(cloudwatch: CloudWatchClient, queue_url: str, now: datetime) -> OldestAge:
    name = queue_name_of(queue_url)
    try:
        with aws_call("CloudWatch GetMetricStatistics"):
            response = cloudwatch.get_metric_statistics(
                Namespace="AWS/SQS",
                MetricName="ApproximateAgeOfOldestMessage",
                Dimensions=[{"Name": "QueueName", "Value": name}],
                StartTime=now - OLDEST_AGE_WINDOW,
                EndTime=now,
                Period=60,
                Statistics=["Maximum"],
            )
    except ConveyorError as exc:
        return OldestAge(None, None, f"unknown: {exc}")
    points = [p for p in response.get("Datapoints", []) if "Timestamp" in p and "Maximum" in p]
    if not points:
        minutes = int(OLDEST_AGE_WINDOW.total_seconds() // 60)
        return OldestAge(None, None, f"unknown: no CloudWatch datapoint in the last {minutes} min")
    latest = max(points, key=lambda p: p["Timestamp"])
    return OldestAge(float(latest["Maximum"]), latest["Timestamp"], "cloudwatch")


# ------------------------------------------------------------------------------ status


@dataclass(frozen=True)
class WorkerLoad:
    worker_id: str | None
    running: int


def running_by_worker(session: Session) -> list[WorkerLoad]:
    """Executions with status ``running``, counted per ``worker_id`` (busiest first)."""
    count = func.count().label("running")
    rows = session.execute(
        select(Execution.worker_id, count)
        .where(Execution.status == ExecutionStatus.RUNNING)
        .group_by(Execution.worker_id)
        .order_by(count.desc(), Execution.worker_id)
    ).all()
    return [WorkerLoad(worker_id, int(running)) for worker_id, running in rows]


@dataclass
class FleetStatus:
    service: ServiceCounts
    scaling: ScalingTarget | None = None
    queue: QueueDepth | None = None
    oldest: OldestAge | None = None
    dlq: QueueDepth | None = None
    running: list[WorkerLoad] | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service.to_json(),
            "autoscaling": None if self.scaling is None else self.scaling.to_json(),
            "queue": None
            if self.queue is None
            else {
                "url": self.queue.url,
                "visible": self.queue.visible,
                "in_flight": self.queue.in_flight,
                "delayed": self.queue.delayed,
                "oldest_age_seconds": None if self.oldest is None else self.oldest.seconds,
                "oldest_age_at": None if self.oldest is None else iso(self.oldest.at),
                "oldest_age_source": None if self.oldest is None else self.oldest.note,
            },
            "dlq": None
            if self.dlq is None
            else {"url": self.dlq.url, "depth": self.dlq.visible + self.dlq.in_flight},
            "executions": {
                "running": None
                if self.running is None
                else sum(load.running for load in self.running),
                "by_worker": [
                    {"worker_id": load.worker_id, "running": load.running}
                    for load in self.running or []
                ],
            },
            "notes": list(self.notes),
        }


def fleet_status(
    settings: Settings,
    clients: FleetClients,
    sessions: sessionmaker[Session] | None,
    now: datetime,
) -> FleetStatus:
    """The service's counts (required: a missing service is an error), then everything else
    best-effort: what cannot be read is ``None`` with a line in ``notes``. ``sessions`` is None
    when no database is configured (the running executions are then unknown)."""
    target = EcsService.from_settings(settings)
    status = FleetStatus(service=describe_service(clients.ecs, target))
    try:
        status.scaling = find_scaling_target(clients.autoscaling, target)
    except ConveyorError as exc:
        status.notes.append(f"autoscaling: {exc}")
    if settings.queue_url:
        try:
            status.queue = queue_depth(clients.sqs, settings.queue_url)
            status.oldest = oldest_message_age(clients.cloudwatch, settings.queue_url, now)
        except ConveyorError as exc:
            status.notes.append(f"queue: {exc}")
    else:
        status.notes.append("queue: CONVEYOR_QUEUE_URL is not set")
    if settings.dlq_url:
        try:
            status.dlq = queue_depth(clients.sqs, settings.dlq_url, setting="CONVEYOR_DLQ_URL")
        except ConveyorError as exc:
            status.notes.append(f"dlq: {exc}")
    else:
        status.notes.append("dlq: CONVEYOR_DLQ_URL is not set")
    if sessions is None:
        status.notes.append(f"executions: {NO_DATABASE}")
        return status
    try:
        with sessions() as session:
            status.running = running_by_worker(session)
    except SQLAlchemyError as exc:
        status.notes.append(f"database: {_database_error(exc)}")
    return status


# ------------------------------------------------------------------------------ dead letters


@dataclass(frozen=True)
class ExecutionSummary:
    status: ExecutionStatus
    workflow: str | None
    attempt: int
    max_attempts: int
    reason: str | None
    not_before: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "workflow": self.workflow,
            "attempt": self.attempt,
            "max_attempts": self.max_attempts,
        }


@dataclass
class DeadLetter:
    message_id: str
    receipt_handle: str
    task: str | None
    execution_id: uuid.UUID | None
    receive_count: int | None
    sent_at: datetime | None
    problem: str | None = None  # why this is not a Conveyor doorbell
    execution: ExecutionSummary | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "execution_id": None if self.execution_id is None else str(self.execution_id),
            "task": self.task,
            "receive_count": self.receive_count,
            "sent_at": iso(self.sent_at),
            "problem": self.problem,
            "execution": None if self.execution is None else self.execution.to_json(),
        }


def parse_dead_letter(message: MessageTypeDef) -> DeadLetter:
    """Decode one SQS message; anything that is not a ``conveyor.run_execution`` doorbell gets a
    ``problem`` instead of an execution id."""
    attributes = message.get("Attributes", {})
    count = attributes.get("ApproximateReceiveCount")
    sent = attributes.get("SentTimestamp")
    letter = DeadLetter(
        message_id=message.get("MessageId", ""),
        receipt_handle=message.get("ReceiptHandle", ""),
        task=None,
        execution_id=None,
        receive_count=int(count) if count is not None else None,
        sent_at=datetime.fromtimestamp(int(sent) / 1000, UTC) if sent is not None else None,
    )
    try:
        decoded = decode_message_body(message.get("Body", ""))
    except (ValueError, TypeError, KeyError) as exc:  # base64, JSON, shape
        letter.problem = f"not a Celery task message ({type(exc).__name__})"
        return letter
    letter.task = decoded.task
    if decoded.task != RUN_EXECUTION_TASK:
        letter.problem = f"task {decoded.task!r} is not {RUN_EXECUTION_TASK}"
        return letter
    try:
        letter.execution_id = uuid.UUID(str(decoded.args[0]))
    except (IndexError, ValueError) as exc:
        letter.problem = f"no execution id in the task arguments ({type(exc).__name__})"
    return letter


def lookup_executions(
    session: Session, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, ExecutionSummary]:
    if not ids:
        return {}
    rows = session.execute(
        select(
            Execution.id,
            Execution.status,
            Execution.workflow_name,
            Execution.attempt,
            Execution.max_attempts,
            Execution.reason,
            Execution.not_before,
        ).where(Execution.id.in_(set(ids)))
    ).all()
    return {
        row.id: ExecutionSummary(
            status=row.status,
            workflow=row.workflow_name,
            attempt=row.attempt,
            max_attempts=row.max_attempts,
            reason=row.reason,
            not_before=row.not_before,
        )
        for row in rows
    }


class DeadLetterReader:
    """Pages through a queue without consuming it: every message received is held invisible for
    ``hold_seconds`` and, unless deleted, made visible again by :meth:`release` (also on error,
    through the context manager; a crash leaves them invisible for ``hold_seconds`` at most).

    SQS has no "peek": every receive adds one to a message's ``ApproximateReceiveCount``. A DLQ
    has no redrive policy of its own, so that count moves nothing.
    """

    def __init__(self, sqs: Any, url: str, *, hold_seconds: int = 300) -> None:
        self.sqs = sqs
        self.url = url
        self.hold_seconds = hold_seconds
        self._held: dict[str, str] = {}  # message id -> latest receipt handle
        self._seen: set[str] = set()

    def __enter__(self) -> DeadLetterReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def pages(self, limit: int | None = None) -> Iterator[list[DeadLetter]]:
        """Pages of at most 10 messages, each message once, until the queue has no more (a long
        poll of 1 s comes back empty) or ``limit`` messages were returned."""
        returned = 0
        while limit is None or returned < limit:
            wanted = SQS_BATCH_LIMIT if limit is None else min(SQS_BATCH_LIMIT, limit - returned)
            with aws_call(
                "SQS ReceiveMessage",
                missing=dict.fromkeys(
                    _QUEUE_MISSING, f"queue {self.url} does not exist (CONVEYOR_DLQ_URL)"
                ),
            ):
                messages = self.sqs.receive_message(
                    QueueUrl=self.url,
                    MaxNumberOfMessages=wanted,
                    VisibilityTimeout=self.hold_seconds,
                    WaitTimeSeconds=1,
                    MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
                ).get("Messages", [])
            page: list[DeadLetter] = []
            for message in messages:
                letter = parse_dead_letter(message)
                self._held[letter.message_id] = letter.receipt_handle
                if letter.message_id not in self._seen:
                    self._seen.add(letter.message_id)
                    page.append(letter)
            if not page:  # empty, or only messages whose hold ran out: we went round
                return
            returned += len(page)
            yield page

    def delete(self, letters: Sequence[DeadLetter]) -> dict[str, str]:
        """Delete ``letters``; returns message id -> error for the ones SQS did not delete."""
        failed: dict[str, str] = {}
        for start in range(0, len(letters), SQS_BATCH_LIMIT):
            batch = letters[start : start + SQS_BATCH_LIMIT]
            entries = [
                {"Id": str(i), "ReceiptHandle": self._held.get(letter.message_id, "")}
                for i, letter in enumerate(batch)
            ]
            try:
                with aws_call("SQS DeleteMessageBatch"):
                    response = self.sqs.delete_message_batch(QueueUrl=self.url, Entries=entries)
            except ConveyorError as exc:
                failed.update({letter.message_id: str(exc) for letter in batch})
                continue
            for entry in response.get("Failed", []):
                failed[batch[int(entry["Id"])].message_id] = (
                    f"{entry.get('Code')}: {entry.get('Message', '')}"
                )
            for letter in batch:
                if letter.message_id not in failed:
                    self._held.pop(letter.message_id, None)
        return failed

    def release(self) -> None:
        """Make every message still held visible again (best effort: the hold expires anyway)."""
        held = list(self._held.items())
        self._held.clear()
        for start in range(0, len(held), SQS_BATCH_LIMIT):
            entries = [
                {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for i, (_, handle) in enumerate(held[start : start + SQS_BATCH_LIMIT])
            ]
            # Best effort: they come back on their own after hold_seconds.
            with suppress(ClientError, BotoCoreError):
                self.sqs.change_message_visibility_batch(QueueUrl=self.url, Entries=entries)


@dataclass
class DlqListing:
    url: str
    items: list[DeadLetter]
    depth: int
    limit: int
    joined: bool = False  # whether the executions were looked up in the database
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "dlq_url": self.url,
            "depth": self.depth,
            "count": len(self.items),
            "limit": self.limit,
            "more": self.depth > len(self.items),
            "items": [letter.to_json() for letter in self.items],
            "notes": list(self.notes),
        }


def _join(sessions: sessionmaker[Session], letters: Sequence[DeadLetter]) -> None:
    ids = [letter.execution_id for letter in letters if letter.execution_id is not None]
    with sessions() as session:
        found = lookup_executions(session, ids)
    for letter in letters:
        if letter.execution_id is not None:
            letter.execution = found.get(letter.execution_id)


def list_dead_letters(
    sqs: Any, dlq_url: str, sessions: sessionmaker[Session] | None, *, limit: int = 50
) -> DlqListing:
    """Up to ``limit`` dead letters, decoded and joined with their executions (when a database
    is given); none consumed."""
    if limit < 1:
        raise InvalidInput(f"--limit: must be at least 1, got {limit}")
    items: list[DeadLetter] = []
    with DeadLetterReader(sqs, dlq_url, hold_seconds=60) as reader:
        for page in reader.pages(limit):
            items.extend(page)
        # Counted while ours are still invisible: visible + in flight covers both.
        depth = queue_depth(sqs, dlq_url, setting="CONVEYOR_DLQ_URL")
    listing = DlqListing(dlq_url, items, depth.visible + depth.in_flight, limit)
    if sessions is None:
        listing.notes.append(f"executions not shown: {NO_DATABASE}")
        return listing
    try:
        _join(sessions, items)
    except SQLAlchemyError as exc:
        listing.notes.append(f"executions not shown: {_database_error(exc)}")
    else:
        listing.joined = True
    return listing


class RedriveAction(StrEnum):
    REDRIVEN = "redriven"  # a fresh doorbell went to the execution queue; dead letter deleted
    FINISHED = "already_finished"  # the execution is terminal; dead letter deleted
    DUPLICATE = "duplicate"  # another dead letter of the same execution was handled; deleted
    SCHEDULER = "left_to_scheduler"  # a delayed retry / buffered run the scheduler sends; deleted
    UNKNOWN = "unknown_execution"  # no such execution in this database; kept
    NOT_A_DOORBELL = "not_a_doorbell"  # cannot be decoded; kept
    SEND_FAILED = "send_failed"  # the new doorbell was not accepted; kept

    @property
    def deletes(self) -> bool:
        return self in _DELETING


_DELETING = frozenset(
    {
        RedriveAction.REDRIVEN,
        RedriveAction.FINISHED,
        RedriveAction.DUPLICATE,
        RedriveAction.SCHEDULER,
    }
)


@dataclass
class RedriveItem:
    letter: DeadLetter
    action: RedriveAction
    detail: str = ""
    deleted: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "message_id": self.letter.message_id,
            "execution_id": (
                None if self.letter.execution_id is None else str(self.letter.execution_id)
            ),
            "status": None if self.letter.execution is None else self.letter.execution.status.value,
            "action": self.action.value,
            "detail": self.detail,
            "deleted": self.deleted,
        }


@dataclass
class RedriveReport:
    dry_run: bool
    items: list[RedriveItem] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[RedriveItem]:
        """Items that should have left the DLQ and did not (send or delete failed)."""
        return [
            item
            for item in self.items
            if item.action is RedriveAction.SEND_FAILED
            or (not self.dry_run and item.action.deletes and not item.deleted)
        ]

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys((action.value for action in RedriveAction), 0)
        for item in self.items:
            counts[item.action.value] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "counts": self.counts(),
            "items": [item.to_json() for item in self.items],
            "not_found": list(self.not_found),
        }


def parse_selection(ids: Sequence[str], *, select_all: bool) -> set[str] | None:
    """``None`` for ``--all``; else the normalised ids (execution ids or SQS message ids)."""
    if select_all and ids:
        raise InvalidInput("give either --all or ids, not both")
    if not select_all and not ids:
        raise InvalidInput("give the execution ids to redrive (see `conveyor dlq list`), or --all")
    if select_all:
        return None
    wanted: set[str] = set()
    for raw in ids:
        try:
            wanted.add(str(uuid.UUID(raw)))
        except ValueError as exc:
            raise InvalidInput(f"not an execution or message id: {raw!r}") from exc
    return wanted


def _settled(
    letter: DeadLetter, decided: dict[uuid.UUID, RedriveAction]
) -> tuple[RedriveAction, str] | None:
    """The outcome for a dead letter that cannot (or need not) be sent, else None."""
    if letter.problem is not None or letter.execution_id is None:
        return RedriveAction.NOT_A_DOORBELL, letter.problem or "no execution id"
    execution = letter.execution
    if execution is None:
        return (
            RedriveAction.UNKNOWN,
            "no such execution in this database (is CONVEYOR_DATABASE_URL the queue's?)",
        )
    earlier = decided.get(letter.execution_id)
    if earlier is not None:  # duplicates share the first dead letter's fate
        action = RedriveAction.DUPLICATE if earlier.deletes else earlier
        return action, f"another dead letter of it: {earlier.value}"
    if execution.status in TERMINAL_STATUSES:
        return RedriveAction.FINISHED, f"already finished ({execution.status.value})"
    if execution.status is ExecutionStatus.PENDING and execution.reason == BUFFERED:
        return RedriveAction.SCHEDULER, "buffered behind an active run: the scheduler releases it"
    return None


def _decide(
    letter: DeadLetter, decided: dict[uuid.UUID, RedriveAction], now: datetime
) -> tuple[RedriveAction, str, int]:
    """What to do with one dead letter: (action, detail, DelaySeconds of the new doorbell).

    A retry due within SQS's 900 s gets a delayed doorbell (as the sweeper sends it); a later
    one is left to the sweeper.
    """
    settled = _settled(letter, decided)
    if settled is not None:
        return settled[0], settled[1], 0
    execution = letter.execution
    assert execution is not None
    delay = 0
    if execution.status is ExecutionStatus.RETRYING and execution.not_before is not None:
        delay = max(0, math.ceil((execution.not_before - now).total_seconds()))
        if delay > SQS_MAX_DELAY_SECONDS:
            due = iso(execution.not_before)
            return RedriveAction.SCHEDULER, f"retry due at {due}: the sweeper sends it", 0
    detail = f"was {execution.status.value}" + (f", delayed {delay}s" if delay else "")
    return RedriveAction.REDRIVEN, detail, delay


@dataclass
class _Redrive:
    """One redrive run: decisions carried across pages (one doorbell per execution)."""

    sessions: sessionmaker[Session]
    publisher: ExecutionPublisher
    reader: DeadLetterReader
    dry_run: bool
    now: datetime
    decided: dict[uuid.UUID, RedriveAction] = field(default_factory=dict)

    def page(self, letters: Sequence[DeadLetter]) -> list[RedriveItem]:
        _join(self.sessions, letters)
        items: list[RedriveItem] = []
        doorbells: dict[uuid.UUID, list[RedriveItem]] = {}  # execution -> items sharing its fate
        delays: dict[uuid.UUID, int] = {}
        for letter in letters:
            action, detail, delay = _decide(letter, self.decided, self.now)
            item = RedriveItem(letter, action, detail)
            items.append(item)
            if letter.execution_id is None:
                continue
            if action is RedriveAction.REDRIVEN:
                doorbells[letter.execution_id] = [item]
                if delay:
                    delays[letter.execution_id] = delay
            elif letter.execution_id in doorbells:
                doorbells[letter.execution_id].append(item)  # a duplicate of one sent now
            self.decided.setdefault(letter.execution_id, action)
        if self.dry_run:
            return items
        if doorbells:
            report = dispatch(
                self.sessions, self.publisher, list(doorbells), self.now, delays=delays
            )
            for execution_id, error in report.failed.items():
                self.decided[execution_id] = RedriveAction.SEND_FAILED
                for item in doorbells[execution_id]:
                    item.action, item.detail = RedriveAction.SEND_FAILED, error
        deleting = [item for item in items if item.action.deletes]
        failed = self.reader.delete([item.letter for item in deleting])
        for item in deleting:
            item.deleted = item.letter.message_id not in failed
            if not item.deleted:
                item.detail += f"; not deleted: {failed[item.letter.message_id]}"
        return items


@contextmanager
def _database_errors() -> Iterator[None]:
    try:
        yield
    except SQLAlchemyError as exc:
        raise ConveyorError(f"database: {_database_error(exc)}") from exc


def redrive_dead_letters(
    sqs: Any,
    dlq_url: str,
    sessions: sessionmaker[Session],
    publisher: ExecutionPublisher,
    *,
    ids: Sequence[str] = (),
    select_all: bool = False,
    dry_run: bool = False,
    now: datetime,
) -> RedriveReport:
    """Replay dead letters: a fresh doorbell for every execution that can still run, then the dead
    letter is deleted. Finished executions' dead letters are only deleted. Safe to re-run: a
    second run finds nothing (or sends one more doorbell, which the conditional claim ignores).

    ``ids`` are execution ids or SQS message ids; dead letters not selected are left untouched
    (made visible again at the end).
    """
    wanted = parse_selection(ids, select_all=select_all)
    report = RedriveReport(dry_run=dry_run)
    matched: set[str] = set()
    with DeadLetterReader(sqs, dlq_url) as reader, _database_errors():
        run = _Redrive(sessions, publisher, reader, dry_run, now)
        for page in reader.pages():
            keys = [
                {letter.message_id, str(letter.execution_id) if letter.execution_id else ""}
                for letter in page
            ]
            chosen = [
                letter
                for letter, key in zip(page, keys, strict=True)
                if wanted is None or key & wanted
            ]
            for key in keys:
                matched.update(key)
            if chosen:
                report.items.extend(run.page(chosen))
    if wanted is not None:
        report.not_found = sorted(wanted - matched)
    return report


# ------------------------------------------------------------------------------ worker liveness


@dataclass(frozen=True)
class AliveCheck:
    healthy: bool
    message: str
    age_seconds: float | None


def alive_max_age(settings: Settings) -> float:
    return float(ALIVE_HEARTBEATS * settings.heartbeat_seconds)


def touch_alive_file(path: Path) -> None:
    """Mark the worker alive: set the file's modification time to now (creating it)."""
    path.touch(exist_ok=True)
    os.utime(path)


def check_alive_file(path: Path, max_age_seconds: float, *, now: float | None = None) -> AliveCheck:
    """Healthy while ``path`` was touched within ``max_age_seconds`` (a future time counts as
    fresh: clock adjustments must not kill a worker)."""
    try:
        modified = path.stat().st_mtime
    except FileNotFoundError:
        return AliveCheck(
            False,
            f"unhealthy: no heartbeat file {path} (the worker's consumer is not running)",
            None,
        )
    except OSError as exc:
        return AliveCheck(False, f"unhealthy: cannot read {path}: {exc.strerror}", None)
    age = max(0.0, (time.time() if now is None else now) - modified)
    if age > max_age_seconds:
        return AliveCheck(
            False,
            f"unhealthy: last heartbeat {age:.0f}s ago (limit {max_age_seconds:.0f}s), {path}",
            age,
        )
    return AliveCheck(True, f"healthy: last heartbeat {age:.0f}s ago", age)


def alive_file_step(settings: Settings) -> type[StartStopStep]:
    """A Celery worker bootstep that touches ``settings.worker_alive_file`` at start and then
    every ``heartbeat_seconds`` from the worker's timer, and removes it on shutdown.

    With an asynchronous transport (SQS) the timer is the consumer's event loop, so the file
    goes stale when that loop is wedged, while pool processes busy with long executions do not
    stop it. Add it with ``app.steps["worker"].add(alive_file_step(settings))``.
    """
    from celery import bootsteps  # noqa: PLC0415
    from celery.utils.log import get_logger  # noqa: PLC0415

    logger = get_logger("conveyor.alive")
    path = Path(settings.worker_alive_file)
    interval = float(settings.heartbeat_seconds)

    def touch() -> None:
        try:
            touch_alive_file(path)
        except OSError as exc:  # never let the health file take the worker down
            logger.warning("cannot touch the alive file %s: %s", path, exc)

    class AliveFile(bootsteps.StartStopStep):
        requires = ("celery.worker.components:Timer",)

        def __init__(self, parent: Any, **kwargs: Any) -> None:
            super().__init__(parent, **kwargs)
            self.entry: Any = None

        def start(self, parent: Any) -> None:
            touch()
            self.entry = parent.timer.call_repeatedly(interval, touch, priority=10)

        def stop(self, parent: Any) -> None:
            if self.entry is not None:
                self.entry.cancel()
                self.entry = None
            path.unlink(missing_ok=True)

    return AliveFile
