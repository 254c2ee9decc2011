"""Worker throughput: executions per second of one-step ``conveyor.noop`` workflows with 1, 2 and 4
worker processes, against a bare Celery no-op task on the same SQS endpoint in the same run.

Run with ``make bench`` (``pytest tests/bench -m bench -s``). The figures are printed and written to
the "Worker" section of ``docs/performance.md``. Each run drains a backlog of ``MESSAGES`` messages
(moto slows down as a queue grows, so backlogs stay well under 1000).
"""

from __future__ import annotations

import os
import platform
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from celery import shared_task
from sqlalchemy import func, select

from shared.executions import dispatch, start_adhoc
from shared.models import Execution
from shared.queue import ExecutionPublisher, celery_message_body
from shared.status import ExecutionStatus, Trigger
from tests.bench.report import write_section
from tests.harness.network import wait_until

BARE_TASK = "bench.bare_noop"
MESSAGES = 400
ROUNDS = 2
CONCURRENCY = (1, 2, 4)
TARGET_RATIO = 1.3


@shared_task(name=BARE_TASK, ignore_result=True)
def bare_noop(execution_id: str) -> None:
    """The baseline: a Celery task that does nothing with its doorbell."""


def _send_bare(queues, count: int) -> None:
    bodies = [
        celery_message_body(BARE_TASK, [str(uuid.uuid4())], queue_name=queues.queue_name)
        for _ in range(count)
    ]
    batches = [bodies[i : i + 10] for i in range(0, count, 10)]

    def send(batch: list[str]) -> None:
        queues.client.send_message_batch(
            QueueUrl=queues.queue_url,
            Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(batch)],
        )

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(send, batches))


def _bare_rate(sqs_endpoint, env_for, start_worker, concurrency: int) -> float:
    queues = sqs_endpoint.fresh_queues()
    try:
        worker = start_worker(
            env_for(queues), concurrency=concurrency, include=["tests.bench.test_worker_bench"]
        )
        started = time.perf_counter()
        _send_bare(queues, MESSAGES)
        wait_until(lambda: queues.depth() == (0, 0), timeout=300, interval=0.05, what="drained")
        elapsed = time.perf_counter() - started
        worker.stop()
        return MESSAGES / elapsed
    finally:
        queues.delete()


def _conveyor_rate(pg_sessions, sqs_endpoint, env_for, start_worker, concurrency: int) -> float:
    queues = sqs_endpoint.fresh_queues()
    try:
        now = datetime.now(UTC)
        with pg_sessions() as session, session.begin():
            ids = [
                start_adhoc(
                    session,
                    {"action": "python", "function": "conveyor.noop"},
                    trigger=Trigger.API,
                    now=now,
                ).id
                for _ in range(MESSAGES)
            ]
        publisher = ExecutionPublisher(queues.client, queues.queue_url, queues.queue_name)
        worker = start_worker(env_for(queues), concurrency=concurrency)

        def done() -> bool:
            with pg_sessions() as session:
                finished = session.scalar(
                    select(func.count()).where(
                        Execution.id.in_(ids), Execution.status == ExecutionStatus.SUCCEEDED
                    )
                )
            return finished == MESSAGES and queues.depth() == (0, 0)

        started = time.perf_counter()
        report = dispatch(pg_sessions, publisher, ids, datetime.now(UTC))
        assert not report.failed
        wait_until(done, timeout=300, interval=0.05, what="executions done")
        elapsed = time.perf_counter() - started
        worker.stop()
        return MESSAGES / elapsed
    finally:
        queues.delete()


@pytest.mark.bench
@pytest.mark.timeout(1800)
def test_worker_throughput_against_bare_celery(
    pg_url, pg_sessions, sqs_endpoint, worker_env, start_worker
) -> None:
    def env_for(queues) -> dict[str, str]:
        return worker_env(pg_url, queues, CONVEYOR_DATABASE_POOL_SIZE="2")

    rows: list[tuple[int, float, float, float]] = []
    for concurrency in CONCURRENCY:
        # best of ROUNDS, interleaved: the machine is shared, a single run is noisy
        bare = conveyor = 0.0
        for _ in range(ROUNDS):
            bare = max(bare, _bare_rate(sqs_endpoint, env_for, start_worker, concurrency))
            conveyor = max(
                conveyor,
                _conveyor_rate(pg_sessions, sqs_endpoint, env_for, start_worker, concurrency),
            )
        ratio = bare / conveyor  # time per execution relative to a bare Celery task
        rows.append((concurrency, bare, conveyor, ratio))
        print(
            f"\n[bench] worker processes={concurrency}: bare Celery {bare:.1f}/s, "
            f"conveyor.noop executions {conveyor:.1f}/s, time per execution {ratio:.2f}x bare"
        )

    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `make bench` "
        f"(`pytest tests/bench -m bench -s`) on {os.cpu_count()} CPU(s), "
        f"Python {platform.python_version()}: moto's SQS server and PostgreSQL on loopback, "
        f"{MESSAGES} messages per run, best of {ROUNDS} interleaved runs, one Celery worker "
        "with N prefork processes, INFO logs.",
        "",
        "Executions are one-step workflows running the `conveyor.noop` python function (claim, "
        "step run written at start and end, events, finish: three transactions). The baseline is "
        "a bare Celery task doing nothing with the same doorbell on the same endpoint. Rates "
        "include publishing the backlog (same for both) and end when the queue is empty (and, "
        "for executions, all are `succeeded`).",
        "",
        "| worker processes | bare Celery (tasks/s) | Conveyor (executions/s) "
        "| time per execution vs bare |",
        "| ---: | ---: | ---: | ---: |",
        *[f"| {c} | {b:.1f} | {e:.1f} | {r:.2f}x |" for c, b, e, r in rows],
        "",
        f"Target: at most {TARGET_RATIO}x bare Celery per execution.",
    ]
    write_section("Worker", lines)
    for concurrency, _bare, _conveyor, ratio in rows:
        assert ratio <= TARGET_RATIO, f"{concurrency} processes: {ratio:.2f}x bare Celery"
