"""`conveyor workers …` and `conveyor dlq …` against moto's ECS, SQS, Application Auto Scaling and
CloudWatch (one moto server on loopback) and a real PostgreSQL; the worker's alive file with a real
Celery worker process.

What moto does and does not do, and how the tests deal with it:
* ECS DescribeServices/UpdateService, Application Auto Scaling Describe/RegisterScalableTarget
  (SuspendedState included) and SQS redrive to the DLQ after maxReceiveCount: supported, used as is.
* CloudWatch: moto never publishes the ``AWS/SQS`` metrics SQS itself sends, so the oldest message
  age is "unknown" unless a test writes the datapoint (moto, unlike AWS, accepts PutMetricData in
  the ``AWS/`` namespaces).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from conveyor_cli.fleet import worker_check
from conveyor_cli.main import cli
from shared.fleet import (
    ECS_DIMENSION,
    alive_max_age,
    check_alive_file,
    touch_alive_file,
)
from shared.models import Execution, ExecutionEvent
from shared.queue import ExecutionPublisher, celery_message_body, decode_message_body
from shared.settings import Settings
from shared.status import ExecutionStatus, Trigger
from tests.conftest import SqsEndpoint
from tests.harness.celery_worker import CeleryWorker
from tests.harness.network import wait_until

REGION = "us-east-1"


# --------------------------------------------------------------------------- fixtures


@dataclass
class Aws:
    ecs: Any
    autoscaling: Any
    cloudwatch: Any
    sqs: Any


@dataclass
class Fleet:
    cluster: str
    service: str

    @property
    def resource_id(self) -> str:
        return f"service/{self.cluster}/{self.service}"


@pytest.fixture
def aws(sqs_endpoint: SqsEndpoint) -> Aws:
    def client(name: str) -> Any:
        return boto3.client(name, endpoint_url=sqs_endpoint.url, region_name=REGION)

    return Aws(
        client("ecs"), client("application-autoscaling"), client("cloudwatch"), client("sqs")
    )


@pytest.fixture
def fleet(aws: Aws) -> Iterator[Fleet]:
    """A fresh ECS cluster with a 2-task Fargate service (moto keeps state per server)."""
    suffix = uuid.uuid4().hex[:8]
    cluster, service = f"conveyor-{suffix}", f"workers-{suffix}"
    aws.ecs.create_cluster(clusterName=cluster)
    aws.ecs.register_task_definition(
        family=service,
        containerDefinitions=[{"name": "worker", "image": "conveyor-worker", "memory": 512}],
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
    )
    aws.ecs.create_service(
        cluster=cluster,
        serviceName=service,
        taskDefinition=service,
        desiredCount=2,
        launchType="FARGATE",
    )
    yield Fleet(cluster, service)
    aws.ecs.delete_service(cluster=cluster, service=service, force=True)


def register_target(aws: Aws, fleet: Fleet, minimum: int, maximum: int) -> None:
    """What Terraform's aws_appautoscaling_target creates for the service."""
    aws.autoscaling.register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId=fleet.resource_id,
        ScalableDimension=ECS_DIMENSION,
        MinCapacity=minimum,
        MaxCapacity=maximum,
    )


def scalable_target(aws: Aws, fleet: Fleet) -> dict[str, Any]:
    targets = aws.autoscaling.describe_scalable_targets(
        ServiceNamespace="ecs", ResourceIds=[fleet.resource_id], ScalableDimension=ECS_DIMENSION
    )["ScalableTargets"]
    assert len(targets) == 1
    return dict(targets[0])


def desired_count(aws: Aws, fleet: Fleet) -> int:
    service = aws.ecs.describe_services(cluster=fleet.cluster, services=[fleet.service])
    return int(service["services"][0]["desiredCount"])


@pytest.fixture
def env(pg_url: str, sqs: SqsEndpoint, fleet: Fleet, tmp_path: Path) -> dict[str, str | None]:
    """The environment an operator exports (docs/deploy.md), pointing at the emulator."""
    return {
        "CONVEYOR_DATABASE_URL": pg_url,
        "CONVEYOR_HOME": str(tmp_path / "home"),
        "CONVEYOR_LOG_LEVEL": "WARNING",
        "CONVEYOR_REGION": REGION,
        "CONVEYOR_QUEUE_URL": sqs.queue_url,
        "CONVEYOR_QUEUE_NAME": sqs.queue_name,
        "CONVEYOR_DLQ_URL": sqs.dlq_url,
        "CONVEYOR_ECS_CLUSTER": fleet.cluster,
        "CONVEYOR_ECS_SERVICE": fleet.service,
    }


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def conveyor(env: dict[str, str | None], *args: str) -> Result:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return Result(result.exit_code, result.stdout, result.stderr)


def add_execution(
    sessions: sessionmaker[Session],
    status: ExecutionStatus,
    *,
    worker_id: str | None = None,
    workflow: str = "nightly",
    reason: str | None = None,
    not_before: datetime | None = None,
) -> uuid.UUID:
    now = datetime.now(UTC)
    execution = Execution(
        id=uuid.uuid4(),
        workflow_name=workflow,
        trigger=Trigger.API,
        status=status,
        reason=reason,
        definition={"name": workflow, "steps": []},
        input={},
        attempt=1 if status is not ExecutionStatus.PENDING else 0,
        max_attempts=3,
        worker_id=worker_id,
        not_before=not_before,
        created_at=now,
        updated_at=now,
        finished_at=now if status.is_terminal else None,
    )
    with sessions() as session, session.begin():
        session.add(execution)
    return execution.id


def execution_status(sessions: sessionmaker[Session], execution_id: uuid.UUID) -> ExecutionStatus:
    with sessions() as session:
        status = session.scalar(select(Execution.status).where(Execution.id == execution_id))
    assert status is not None
    return status


def publisher(sqs: SqsEndpoint) -> ExecutionPublisher:
    return ExecutionPublisher(sqs.client, sqs.queue_url, sqs.queue_name)


def dead_letter(sqs: SqsEndpoint, execution_id: uuid.UUID | str) -> str:
    """Put a doorbell for ``execution_id`` straight into the DLQ; returns its message id."""
    body = publisher(sqs).body_for(str(execution_id))
    return str(sqs.client.send_message(QueueUrl=sqs.dlq_url, MessageBody=body)["MessageId"])


def drain(sqs: SqsEndpoint, url: str) -> list[dict[str, Any]]:
    """Receive (and so hide for 30 s) every message of ``url``."""
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.client.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=30,
            WaitTimeSeconds=0,
            MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
        if not batch:
            return messages
        messages.extend(batch)


def doorbells(sqs: SqsEndpoint) -> list[str]:
    """Execution ids of the doorbells waiting in the execution queue (consumes the view)."""
    return [decode_message_body(m["Body"]).args[0] for m in drain(sqs, sqs.queue_url)]


def dlq_depth(sqs: SqsEndpoint) -> tuple[int, int]:
    attributes = sqs.client.get_queue_attributes(
        QueueUrl=sqs.dlq_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


# --------------------------------------------------------------------------- workers status


def test_status_reports_ecs_counts_queue_backlog_dlq_depth_and_running_executions_per_worker(
    env: dict[str, str | None], sqs: SqsEndpoint, pg_sessions: sessionmaker[Session]
) -> None:
    for _ in range(2):
        add_execution(pg_sessions, ExecutionStatus.RUNNING, worker_id="celery@task-a")
    add_execution(pg_sessions, ExecutionStatus.RUNNING, worker_id="celery@task-b")
    add_execution(pg_sessions, ExecutionStatus.QUEUED)
    for _ in range(3):
        sqs.client.send_message(QueueUrl=sqs.queue_url, MessageBody="doorbell")
    dead_letter(sqs, uuid.uuid4())

    result = conveyor(env, "workers", "status", "--json")

    assert result.code == 0, result.err
    status = result.json()
    assert status["service"]["name"] == env["CONVEYOR_ECS_SERVICE"]
    assert status["service"]["desired"] == 2
    assert status["service"]["running"] + status["service"]["pending"] == 2
    assert status["autoscaling"] is None
    assert status["queue"]["visible"] == 3
    assert status["queue"]["in_flight"] == 0
    assert status["dlq"]["depth"] == 1
    assert status["executions"] == {
        "running": 3,
        "by_worker": [
            {"worker_id": "celery@task-a", "running": 2},
            {"worker_id": "celery@task-b", "running": 1},
        ],
    }


def test_status_says_the_oldest_message_age_is_unknown_when_cloudwatch_has_no_datapoint(
    env: dict[str, str | None],
) -> None:
    status = conveyor(env, "workers", "status", "--json").json()

    assert status["queue"]["oldest_age_seconds"] is None
    assert status["queue"]["oldest_age_source"].startswith("unknown: no CloudWatch datapoint")
    human = conveyor(env, "workers", "status")
    assert "oldest unknown" in human.out


def test_status_reads_the_oldest_message_age_from_cloudwatch(
    env: dict[str, str | None], aws: Aws, sqs: SqsEndpoint
) -> None:
    now = datetime.now(UTC)
    for age, at in ((30.0, now - timedelta(minutes=3)), (42.0, now - timedelta(seconds=30))):
        aws.cloudwatch.put_metric_data(
            Namespace="AWS/SQS",
            MetricData=[
                {
                    "MetricName": "ApproximateAgeOfOldestMessage",
                    "Dimensions": [{"Name": "QueueName", "Value": sqs.queue_name}],
                    "Value": age,
                    "Unit": "Seconds",
                    "Timestamp": at,
                }
            ],
        )

    status = conveyor(env, "workers", "status", "--json").json()

    assert status["queue"]["oldest_age_seconds"] == 42.0  # the latest datapoint, not the largest
    assert status["queue"]["oldest_age_source"] == "cloudwatch"


def test_status_prints_a_compact_table(
    env: dict[str, str | None], aws: Aws, fleet: Fleet, pg_sessions: sessionmaker[Session]
) -> None:
    register_target(aws, fleet, 1, 4)
    add_execution(pg_sessions, ExecutionStatus.RUNNING, worker_id="celery@task-a")

    result = conveyor(env, "workers", "status")

    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith(f"service   {fleet.cluster}/{fleet.service}  ACTIVE  desired 2")
    assert "scaling   min 1  max 4  autoscaling active" in lines
    assert any(line.startswith("queue     visible 0  in flight 0") for line in lines)
    assert "dlq       0" in lines
    assert "running   1 execution" in lines
    assert any("celery@task-a" in line and line.endswith(" 1") for line in lines)


def test_status_without_a_queue_url_still_reports_the_service_and_says_what_is_missing(
    env: dict[str, str | None],
) -> None:
    result = conveyor(env | {"CONVEYOR_QUEUE_URL": None}, "workers", "status", "--json")

    assert result.code == 0, result.err
    assert result.json()["queue"] is None
    assert "queue: CONVEYOR_QUEUE_URL is not set" in result.json()["notes"]


@pytest.mark.parametrize("command", [["status"], ["scale", "3"], ["resume"]])
def test_workers_commands_without_an_ecs_cluster_exit_3_naming_the_setting(
    env: dict[str, str | None], command: list[str]
) -> None:
    result = conveyor(env | {"CONVEYOR_ECS_CLUSTER": None}, "workers", *command)

    assert result.code == 3
    assert "CONVEYOR_ECS_CLUSTER is not set" in result.err


def test_a_service_that_does_not_exist_is_a_configuration_error(
    env: dict[str, str | None],
) -> None:
    missing_service = conveyor(env | {"CONVEYOR_ECS_SERVICE": "nope"}, "workers", "status")
    missing_cluster = conveyor(env | {"CONVEYOR_ECS_CLUSTER": "nope"}, "workers", "status")

    assert missing_service.code == 3
    assert "ECS service 'nope' not found" in missing_service.err
    assert missing_cluster.code == 3
    assert "ECS cluster 'nope' not found" in missing_cluster.err


# --------------------------------------------------------------------------- workers scale


def test_scaling_within_the_scalable_targets_range_sets_the_desired_count(
    env: dict[str, str | None], aws: Aws, fleet: Fleet
) -> None:
    register_target(aws, fleet, 1, 4)

    result = conveyor(env, "workers", "scale", "4", "--json")

    assert result.code == 0, result.err
    assert desired_count(aws, fleet) == 4
    report = result.json()
    assert (report["previous_desired"], report["desired"]) == (2, 4)
    assert (report["min"], report["max"]) == (1, 4)
    assert report["bounds_from"] == f"the scalable target {fleet.resource_id}"
    assert "autoscaling may change the count again" in report["note"]


def test_scaling_outside_the_scalable_targets_range_exits_2_and_changes_nothing(
    env: dict[str, str | None], aws: Aws, fleet: Fleet
) -> None:
    register_target(aws, fleet, 1, 4)

    result = conveyor(env, "workers", "scale", "7")

    assert result.code == 2
    assert (
        f"7 is outside the allowed range [1, 4] (from the scalable target {fleet.resource_id})"
        in result.err
    )
    assert desired_count(aws, fleet) == 2


def test_flags_that_disagree_with_the_scalable_target_are_refused(
    env: dict[str, str | None], aws: Aws, fleet: Fleet
) -> None:
    register_target(aws, fleet, 1, 4)

    refused = conveyor(env, "workers", "scale", "6", "--min", "1", "--max", "10")
    agreeing = conveyor(env, "workers", "scale", "3", "--min", "1", "--max", "4")

    assert refused.code == 2
    assert "--min 1 --max 10 disagree with the scalable target" in refused.err
    assert "(min 1, max 4)" in refused.err
    assert agreeing.code == 0, agreeing.err
    assert desired_count(aws, fleet) == 3


def test_without_a_scalable_target_the_flags_give_the_allowed_range(
    env: dict[str, str | None], aws: Aws, fleet: Fleet
) -> None:
    # The flags path is what an emulator_mode environment (no aws_appautoscaling_target) uses.
    inside = conveyor(env, "workers", "scale", "5", "--min", "1", "--max", "5")
    outside = conveyor(env, "workers", "scale", "6", "--min", "1", "--max", "5")

    assert inside.code == 0, inside.err
    assert "from --min/--max" in inside.out
    assert "no autoscaling target" in inside.out
    assert outside.code == 2
    assert "6 is outside the allowed range [1, 5] (from --min/--max)" in outside.err
    assert desired_count(aws, fleet) == 5


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ([], "no scalable target for service/"),
        (["--min", "1"], "--min and --max go together"),
        (["--min", "5", "--max", "2"], "--min 5 is greater than --max 2"),
        (["--min", "1", "--max", "5", "--hold"], "--hold needs a scalable target"),
    ],
)
def test_without_a_scalable_target_an_unknown_range_is_refused(
    env: dict[str, str | None], aws: Aws, fleet: Fleet, flags: list[str], message: str
) -> None:
    result = conveyor(env, "workers", "scale", "3", *flags)

    assert result.code == 2
    assert message in result.err
    assert desired_count(aws, fleet) == 2


def test_a_negative_count_is_invalid_input(env: dict[str, str | None]) -> None:
    assert conveyor(env, "workers", "scale", "--", "-1").code == 2


def test_hold_suspends_autoscaling_until_resume(
    env: dict[str, str | None], aws: Aws, fleet: Fleet
) -> None:
    register_target(aws, fleet, 1, 4)

    held = conveyor(env, "workers", "scale", "3", "--hold")
    status_held = conveyor(env, "workers", "status", "--json").json()
    resumed = conveyor(env, "workers", "resume", "--json")

    assert held.code == 0, held.err
    assert "autoscaling is suspended" in held.out
    assert desired_count(aws, fleet) == 3
    assert status_held["autoscaling"]["dynamic_scaling"] == "suspended"
    assert resumed.code == 0, resumed.err
    assert resumed.json()["dynamic_scaling"] == "active"
    target = scalable_target(aws, fleet)
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 4)  # bounds untouched
    assert target["SuspendedState"]["DynamicScalingInSuspended"] is False
    assert target["SuspendedState"]["DynamicScalingOutSuspended"] is False


def test_resume_without_a_scalable_target_says_there_is_nothing_to_resume(
    env: dict[str, str | None],
) -> None:
    result = conveyor(env, "workers", "resume")

    assert result.code == 2
    assert "nothing to resume" in result.err


# --------------------------------------------------------------------------- dlq list


def test_a_message_received_too_often_lands_in_the_dlq_and_list_shows_it_without_consuming_it(
    env: dict[str, str | None], sqs: SqsEndpoint, pg_sessions: sessionmaker[Session]
) -> None:
    execution_id = add_execution(pg_sessions, ExecutionStatus.QUEUED, workflow="daily-report")
    sqs.client.send_message(
        QueueUrl=sqs.queue_url, MessageBody=publisher(sqs).body_for(str(execution_id))
    )
    # A worker crashing on it: received and never deleted, past maxReceiveCount (5).
    for _ in range(6):
        sqs.client.receive_message(QueueUrl=sqs.queue_url, VisibilityTimeout=0)
    assert dlq_depth(sqs) == (1, 0)

    first = conveyor(env, "dlq", "list", "--json")
    second = conveyor(env, "dlq", "list", "--json")

    assert first.code == 0, first.err
    [item] = first.json()["items"]
    assert item["execution_id"] == str(execution_id)
    assert item["task"] == "conveyor.run_execution"
    assert item["receive_count"] >= 5
    assert item["sent_at"].endswith("Z")
    assert item["execution"] == {
        "status": "queued",
        "workflow": "daily-report",
        "attempt": 1,
        "max_attempts": 3,
    }
    assert second.json()["items"][0]["message_id"] == item["message_id"]  # still there
    assert dlq_depth(sqs) == (1, 0)  # and visible again


def test_dlq_list_shows_unknown_executions_and_foreign_messages_plainly(
    env: dict[str, str | None], sqs: SqsEndpoint
) -> None:
    unknown = uuid.uuid4()
    dead_letter(sqs, unknown)
    sqs.client.send_message(QueueUrl=sqs.dlq_url, MessageBody="not a celery message")

    result = conveyor(env, "dlq", "list")

    assert result.code == 0, result.err
    assert f"{unknown}  unknown" in result.out
    assert "not a Celery task message" in result.out
    listing = conveyor(env, "dlq", "list", "--json").json()
    problems = sorted(str(item["problem"]) for item in listing["items"])
    assert problems[0] == "None"
    assert problems[1].startswith("not a Celery task message (")


def test_dlq_list_stops_at_the_limit_and_says_there_are_more(
    env: dict[str, str | None], sqs: SqsEndpoint
) -> None:
    for _ in range(5):
        dead_letter(sqs, uuid.uuid4())

    listing = conveyor(env, "dlq", "list", "--limit", "2", "--json").json()
    human = conveyor(env, "dlq", "list", "--limit", "2")

    assert listing["count"] == 2
    assert listing["depth"] == 5
    assert listing["more"] is True
    assert "showing 2 of about 5" in human.out
    assert dlq_depth(sqs) == (5, 0)


def test_dlq_list_of_an_empty_queue_says_so(env: dict[str, str | None]) -> None:
    result = conveyor(env, "dlq", "list")

    assert result.code == 0, result.err
    assert result.out.strip() == "the dead-letter queue is empty"


@pytest.mark.parametrize("command", [["list"], ["redrive", "--all"]])
def test_dlq_commands_without_a_dlq_url_exit_3_naming_the_setting(
    env: dict[str, str | None], command: list[str]
) -> None:
    result = conveyor(env | {"CONVEYOR_DLQ_URL": None}, "dlq", *command)

    assert result.code == 3
    assert "CONVEYOR_DLQ_URL is not set" in result.err


def test_redrive_without_a_queue_url_exits_3(env: dict[str, str | None]) -> None:
    result = conveyor(env | {"CONVEYOR_QUEUE_URL": None}, "dlq", "redrive", "--all")

    assert result.code == 3
    assert "CONVEYOR_QUEUE_URL is not set" in result.err


# --------------------------------------------------------------------------- dlq redrive


@pytest.fixture
def dead_letters(
    sqs: SqsEndpoint, pg_sessions: sessionmaker[Session]
) -> dict[str, uuid.UUID | str]:
    """One dead letter of each kind redrive tells apart."""
    kinds: dict[str, uuid.UUID | str] = {
        "pending": add_execution(pg_sessions, ExecutionStatus.PENDING),
        "queued": add_execution(pg_sessions, ExecutionStatus.QUEUED),
        "succeeded": add_execution(pg_sessions, ExecutionStatus.SUCCEEDED),
        "failed": add_execution(pg_sessions, ExecutionStatus.FAILED),
        "unknown": uuid.uuid4(),
    }
    for execution_id in kinds.values():
        dead_letter(sqs, execution_id)
    kinds["foreign"] = str(
        sqs.client.send_message(QueueUrl=sqs.dlq_url, MessageBody="garbage")["MessageId"]
    )
    return kinds


def test_redrive_sends_fresh_doorbells_for_unfinished_executions_and_drops_finished_ones(
    env: dict[str, str | None],
    sqs: SqsEndpoint,
    pg_sessions: sessionmaker[Session],
    dead_letters: dict[str, uuid.UUID | str],
) -> None:
    result = conveyor(env, "dlq", "redrive", "--all", "--json")

    assert result.code == 0, result.err
    report = result.json()
    actions = {item["execution_id"] or item["message_id"]: item for item in report["items"]}
    by_kind = {kind: actions[str(ident)] for kind, ident in dead_letters.items()}
    assert by_kind["pending"]["action"] == "redriven"
    assert by_kind["queued"]["action"] == "redriven"
    assert by_kind["succeeded"]["action"] == "already_finished"
    assert by_kind["failed"]["action"] == "already_finished"
    assert by_kind["unknown"]["action"] == "unknown_execution"
    assert by_kind["foreign"]["action"] == "not_a_doorbell"
    assert [by_kind[k]["deleted"] for k in ("pending", "queued", "succeeded", "failed")] == [
        True
    ] * 4
    assert report["counts"]["redriven"] == 2
    assert sorted(doorbells(sqs)) == sorted(
        [str(dead_letters["pending"]), str(dead_letters["queued"])]
    )
    # The outbox marking of dispatch(): the pending run is now queued, with a timeline entry.
    assert execution_status(pg_sessions, uuid.UUID(str(dead_letters["pending"]))) is (
        ExecutionStatus.QUEUED
    )
    with pg_sessions() as session:
        kinds = session.scalars(
            select(ExecutionEvent.kind).where(
                ExecutionEvent.execution_id == uuid.UUID(str(dead_letters["pending"]))
            )
        ).all()
    assert kinds == ["queued"]
    # What redrive cannot judge stays, visible, for a human.
    assert dlq_depth(sqs) == (2, 0)


def test_redrive_is_safe_to_run_again(
    env: dict[str, str | None], sqs: SqsEndpoint, dead_letters: dict[str, uuid.UUID | str]
) -> None:
    first = conveyor(env, "dlq", "redrive", "--all")
    sent_first = doorbells(sqs)
    second = conveyor(env, "dlq", "redrive", "--all", "--json")

    assert first.code == 0, first.err
    assert len(sent_first) == 2
    assert second.code == 0, second.err
    assert second.json()["counts"]["redriven"] == 0
    assert {item["action"] for item in second.json()["items"]} == {
        "unknown_execution",
        "not_a_doorbell",
    }
    assert doorbells(sqs) == []
    assert dlq_depth(sqs) == (2, 0)


def test_redrive_dry_run_reports_and_changes_nothing(
    env: dict[str, str | None],
    sqs: SqsEndpoint,
    pg_sessions: sessionmaker[Session],
    dead_letters: dict[str, uuid.UUID | str],
) -> None:
    result = conveyor(env, "dlq", "redrive", "--all", "--dry-run")

    assert result.code == 0, result.err
    assert f"{dead_letters['queued']}  would redrive" in result.out
    assert f"{dead_letters['succeeded']}  would delete: already finished" in result.out
    assert result.out.splitlines()[-1].startswith("dry run: 2 redriven, 2 already finished")
    assert doorbells(sqs) == []
    assert dlq_depth(sqs) == (6, 0)
    assert execution_status(pg_sessions, uuid.UUID(str(dead_letters["pending"]))) is (
        ExecutionStatus.PENDING
    )


def test_redrive_by_id_touches_only_the_named_dead_letters_and_reports_ids_not_found(
    env: dict[str, str | None], sqs: SqsEndpoint, dead_letters: dict[str, uuid.UUID | str]
) -> None:
    absent = uuid.uuid4()

    result = conveyor(
        env,
        "dlq",
        "redrive",
        str(dead_letters["queued"]),
        str(dead_letters["foreign"]),  # a message id works too
        str(absent),
        "--json",
    )

    assert result.code == 0, result.err
    report = result.json()
    assert [item["action"] for item in report["items"]] in (
        ["redriven", "not_a_doorbell"],
        ["not_a_doorbell", "redriven"],
    )
    assert report["not_found"] == [str(absent)]
    assert doorbells(sqs) == [str(dead_letters["queued"])]
    assert dlq_depth(sqs) == (5, 0)


def test_duplicate_dead_letters_of_one_execution_get_one_doorbell(
    env: dict[str, str | None], sqs: SqsEndpoint, pg_sessions: sessionmaker[Session]
) -> None:
    execution_id = add_execution(pg_sessions, ExecutionStatus.QUEUED)
    for _ in range(3):
        dead_letter(sqs, execution_id)

    result = conveyor(env, "dlq", "redrive", "--all", "--json")

    assert result.code == 0, result.err
    assert sorted(item["action"] for item in result.json()["items"]) == [
        "duplicate",
        "duplicate",
        "redriven",
    ]
    assert doorbells(sqs) == [str(execution_id)]
    assert dlq_depth(sqs) == (0, 0)


def test_redrive_delays_a_retry_due_soon_and_leaves_a_later_one_to_the_sweeper(
    env: dict[str, str | None], sqs: SqsEndpoint, pg_sessions: sessionmaker[Session]
) -> None:
    now = datetime.now(UTC)
    soon = add_execution(
        pg_sessions, ExecutionStatus.RETRYING, not_before=now + timedelta(minutes=5)
    )
    later = add_execution(
        pg_sessions, ExecutionStatus.RETRYING, not_before=now + timedelta(hours=2)
    )
    buffered = add_execution(pg_sessions, ExecutionStatus.PENDING, reason="buffered")
    for execution_id in (soon, later, buffered):
        dead_letter(sqs, execution_id)

    result = conveyor(env, "dlq", "redrive", "--all", "--json")

    assert result.code == 0, result.err
    items = {item["execution_id"]: item for item in result.json()["items"]}
    assert items[str(soon)]["action"] == "redriven"
    assert "delayed" in items[str(soon)]["detail"]
    assert items[str(later)]["action"] == "left_to_scheduler"
    assert items[str(buffered)]["action"] == "left_to_scheduler"
    attributes = sqs.client.get_queue_attributes(
        QueueUrl=sqs.queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"
    assert execution_status(pg_sessions, later) is ExecutionStatus.RETRYING
    assert execution_status(pg_sessions, buffered) is ExecutionStatus.PENDING
    assert dlq_depth(sqs) == (0, 0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give the execution ids to redrive"),
        (["--all", str(uuid.UUID(int=1))], "give either --all or ids, not both"),
        (["not-an-id"], "not an execution or message id: 'not-an-id'"),
    ],
)
def test_redrive_with_a_bad_selection_exits_2(
    env: dict[str, str | None], args: list[str], message: str
) -> None:
    result = conveyor(env, "dlq", "redrive", *args)

    assert result.code == 2
    assert message in result.err


# --------------------------------------------------------------------------- worker --check


def test_the_alive_check_is_healthy_only_while_the_file_is_fresh(tmp_path: Path) -> None:
    path = tmp_path / "conveyor-worker.alive"

    missing = check_alive_file(path, 45)
    touch_alive_file(path)
    fresh = check_alive_file(path, 45)
    stale = check_alive_file(path, 45, now=time.time() + 46)
    future = check_alive_file(path, 45, now=time.time() - 600)  # clock stepped back

    assert not missing.healthy
    assert "no heartbeat file" in missing.message
    assert fresh.healthy
    assert not stale.healthy
    assert "limit 45s" in stale.message
    assert future.healthy


def test_worker_check_exits_0_when_fresh_and_1_when_stale(
    make_settings: Callable[..., Settings], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(worker_alive_file=tmp_path / "alive", heartbeat_seconds=10)
    assert alive_max_age(settings) == 30

    touch_alive_file(settings.worker_alive_file)
    with pytest.raises(SystemExit) as healthy:
        worker_check(settings)
    old = time.time() - 31
    os.utime(settings.worker_alive_file, (old, old))
    with pytest.raises(SystemExit) as unhealthy:
        worker_check(settings)

    assert healthy.value.code == 0
    assert unhealthy.value.code == 1
    captured = capsys.readouterr()
    assert "healthy: last heartbeat" in captured.out
    assert "unhealthy: last heartbeat 31s ago (limit 30s)" in captured.err


def test_the_worker_alive_file_defaults_to_the_path_the_container_health_check_expects() -> None:
    default = Settings.model_fields["worker_alive_file"].default
    assert default == Path("/tmp/conveyor-worker.alive")


ALIVE_PROBE = """\
import time
from pathlib import Path

from celery import shared_task

from shared.fleet import alive_file_step
from worker.app import app, settings

# Once worker/app.py adds the step itself, this adds nothing and the test checks that wiring.
if not any(str(getattr(step, "name", "")).endswith("AliveFile") for step in app.steps["worker"]):
    app.steps["worker"].add(alive_file_step(settings))


@shared_task(name="tests.alive.busy")
def busy(marker: str, seconds: float) -> None:
    Path(marker + ".started").touch()
    time.sleep(seconds)
    Path(marker + ".done").touch()
"""


@pytest.mark.slow
def test_a_celery_worker_with_the_alive_step_stays_healthy_while_busy_and_removes_the_file_on_stop(
    pg_url: str,
    sqs: SqsEndpoint,
    worker_env: Callable[..., dict[str, str]],
    tmp_path: Path,
) -> None:
    # The wiring worker/app.py needs (one line in create_app), loaded here through --include
    # until it is there, so this test proves it with a real prefork worker on SQS.
    probe_dir = tmp_path / "probe"
    probe_dir.mkdir()
    (probe_dir / "conveyor_alive_probe.py").write_text(ALIVE_PROBE)
    alive = tmp_path / "worker.alive"
    marker = tmp_path / "busy"
    env = worker_env(
        pg_url,
        sqs,
        CONVEYOR_WORKER_ALIVE_FILE=str(alive),
        CONVEYOR_HEARTBEAT_SECONDS="1",  # touched every 1 s, stale after 3 s
        PYTHONPATH=str(probe_dir),
    )
    worker = CeleryWorker(
        env, log_path=tmp_path / "worker.log", concurrency=1, include=["conveyor_alive_probe"]
    ).start()
    try:
        wait_until(alive.exists, timeout=10, what="the alive file")
        # The only pool process runs a task for 5 s (longer than the 3 s limit): the consumer's
        # event loop keeps touching the file.
        body = celery_message_body("tests.alive.busy", [str(marker), 5], queue_name=sqs.queue_name)
        sqs.client.send_message(QueueUrl=sqs.queue_url, MessageBody=body)
        started = Path(f"{marker}.started")
        wait_until(started.exists, timeout=20, what="the busy task")
        ages = []
        while not Path(f"{marker}.done").exists():
            check = check_alive_file(alive, 3)
            assert check.healthy, check.message
            ages.append(check.age_seconds)
            time.sleep(0.25)
        assert len(ages) >= 10
    finally:
        code = worker.stop()

    assert code == 0, worker.log()[-3000:]
    assert not alive.exists()
    assert not check_alive_file(alive, 3).healthy


# ------------------------------------------------------------- no database, send failures


def test_without_a_database_url_status_and_list_skip_the_executions_and_redrive_refuses(
    env: dict[str, str | None], sqs: SqsEndpoint, tmp_path: Path
) -> None:
    dead_letter(sqs, uuid.uuid4())
    no_database = env | {"CONVEYOR_DATABASE_URL": None}

    status = conveyor(no_database, "workers", "status", "--json")
    listing = conveyor(no_database, "dlq", "list", "--json")
    redrive = conveyor(no_database, "dlq", "redrive", "--all")

    assert status.code == 0, status.err
    assert status.json()["executions"] == {"running": None, "by_worker": []}
    assert "executions: CONVEYOR_DATABASE_URL is not set" in status.json()["notes"]
    assert listing.code == 0, listing.err
    assert listing.json()["items"][0]["execution"] is None
    assert listing.json()["notes"] == ["executions not shown: CONVEYOR_DATABASE_URL is not set"]
    assert redrive.code == 3
    assert "CONVEYOR_DATABASE_URL is not set: redrive decides" in redrive.err
    assert dlq_depth(sqs) == (1, 0)
    assert not (tmp_path / "home" / "conveyor.db").exists()  # no stray SQLite stand-in


def test_a_doorbell_that_cannot_be_sent_keeps_its_dead_letter_and_exits_1(
    env: dict[str, str | None], sqs: SqsEndpoint, pg_sessions: sessionmaker[Session]
) -> None:
    execution_id = add_execution(pg_sessions, ExecutionStatus.QUEUED)
    dead_letter(sqs, execution_id)
    gone = sqs.queue_url.rsplit("/", 1)[0] + f"/deleted-{uuid.uuid4().hex[:8]}"

    result = conveyor(env | {"CONVEYOR_QUEUE_URL": gone}, "dlq", "redrive", "--all", "--json")

    assert result.code == 1
    [item] = result.json()["items"]
    assert item["action"] == "send_failed"
    assert item["deleted"] is False
    assert "QueueDoesNotExist" in item["detail"] or "NonExistentQueue" in item["detail"]
    assert dlq_depth(sqs) == (1, 0)
    assert execution_status(pg_sessions, execution_id) is ExecutionStatus.QUEUED
