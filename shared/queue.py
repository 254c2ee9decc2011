"""The queue: Celery's configuration for SQS, and a batch publisher that speaks Celery's format.

The scheduler and the API publish with ``SendMessageBatch`` directly (10 messages a call, bounded
parallelism) instead of going through Celery's producer: one HTTP call per 10 executions, no
Celery import in the Lambda, and per-message delays (``DelaySeconds``) for retries. The body is
exactly what kombu's SQS transport writes (a base64 JSON envelope around a Celery protocol-2
task message), so a stock Celery worker consumes it; a test proves that with a real worker.

A message is only a doorbell (invariant 1): it carries an execution id and nothing a worker must
trust.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from shared.settings import Settings

RUN_EXECUTION_TASK = "conveyor.run_execution"
SQS_BATCH_LIMIT = 10
SQS_MAX_DELAY_SECONDS = 900


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def celery_message_body(
    task: str,
    args: Sequence[Any] = (),
    kwargs: dict[str, Any] | None = None,
    *,
    queue_name: str,
    task_id: str | None = None,
) -> str:
    """The SQS ``MessageBody`` kombu's SQS transport would write for a Celery task call."""
    task_id = task_id or str(uuid.uuid4())
    kwargs = kwargs or {}
    payload = json.dumps(
        [list(args), kwargs, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}],
        separators=(",", ":"),
    ).encode()
    envelope = {
        "body": _b64(payload),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "lang": "py",
            "task": task,
            "id": task_id,
            "shadow": None,
            "eta": None,
            "expires": None,
            "group": None,
            "group_index": None,
            "retries": 0,
            "timelimit": [None, None],
            "root_id": task_id,
            "parent_id": None,
            "argsrepr": repr(tuple(args)),
            "kwargsrepr": repr(kwargs),
            "origin": "conveyor",
            "ignore_result": True,
        },
        "properties": {
            "correlation_id": task_id,
            "reply_to": "",
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue_name},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }
    return _b64(json.dumps(envelope, separators=(",", ":")).encode())


@dataclass(frozen=True)
class TaskMessage:
    task: str
    task_id: str
    args: list[Any]
    kwargs: dict[str, Any]


def decode_message_body(body: str) -> TaskMessage:
    """Read back a Celery task message from an SQS body (for DLQ inspection and tests)."""
    envelope = json.loads(base64.b64decode(body))
    args, kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
    headers = envelope["headers"]
    return TaskMessage(task=headers["task"], task_id=headers["id"], args=args, kwargs=kwargs)


@dataclass(frozen=True)
class OutgoingMessage:
    """One doorbell: run ``execution_id``, not before ``delay_seconds`` (capped at SQS's 900)."""

    execution_id: str
    delay_seconds: int = 0


@dataclass
class PublishReport:
    sent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


class ExecutionPublisher:
    """Sends execution doorbells with ``SendMessageBatch``, ``parallelism`` calls in flight."""

    def __init__(
        self, sqs_client: Any, queue_url: str, queue_name: str, *, parallelism: int = 4
    ) -> None:
        self.sqs = sqs_client
        self.queue_url = queue_url
        self.queue_name = queue_name
        self.parallelism = parallelism

    def body_for(self, execution_id: str) -> str:
        return celery_message_body(
            RUN_EXECUTION_TASK, [execution_id], queue_name=self.queue_name, task_id=execution_id
        )

    def _send_batch(self, batch: Sequence[OutgoingMessage]) -> PublishReport:
        report = PublishReport()
        entries = [
            {
                "Id": str(index),
                "MessageBody": self.body_for(message.execution_id),
                "DelaySeconds": max(0, min(message.delay_seconds, SQS_MAX_DELAY_SECONDS)),
            }
            for index, message in enumerate(batch)
        ]
        try:
            response = self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
        except Exception as exc:  # network or service error: the whole batch stays unsent
            report.failed.update({m.execution_id: f"{type(exc).__name__}: {exc}" for m in batch})
            return report
        for entry in response.get("Successful", []):
            report.sent.append(batch[int(entry["Id"])].execution_id)
        for entry in response.get("Failed", []):
            execution_id = batch[int(entry["Id"])].execution_id
            report.failed[execution_id] = f"{entry.get('Code')}: {entry.get('Message', '')}"
        return report

    def publish(self, messages: Sequence[OutgoingMessage]) -> PublishReport:
        batches = [
            messages[i : i + SQS_BATCH_LIMIT] for i in range(0, len(messages), SQS_BATCH_LIMIT)
        ]
        total = PublishReport()
        if not batches:
            return total
        if len(batches) == 1 or self.parallelism == 1:
            results = [self._send_batch(batch) for batch in batches]
        else:
            with ThreadPoolExecutor(max_workers=min(self.parallelism, len(batches))) as pool:
                results = list(pool.map(self._send_batch, batches))
        for result in results:
            total.sent.extend(result.sent)
            total.failed.update(result.failed)
        return total


def sqs_client(settings: Settings) -> Any:
    """A boto3 SQS client; ``AWS_ENDPOINT_URL_SQS``/``AWS_ENDPOINT_URL`` select an emulator."""
    import boto3  # noqa: PLC0415
    from botocore.config import Config  # noqa: PLC0415

    config = Config(
        retries={"max_attempts": 5, "mode": "adaptive"},
        max_pool_connections=max(10, settings.enqueue_parallelism * 2),
    )
    return boto3.session.Session().client("sqs", region_name=settings.region, config=config)


def publisher_from_settings(settings: Settings, client: Any = None) -> ExecutionPublisher:
    if not settings.queue_url:
        from shared.errors import ConfigurationError  # noqa: PLC0415

        raise ConfigurationError("CONVEYOR_QUEUE_URL is not set")
    return ExecutionPublisher(
        client or sqs_client(settings),
        settings.queue_url,
        settings.queue_name,
        parallelism=settings.enqueue_parallelism,
    )


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings for SQS: late acks, prefetch 1, no remote control, no result backend."""
    if not settings.queue_url:
        from shared.errors import ConfigurationError  # noqa: PLC0415

        raise ConfigurationError("CONVEYOR_QUEUE_URL is not set: the worker needs its queue")
    return {
        "broker_url": "sqs://",
        "broker_transport_options": {
            "region": settings.region,
            "predefined_queues": {settings.queue_name: {"url": settings.queue_url}},
            "polling_interval": settings.worker_polling_interval,
            "wait_time_seconds": 1,
            "visibility_timeout": settings.visibility_timeout_seconds,
        },
        "broker_connection_retry_on_startup": True,
        "task_default_queue": settings.queue_name,
        "task_create_missing_queues": False,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "task_ignore_result": True,
        "result_backend": None,
        "worker_prefetch_multiplier": 1,
        "worker_enable_remote_control": False,
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        "worker_hijack_root_logger": False,
        "worker_concurrency": settings.worker_concurrency,
        "accept_content": ["json"],
        "task_serializer": "json",
    }
