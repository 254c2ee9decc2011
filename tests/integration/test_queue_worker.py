"""The queue path end to end: our batch publisher → SQS over HTTP → a real Celery worker."""

from __future__ import annotations

from pathlib import Path

from shared.queue import (
    RUN_EXECUTION_TASK,
    ExecutionPublisher,
    OutgoingMessage,
    celery_message_body,
    decode_message_body,
)
from tests.harness.network import wait_until
from tests.integration.celery_probe import PROBE_TASK


def test_a_real_celery_worker_consumes_messages_our_publisher_writes(
    sqs, sqlite_url, worker_env, start_worker, tmp_path: Path
) -> None:
    targets = [tmp_path / f"probe-{i}.txt" for i in range(12)]
    entries = [
        {
            "Id": str(i),
            "MessageBody": celery_message_body(
                PROBE_TASK, [str(path), f"hello {i}"], queue_name=sqs.queue_name
            ),
        }
        for i, path in enumerate(targets)
    ]
    for start in range(0, len(entries), 10):
        sqs.client.send_message_batch(QueueUrl=sqs.queue_url, Entries=entries[start : start + 10])

    start_worker(worker_env(sqlite_url, sqs), include=["tests.integration.celery_probe"])

    wait_until(lambda: all(p.exists() for p in targets), timeout=30, what="probe files")
    assert [p.read_text() for p in targets] == [f"hello {i}" for i in range(12)]
    # late acks: each message is deleted once the task finished
    wait_until(lambda: sqs.depth() == (0, 0), timeout=10, what="queue drained")


def test_the_execution_publisher_sends_batches_of_ten_and_reports_every_id(sqs) -> None:
    publisher = ExecutionPublisher(sqs.client, sqs.queue_url, sqs.queue_name, parallelism=3)

    ids = [f"00000000-0000-0000-0000-{i:012d}" for i in range(25)]
    report = publisher.publish([OutgoingMessage(i) for i in ids])
    assert sorted(report.sent) == ids
    assert report.failed == {}
    received: list[str] = []
    while True:
        batch = sqs.client.receive_message(QueueUrl=sqs.queue_url, MaxNumberOfMessages=10)
        messages = batch.get("Messages", [])
        if not messages:
            break
        received += [m["Body"] for m in messages]
    assert len(received) == 25
    decoded = [decode_message_body(body) for body in received]
    assert {m.task for m in decoded} == {RUN_EXECUTION_TASK}
    assert sorted(m.args[0] for m in decoded) == ids
    assert sorted(m.task_id for m in decoded) == ids
