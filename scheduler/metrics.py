"""The backlog-per-worker metric that worker autoscaling tracks, published as a CloudWatch EMF line.

Embedded Metric Format: a JSON log line that CloudWatch Logs turns into a metric, so the scheduler
Lambda needs no PutMetricData call on its hot path (its role still allows it, for other runtimes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

NAMESPACE = "Conveyor"
METRIC = "BacklogPerWorker"


@dataclass(frozen=True)
class BacklogSample:
    visible: int
    in_flight: int
    workers: int

    @property
    def per_worker(self) -> float:
        """Messages waiting per running worker task (all of them when no worker runs)."""
        return float(self.visible) / max(self.workers, 1)

    def to_json(self) -> dict[str, Any]:
        return {
            "visible": self.visible,
            "in_flight": self.in_flight,
            "workers": self.workers,
            "per_worker": round(self.per_worker, 3),
        }


def sample_backlog(
    sqs: Any,
    queue_url: str,
    *,
    ecs: Any = None,
    cluster: str | None = None,
    service: str | None = None,
    default_workers: int = 1,
) -> BacklogSample:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    workers = default_workers
    if ecs is not None and cluster and service:
        services = ecs.describe_services(cluster=cluster, services=[service])["services"]
        if services:
            workers = int(services[0].get("runningCount", 0))
    return BacklogSample(
        visible=int(attributes.get("ApproximateNumberOfMessages", 0)),
        in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        workers=workers,
    )


def emf_line(sample: BacklogSample, *, service: str, now: datetime) -> str:
    """One EMF document: ``Conveyor/BacklogPerWorker`` with dimension ``Service``."""
    return json.dumps(
        {
            "_aws": {
                "Timestamp": int(now.timestamp() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": NAMESPACE,
                        "Dimensions": [["Service"]],
                        "Metrics": [
                            {"Name": METRIC, "Unit": "Count"},
                            {"Name": "QueueVisible", "Unit": "Count"},
                            {"Name": "QueueInFlight", "Unit": "Count"},
                        ],
                    }
                ],
            },
            "Service": service,
            METRIC: sample.per_worker,
            "QueueVisible": sample.visible,
            "QueueInFlight": sample.in_flight,
        },
        separators=(",", ":"),
    )
