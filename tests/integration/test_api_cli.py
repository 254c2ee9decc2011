"""``conveyor apikey …`` and ``conveyor task …`` (database and HTTP modes), background sending."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select, update

import conveyor_cli.tasks as task_commands
from api.app import create_app
from api.runtime import Runtime
from conveyor_cli.main import cli
from shared.database import create_engine_for, session_factory
from shared.models import ApiKeyUsage, Execution
from shared.status import ExecutionStatus
from tests.integration.test_api_support import REPORT, ApiHarness, api_settings, harness


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def env(pg_url: str, sqs: Any, tmp_path: Any) -> dict[str, str]:
    return {
        **sqs.env(),
        "CONVEYOR_DATABASE_URL": pg_url,
        "CONVEYOR_HOME": str(tmp_path / "home"),
        "CONVEYOR_LOG_LEVEL": "WARNING",
        "CONVEYOR_API_URL": "",
    }


def finish(pg_url: str, task_id: str, status: ExecutionStatus, after: float = 0.0) -> None:
    time.sleep(after)
    engine = create_engine_for(pg_url)
    try:
        with session_factory(engine)() as session, session.begin():
            session.execute(
                update(Execution)
                .where(Execution.id == uuid.UUID(task_id))
                .values(status=status, output={"done": True}, finished_at=datetime.now(UTC))
            )
    finally:
        engine.dispose()


def test_apikey_create_list_usage_revoke(env: dict[str, str], pg_url: str, sqs: Any) -> None:
    code, out, err = run(env, "apikey", "create", "ci", "--scope", "tasks:read")
    assert code == 0, err
    key = out.strip()
    assert key.startswith("cvk_")
    assert "not shown again" in err
    code, out, _ = run(env, "apikey", "list", "--json")
    [listed] = json.loads(out)
    assert listed["name"] == "ci"
    assert listed["scopes"] == ["tasks:read"]
    assert key not in out
    assert run(env, "apikey", "create", "ci")[0] == 1  # exists: conflict
    assert run(env, "apikey", "create", "x", "--scope", "root")[0] == 2
    with harness(api_settings(pg_url, sqs), sqs, with_keys=False) as api:
        for _ in range(4):
            assert api.client.get("/tasks", headers={"Authorization": f"Bearer {key}"}).is_success
    code, out, _ = run(env, "apikey", "usage", "ci", "--json")
    usage = json.loads(out)
    assert usage["total"] == 4
    assert usage["months"] == [{"period": datetime.now(UTC).strftime("%Y-%m"), "calls": 4}]
    code, out, _ = run(env, "apikey", "usage", "ci")
    assert "4" in out
    code, out, _ = run(env, "apikey", "revoke", "ci")
    assert code == 0
    assert "revoked ci" in out
    with harness(api_settings(pg_url, sqs), sqs, with_keys=False) as api:
        assert (
            api.client.get("/tasks", headers={"Authorization": f"Bearer {key}"}).status_code == 401
        )
    assert run(env, "apikey", "revoke", "nobody")[0] == 2


def test_task_submit_status_and_wait_against_the_database(
    env: dict[str, str], pg_url: str, sqs: Any, tmp_path: Any
) -> None:
    definition = tmp_path / "report.yaml"
    definition.write_text(REPORT)
    assert run(env, "workflow", "apply", "-f", str(definition))[0] == 0
    code, out, err = run(env, "task", "submit", "--workflow", "report", "--input", '{"a": 1}')
    assert code == 0, err
    task_id = out.strip()
    messages = sqs.client.receive_message(QueueUrl=sqs.queue_url, MaxNumberOfMessages=10)
    assert len(messages.get("Messages", [])) == 1
    code, out, _ = run(env, "task", "status", task_id, "--json")
    view = json.loads(out)
    assert view["status"] == "queued"
    assert view["input"] == {"region": "eu", "a": 1}
    code, out, _ = run(env, "task", "status", task_id)
    assert "timeline:" in out
    assert run(env, "task", "wait", task_id, "--timeout", "0.3", "--interval", "0.1")[0] == 1
    finish(pg_url, task_id, ExecutionStatus.SUCCEEDED)
    code, out, err = run(env, "task", "wait", task_id)
    assert code == 0
    assert '"done": true' in out
    assert "created" in out  # the timeline
    code, out, _ = run(env, "task", "submit", "--workflow", "report")
    failing = out.strip()
    finish(pg_url, failing, ExecutionStatus.FAILED)
    assert run(env, "task", "wait", failing)[0] == 1
    assert run(env, "task", "submit", "--workflow", "nope")[0] == 2
    assert run(env, "task", "submit")[0] == 2
    assert run(env, "task", "submit", "--workflow", "report", "--input", "[1]")[0] == 2
    assert run(env, "task", "status", str(uuid.uuid4()))[0] == 2


@pytest.fixture
def served(pg_url: str, sqs: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiHarness]:
    """``--api-url`` mode, with the HTTP client routed into the in-process app."""
    with harness(api_settings(pg_url, sqs), sqs) as api:
        api.apply()

        def init(self: Any, url: str, key: str | None, timeout: float = 10.0) -> None:
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            self.client = TestClient(api.app, base_url=url, headers=headers)

        monkeypatch.setattr(task_commands.HttpBackend, "__init__", init)
        yield api


def test_task_submit_wait_through_the_api(
    served: ApiHarness, env: dict[str, str], pg_url: str
) -> None:
    http = {**env, "CONVEYOR_API_URL": "http://api.test", "CONVEYOR_API_KEY": served.keys["admin"]}
    code, out, err = run(
        http, "task", "submit", "--workflow", "report", "--json", "--idempotency-key", "cli-1"
    )
    assert code == 0, err
    accepted = json.loads(out)
    again = json.loads(
        run(http, "task", "submit", "--workflow", "report", "--json", "--idempotency-key", "cli-1")[
            1
        ]
    )
    assert again["id"] == accepted["id"]

    code, out, err = run(http, "task", "submit", "--workflow", "report")
    task_id = out.strip()
    worker = threading.Thread(target=finish, args=(pg_url, task_id, ExecutionStatus.SUCCEEDED, 0.4))
    worker.start()
    code, out, err = run(http, "task", "wait", task_id, "--interval", "0.1", "--timeout", "10")
    worker.join()
    assert code == 0, err
    assert "queued" in out  # timeline lines as they appear
    assert "succeeded" in err  # the status line

    code, out, _ = run(http, "task", "status", task_id, "--json")
    assert json.loads(out)["status"] == "succeeded"
    bad_key = {**http, "CONVEYOR_API_KEY": "cvk_0123456789ab_" + "A" * 43}
    code, _, err = run(bad_key, "task", "status", task_id)
    assert code == 3
    assert "401" in err
    assert run(http, "task", "status", str(uuid.uuid4()))[0] == 2


def test_background_sending_and_usage_batching(pg_url: str, sqs: Any) -> None:
    """The server mode: answer first, send doorbells in batches, count usage once a second."""
    settings = api_settings(pg_url, sqs)
    with harness(settings, sqs) as setup:
        setup.apply()
        key = setup.keys["tasks-write"]
    runtime = Runtime.from_settings(settings, background_dispatch=True)
    try:
        with TestClient(create_app(runtime=runtime)) as client:
            ids = [
                client.post(
                    "/tasks",
                    json={"workflow": "report"},
                    headers={"Authorization": f"Bearer {key}"},
                ).json()["id"]
                for _ in range(25)
            ]
        # Leaving the client ran the lifespan's shutdown: every accepted doorbell was sent.
        with runtime.sessions() as session:
            statuses = set(session.scalars(select(Execution.status)))
        assert statuses == {ExecutionStatus.QUEUED}
        assert sum(sqs.depth()) == len(ids)
    finally:
        runtime.close()
    with runtime.sessions() as session:
        assert session.scalar(select(ApiKeyUsage.calls)) == 25
    runtime.engine.dispose()
