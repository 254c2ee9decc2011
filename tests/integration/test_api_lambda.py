"""``api.handler.handler``: API Gateway v2 events (fixtures), direct and EventBridge events."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import api.handler as lambda_handler
from shared.models import Execution
from shared.status import ExecutionStatus
from tests.integration.test_api_support import ApiHarness, api_settings, harness

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "apigw"


class Context:
    function_name = "conveyor-api"
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture
def api(pg_url: str, sqs: Any) -> Iterator[ApiHarness]:
    with harness(api_settings(pg_url, sqs), sqs) as h:
        lambda_handler.configure(h.runtime)
        h.apply()
        yield h
    lambda_handler._runtime = None
    lambda_handler._adapter = None


def load(name: str, key: str = "") -> dict[str, Any]:
    event: dict[str, Any] = json.loads((FIXTURES / name).read_text().replace("{{API_KEY}}", key))
    return event


def invoke(event: Any) -> dict[str, Any]:
    return lambda_handler.handler(event, Context())


def body_of(response: dict[str, Any]) -> Any:
    raw = response["body"]
    if response.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode()
    return json.loads(raw)


def test_every_fixture_is_an_api_gateway_v2_event() -> None:
    names = sorted(path.name for path in FIXTURES.glob("*.json"))
    assert len(names) >= 8
    for name in names:
        event = json.loads((FIXTURES / name).read_text())
        assert event["version"] == "2.0"
        assert event["requestContext"]["http"]["method"]


def test_post_task_with_a_base64_body(api: ApiHarness) -> None:
    response = invoke(load("post_task_base64.json", api.keys["tasks-write"]))
    assert response["statusCode"] == 202, response
    body = body_of(response)
    assert response["headers"]["location"] == f"/tasks/{body['id']}"
    assert response["headers"]["x-request-id"] == "JKJaXmPLvHcESHA="
    assert api.received() == [body["id"]]
    with api.sessions() as session:
        row = session.get(Execution, uuid.UUID(body["id"]))
        assert row is not None
        assert row.input == {"region": "eu", "day": "mon"}
    again = invoke(load("post_task_base64.json", api.keys["tasks-write"]))
    assert body_of(again)["id"] == body["id"]  # Idempotency-Key honoured through Lambda too


def test_plain_body_and_query_strings(api: ApiHarness) -> None:
    for _ in range(3):
        assert invoke(load("post_task_plain.json", api.keys["admin"]))["statusCode"] == 202
    response = invoke(load("get_tasks_query.json", api.keys["tasks-read"]))
    assert response["statusCode"] == 200, response
    page = body_of(response)
    assert len(page["items"]) == 2
    assert page["links"]["next"].startswith("/tasks?workflow=report&status=queued&limit=2")


def test_health_with_a_caller_request_id(api: ApiHarness) -> None:
    response = invoke(load("get_health.json"))
    assert response["statusCode"] == 200
    assert body_of(response) == {"status": "ok", "database": "ok"}
    assert response["headers"]["x-request-id"] == "from-client-1"


def test_put_workflow_yaml_in_base64(api: ApiHarness) -> None:
    response = invoke(load("put_workflow_yaml_base64.json", api.keys["workflows-write"]))
    assert response["statusCode"] == 200, response
    assert body_of(response)["action"] == "updated"


def test_signed_github_webhook(api: ApiHarness) -> None:
    response = invoke(load("webhook_github_base64.json"))
    assert response["statusCode"] == 202, response
    accepted = body_of(response)
    assert accepted["delivery_id"] == "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    assert api.received() == accepted["executions"]
    replay = invoke(load("webhook_github_base64.json"))
    assert replay["statusCode"] == 200
    assert body_of(replay)["replayed"] is True


def test_api_gateway_jwt_authorizer_claims_grant_their_scopes(api: ApiHarness) -> None:
    response = invoke(load("get_tasks_authorizer_claims.json"))
    assert response["statusCode"] == 200, response
    event = load("get_tasks_authorizer_claims.json")
    event["requestContext"]["http"]["method"] = "POST"
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/tasks"
    event["body"] = '{"workflow": "report"}'
    event["headers"]["content-type"] = "application/json"
    forbidden = invoke(event)
    assert forbidden["statusCode"] == 403
    assert "tasks:write" in body_of(forbidden)["detail"]


def test_a_protected_route_without_credentials_is_a_401_problem(api: ApiHarness) -> None:
    response = invoke(load("get_task_no_auth.json"))
    assert response["statusCode"] == 401
    assert response["headers"]["content-type"] == "application/problem+json"
    assert body_of(response)["status"] == 401


def test_direct_invocation_starts_a_task(api: ApiHarness) -> None:
    result = invoke({"action": "trigger", "workflow": "report", "input": {"x": 1}})
    assert result["ok"] is True
    assert result["status"] == "pending"
    assert api.received() == [result["id"]]
    with api.sessions() as session:
        row = session.get(Execution, uuid.UUID(result["id"]))
        assert row is not None
        assert row.status is ExecutionStatus.QUEUED
        assert row.input == {"region": "eu", "x": 1}
    keyed = {"action": "trigger", "workflow": "report", "idempotency_key": "k1"}
    assert invoke(keyed)["id"] == invoke(keyed)["id"]
    step = invoke({"action": "trigger", "step": {"action": "python", "function": "conveyor.x"}})
    assert step["ok"] is True


def test_eventbridge_event_starts_a_task_once_per_event_id(api: ApiHarness) -> None:
    event = {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "conveyor.trigger",
        "source": "acme.billing",
        "account": "123456789012",
        "time": "2026-11-24T13:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"workflow": "report", "input": {"invoice": "inv-1"}},
    }
    first = invoke(event)
    assert first["ok"] is True
    assert invoke(event)["id"] == first["id"]
    with api.sessions() as session:
        row = session.get(Execution, uuid.UUID(first["id"]))
        assert row is not None
        assert row.trigger.value == "event"
        assert row.input["invoice"] == "inv-1"


@pytest.mark.parametrize(
    ("event", "status", "needle"),
    [
        ({"action": "explode"}, 422, "action: unknown action"),
        ({"action": "trigger"}, 422, "exactly one of"),
        ({"action": "trigger", "workflow": "missing"}, 404, "no workflow named 'missing'"),
        ({"action": "trigger", "workflow": "report", "input": "x"}, 422, "event.input"),
        ({"action": "trigger", "workflow": "report", "idempotency_key": 5}, 422, "idempotency_key"),
        ({"detail-type": "other.thing", "detail": {}}, 422, "detail-type"),
        ({"detail-type": "conveyor.trigger", "detail": "x"}, 422, "detail"),
        ({"detail-type": "conveyor.trigger", "detail": {"workflow": 3}}, 422, "detail.workflow"),
        ({"hello": "world"}, 422, "not an API Gateway request"),
        (["not", "an", "object"], 422, "JSON object"),
    ],
)
def test_bad_events_get_a_clear_error_not_a_trace(
    api: ApiHarness, event: Any, status: int, needle: str
) -> None:
    result = invoke(event)
    assert result["ok"] is False
    assert result["error"]["status"] == status
    assert needle in result["error"]["detail"]
    assert "Traceback" not in json.dumps(result)


def test_the_handler_builds_itself_from_the_environment(
    pg_url: str, sqs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    lambda_handler._runtime = None
    lambda_handler._adapter = None
    for key, value in sqs.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CONVEYOR_DATABASE_URL", pg_url)
    monkeypatch.setenv("CONVEYOR_LOG_LEVEL", "WARNING")
    try:
        response = invoke(load("get_health.json"))
        assert response["statusCode"] == 200
        runtime = getattr(lambda_handler, "_runtime")  # noqa: B009  (set by the call)
        assert runtime is not None
        assert runtime.engine.pool.__class__.__name__ == "NullPool"
    finally:
        built = getattr(lambda_handler, "_runtime")  # noqa: B009
        if built is not None:
            built.close()
        lambda_handler._runtime = None
        lambda_handler._adapter = None
