"""The HTTP API in-process (FastAPI TestClient) on PostgreSQL and moto's SQS."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from shared.apikeys import VerifiedKeyCache, revoke_key
from shared.models import ApiKeyUsage, Execution, WebhookDelivery
from shared.status import ExecutionStatus
from tests.integration.test_api_support import (
    REPORT,
    ApiHarness,
    api_settings,
    generic_headers,
    github_headers,
    harness,
    make_jwt,
    stripe_headers,
)

PROBLEM = "application/problem+json"


@pytest.fixture
def api(pg_url: str, sqs: Any) -> Iterator[ApiHarness]:
    with harness(api_settings(pg_url, sqs), sqs) as h:
        yield h


def execution(api: ApiHarness, task_id: str) -> Execution:
    with api.sessions() as session:
        row = session.get(Execution, uuid.UUID(task_id))
        assert row is not None
        return row


def assert_problem(response: Any, status: int, *needles: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= set(body)
    for needle in needles:
        assert needle in body["detail"], body
    assert "Traceback" not in response.text
    return body


# ------------------------------------------------------------------ public routes


def test_health_version_and_openapi_need_no_key(api: ApiHarness) -> None:
    assert api.client.get("/health").json() == {"status": "ok", "database": "ok"}
    version = api.client.get("/version").json()
    assert version["name"] == "conveyor"
    assert version["version"]
    schema = api.client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert "Problem" in schema["components"]["schemas"]
    assert api.client.get("/docs").status_code == 200


def test_health_reports_an_unreachable_database_as_503(pg_url: str, sqs: Any) -> None:
    settings = api_settings(
        "postgresql+psycopg://nobody:nothing@127.0.0.1:1/none?connect_timeout=1", sqs
    )
    from fastapi.testclient import TestClient

    from api.app import create_app

    app = create_app(settings)
    with TestClient(app) as client:
        body = assert_problem(client.get("/health"), 503, "database")
    app.state.runtime.close()
    assert "127.0.0.1" not in json.dumps(body)


# ------------------------------------------------------------------ POST /tasks


def test_post_task_commits_the_row_then_puts_a_doorbell_on_the_queue(api: ApiHarness) -> None:
    api.apply()
    response = api.client.post(
        "/tasks", json={"workflow": "report", "input": {"day": "mon"}}, headers=api.auth()
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "pending"
    assert body["created"] is True
    assert body["links"] == {"self": f"/tasks/{body['id']}"}
    assert response.headers["location"] == f"/tasks/{body['id']}"
    assert api.received() == [body["id"]]
    row = execution(api, body["id"])
    assert row.status is ExecutionStatus.QUEUED
    assert row.input == {"region": "eu", "day": "mon"}
    assert row.trigger.value == "api"


def test_a_task_started_after_its_workflow_changed_runs_the_new_version(
    api: ApiHarness,
) -> None:
    api.apply()
    first = api.client.post("/tasks", json={"workflow": "report"}, headers=api.auth()).json()
    api.apply(
        REPORT.replace("input: {region: eu}", "input: {region: us}").replace(
            "name: work", "name: work-v2"
        )
    )
    second = api.client.post("/tasks", json={"workflow": "report"}, headers=api.auth()).json()
    old, new = execution(api, first["id"]), execution(api, second["id"])
    assert (old.input, old.definition["steps"][0]["name"]) == ({"region": "eu"}, "work")
    assert (new.input, new.definition["steps"][0]["name"]) == ({"region": "us"}, "work-v2")

    assert api.client.delete("/workflows/report", headers=api.auth()).status_code == 200
    gone = api.client.post("/tasks", json={"workflow": "report"}, headers=api.auth())
    assert_problem(gone, 404, "report")


def test_a_revoked_key_is_refused_once_the_key_cache_time_has_passed(api: ApiHarness) -> None:
    clock = [1000.0]
    api.runtime.verified_keys = VerifiedKeyCache(5.0, clock=lambda: clock[0])
    headers = api.auth("tasks-read")
    assert api.client.get("/tasks", headers=headers).status_code == 200
    with api.sessions() as session, session.begin():
        revoke_key(session, "tasks-read", datetime.now(UTC))
    clock[0] += 4.0  # still trusted by this process
    assert api.client.get("/tasks", headers=headers).status_code == 200
    clock[0] += 1.0  # the cache time is over: looked up again, refused
    assert_problem(api.client.get("/tasks", headers=headers), 401, "revoked")


def test_an_adhoc_step_becomes_a_one_step_task(api: ApiHarness) -> None:
    step = {"action": "python", "function": "conveyor.heartbeat"}
    response = api.client.post("/tasks", json={"step": step, "input": {"n": 1}}, headers=api.auth())
    assert response.status_code == 202, response.text
    row = execution(api, response.json()["id"])
    assert row.workflow_name == "adhoc"
    assert [s["name"] for s in row.definition["steps"]] == ["task"]
    assert api.received() == [response.json()["id"]]


def test_a_failed_send_still_answers_202_and_leaves_the_row_pending(pg_url: str, sqs: Any) -> None:
    broken = api_settings(pg_url, sqs, queue_url=sqs.queue_url + "-does-not-exist")
    with harness(broken, sqs) as api:
        api.apply()
        response = api.client.post("/tasks", json={"workflow": "report"}, headers=api.auth())
        assert response.status_code == 202
        assert execution(api, response.json()["id"]).status is ExecutionStatus.PENDING


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"input": {}}, 422, "exactly one of 'workflow' or 'step'"),
        ({"workflow": "report", "step": {"action": "python"}}, 422, "exactly one"),
        ({"workflow": "nope"}, 404, "no workflow named 'nope'"),
        ({"workflow": "report", "input": [1]}, 422, "body.input"),
        ({"workflow": "report", "extra": 1}, 422, "body.extra"),
        ({"step": {"action": "lamda"}}, 422, "action"),
    ],
)
def test_bad_task_requests_get_a_problem_naming_the_field(
    api: ApiHarness, body: dict[str, Any], status: int, needle: str
) -> None:
    api.apply()
    response = api.client.post("/tasks", json=body, headers=api.auth())
    problem = assert_problem(response, status, needle)
    if status == 422 and "body." in needle:
        assert problem["errors"][0]["field"] == needle
    assert api.received(wait=0.2) == []


def test_malformed_json_is_400_and_a_huge_body_is_413(api: ApiHarness) -> None:
    headers = {**api.auth(), "Content-Type": "application/json"}
    assert_problem(
        api.client.post("/tasks", content=b'{"workflow": ', headers=headers), 400, "malformed JSON"
    )
    big = json.dumps({"workflow": "report", "input": {"blob": "x" * (300 * 1024)}}).encode()
    assert_problem(api.client.post("/tasks", content=big, headers=headers), 413, "256 KiB")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts what arrives
        for _ in range(300):
            yield b" " * 1024

    assert_problem(api.client.post("/tasks", content=chunks(), headers=headers), 413)


def test_idempotency_key_returns_the_same_task_and_rejects_another_body(api: ApiHarness) -> None:
    api.apply()
    headers = {**api.auth(), "Idempotency-Key": "order-42"}
    first = api.client.post(
        "/tasks", json={"workflow": "report", "input": {"a": 1}}, headers=headers
    )
    again = api.client.post(
        "/tasks", json={"input": {"a": 1}, "workflow": "report"}, headers=headers
    )
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["created"] is False
    assert again.headers["idempotent-replayed"] == "true"
    assert api.received() == [first.json()["id"]]  # one doorbell, not two
    other = api.client.post(
        "/tasks", json={"workflow": "report", "input": {"a": 2}}, headers=headers
    )
    assert_problem(other, 409, "order-42")
    # Keys are scoped to the caller: another key may use the same string.
    mine = api.client.post(
        "/tasks",
        json={"workflow": "report", "input": {"a": 1}},
        headers={**api.auth("tasks-write"), "Idempotency-Key": "order-42"},
    )
    assert mine.status_code == 202
    assert mine.json()["id"] != first.json()["id"]
    bad = api.client.post(
        "/tasks",
        json={"workflow": "report"},
        headers={**api.auth(), "Idempotency-Key": "has space"},
    )
    assert_problem(bad, 422, "Idempotency-Key")


# ------------------------------------------------------------------ reading tasks


def test_get_task_shows_status_input_and_the_timeline(api: ApiHarness) -> None:
    api.apply()
    task_id = api.client.post("/tasks", json={"workflow": "report"}, headers=api.auth()).json()[
        "id"
    ]
    view = api.client.get(f"/tasks/{task_id}", headers=api.auth("tasks-read")).json()
    assert view["id"] == task_id
    assert view["workflow"] == "report"
    assert view["status"] == "queued"
    assert view["input"] == {"region": "eu"}
    assert [event["kind"] for event in view["events"]] == ["created", "queued"]
    assert view["steps"] == []
    assert view["links"]["self"] == f"/tasks/{task_id}"
    assert_problem(
        api.client.get(f"/tasks/{uuid.uuid4()}", headers=api.auth()), 404, "no execution"
    )
    assert_problem(api.client.get("/tasks/not-a-uuid", headers=api.auth()), 422, "path.task_id")


def test_listing_pages_newest_first_with_a_cursor(api: ApiHarness) -> None:
    api.apply()
    api.apply(REPORT.replace("name: report", "name: other"))
    ids = [
        api.client.post(
            "/tasks", json={"workflow": "report", "input": {"i": i}}, headers=api.auth()
        ).json()["id"]
        for i in range(7)
    ]
    api.client.post("/tasks", json={"workflow": "other"}, headers=api.auth())
    seen: list[str] = []
    url: str | None = "/tasks?workflow=report&limit=3"
    pages = 0
    while url:
        page = api.client.get(url, headers=api.auth("tasks-read")).json()
        assert len(page["items"]) <= 3
        seen += [item["id"] for item in page["items"]]
        url = page["links"]["next"]
        assert (url is None) == (page["next_cursor"] is None)
        pages += 1
    assert pages == 3
    assert seen == list(reversed(ids))
    everything = api.client.get("/tasks?limit=500", headers=api.auth()).json()
    assert len(everything["items"]) == 8
    queued = api.client.get("/tasks?status=queued&workflow=other", headers=api.auth()).json()
    assert [item["workflow"] for item in queued["items"]] == ["other"]
    assert api.client.get("/tasks?status=failed", headers=api.auth()).json()["items"] == []
    assert_problem(api.client.get("/tasks?cursor=zzz", headers=api.auth()), 422, "cursor")
    assert_problem(api.client.get("/tasks?limit=0", headers=api.auth()), 422, "query.limit")
    assert_problem(api.client.get("/tasks?status=bogus", headers=api.auth()), 422, "query.status")


def test_cancel_ends_a_waiting_task(api: ApiHarness) -> None:
    api.apply()
    task_id = api.client.post("/tasks", json={"workflow": "report"}, headers=api.auth()).json()[
        "id"
    ]
    response = api.client.post(f"/tasks/{task_id}/cancel", headers=api.auth("tasks-write"))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert response.json()["events"][-1]["kind"] == "cancelled"
    again = api.client.post(f"/tasks/{task_id}/cancel", headers=api.auth())
    assert again.json()["status"] == "cancelled"
    assert_problem(api.client.post(f"/tasks/{uuid.uuid4()}/cancel", headers=api.auth()), 404)


# ------------------------------------------------------------------ batch


def test_batch_gives_each_item_its_own_result_and_sends_the_created_ones(api: ApiHarness) -> None:
    api.apply()
    items = [
        {"workflow": "report", "input": {"i": 0}},
        {"workflow": "missing"},
        {"step": {"action": "python", "function": "conveyor.heartbeat"}},
        {"step": {"action": "lamda"}},
        {"workflow": "report", "idempotency_key": "b-1"},
        {"workflow": "report", "idempotency_key": "b-1"},
        {"workflow": "report", "input": {"other": True}, "idempotency_key": "b-1"},
    ]
    response = api.client.post("/tasks/batch", json={"tasks": items}, headers=api.auth())
    assert response.status_code == 200, response.text
    body = response.json()
    results = body["results"]
    assert [r["status"] for r in results] == [202, 404, 202, 422, 202, 202, 409]
    assert results[1]["error"]["detail"] == "no workflow named 'missing'"
    assert results[3]["error"]["errors"]
    assert results[5]["id"] == results[4]["id"]
    assert results[5]["created"] is False
    assert body["created"] == 3
    assert body["failed"] == 3
    created = {results[i]["id"] for i in (0, 2, 4)}
    assert set(api.received()) == created
    for task_id in created:
        assert execution(api, task_id).status is ExecutionStatus.QUEUED


def test_batch_limits(api: ApiHarness) -> None:
    too_many = {"tasks": [{"workflow": "report"}] * 101}
    assert_problem(
        api.client.post("/tasks/batch", json=too_many, headers=api.auth()), 422, "body.tasks"
    )
    assert_problem(api.client.post("/tasks/batch", json={"tasks": []}, headers=api.auth()), 422)


# ------------------------------------------------------------------ workflows


def test_put_workflow_yaml_and_json_create_update_and_validate(api: ApiHarness) -> None:
    yaml_headers = {**api.auth("workflows-write"), "Content-Type": "application/yaml"}
    created = api.client.put("/workflows/report", content=REPORT, headers=yaml_headers)
    assert created.status_code == 201, created.text
    assert created.json()["action"] == "created"
    unchanged = api.client.put("/workflows/report", content=REPORT, headers=yaml_headers)
    assert unchanged.status_code == 200
    assert unchanged.json()["action"] == "unchanged"
    document = {
        "name": "report",
        "schedule": "0 10 * * *",
        "timezone": "Europe/Berlin",
        "webhooks": ["github"],
        "steps": [{"name": "work", "action": "python", "function": "conveyor.heartbeat"}],
    }
    updated = api.client.put("/workflows/report", json=document, headers=api.auth())
    assert updated.json() == {**updated.json(), "action": "updated", "version": 2}

    mismatch = api.client.put("/workflows/other", content=REPORT, headers=yaml_headers)
    assert assert_problem(mismatch, 422, "name")["errors"][0]["field"] == "name"
    broken = REPORT.replace("action: python", "action: lamda").replace(
        "name: report", "name: broken"
    )
    problem = assert_problem(
        api.client.put("/workflows/broken", content=broken, headers=yaml_headers),
        422,
        "steps[0].action",
    )
    assert problem["errors"][0]["field"].startswith("steps[0]")
    assert_problem(
        api.client.put(
            "/workflows/x", content="{", headers=api.auth() | {"Content-Type": "application/json"}
        ),
        400,
        "malformed JSON",
    )
    assert_problem(
        api.client.put(
            "/workflows/x", content="name: x", headers=api.auth() | {"Content-Type": "text/plain"}
        ),
        415,
        "application/yaml",
    )
    assert_problem(
        api.client.put("/workflows/x", content="a: [", headers=yaml_headers), 422, "invalid YAML"
    )
    listed = api.client.get("/workflows", headers=api.auth("workflows-read")).json()["items"]
    assert [w["name"] for w in listed] == ["report"]


def test_show_pause_resume_preview_executions_trigger_and_delete(api: ApiHarness) -> None:
    api.apply()
    read, write = api.auth("workflows-read"), api.auth("workflows-write")
    shown = api.client.get("/workflows/report", headers=read).json()
    assert shown["definition"]["webhooks"] == ["github", "stripe", "acme"]
    assert shown["active_executions"] == 0
    assert_problem(api.client.get("/workflows/nope", headers=read), 404, "'nope'")

    paused = api.client.post("/workflows/report/pause", headers=write).json()
    assert paused["enabled"] is False
    assert paused["next_run_at"] is None
    resumed = api.client.post("/workflows/report/resume", headers=write).json()
    assert resumed["enabled"] is True
    assert resumed["next_run_at"] is not None

    preview = api.client.get("/workflows/report/preview?count=3", headers=read).json()
    assert preview["timezone"] == "Europe/Berlin"
    fires = [datetime.fromisoformat(f.replace("Z", "+00:00")) for f in preview["fire_times"]]
    assert len(fires) == 3
    assert fires == sorted(fires)
    assert fires[0] > datetime.now(UTC)
    assert all(
        f.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin")).hour == 9 for f in fires
    )
    assert_problem(
        api.client.get("/workflows/report/preview?count=0", headers=read), 422, "query.count"
    )

    triggered = api.client.post(
        "/workflows/report/trigger", json={"input": {"x": 1}}, headers=api.auth("tasks-write")
    )
    assert triggered.status_code == 202, triggered.text
    task_id = triggered.json()["id"]
    assert execution(api, task_id).trigger.value == "manual"
    assert execution(api, task_id).input == {"region": "eu", "x": 1}
    assert api.received() == [task_id]
    bare = api.client.post("/workflows/report/trigger", headers=api.auth())
    assert bare.status_code == 202
    assert_problem(api.client.post("/workflows/nope/trigger", headers=api.auth()), 404)

    runs = api.client.get("/workflows/report/executions?limit=1", headers=api.auth("tasks-read"))
    assert runs.json()["items"][0]["id"] == bare.json()["id"]
    assert "/workflows/report/executions?" in runs.json()["links"]["next"]
    assert_problem(api.client.get("/workflows/nope/executions", headers=api.auth()), 404)

    deleted = api.client.delete("/workflows/report", headers=write)
    assert deleted.json() == {"name": "report", "deleted": True}
    assert_problem(api.client.delete("/workflows/report", headers=write), 404)
    # The history stays readable.
    assert api.client.get(f"/tasks/{task_id}", headers=api.auth()).status_code == 200


# ------------------------------------------------------------------ auth matrix

# (method, path template, scope, request kwargs). Every protected operation is listed; a test
# below checks this table against the OpenAPI document.
ROUTES: list[tuple[str, str, str, dict[str, Any]]] = [
    ("POST", "/tasks", "tasks:write", {"json": {"workflow": "report"}}),
    ("POST", "/tasks/batch", "tasks:write", {"json": {"tasks": [{"workflow": "report"}]}}),
    ("GET", "/tasks", "tasks:read", {}),
    ("GET", "/tasks/{task_id}", "tasks:read", {}),
    ("POST", "/tasks/{task_id}/cancel", "tasks:write", {}),
    ("GET", "/workflows", "workflows:read", {}),
    ("GET", "/workflows/{name}", "workflows:read", {}),
    (
        "PUT",
        "/workflows/{name}",
        "workflows:write",
        {"content": REPORT, "headers": {"Content-Type": "application/yaml"}},
    ),
    ("DELETE", "/workflows/{name}", "workflows:write", {}),
    ("POST", "/workflows/{name}/pause", "workflows:write", {}),
    ("POST", "/workflows/{name}/resume", "workflows:write", {}),
    ("POST", "/workflows/{name}/trigger", "tasks:write", {}),
    ("GET", "/workflows/{name}/executions", "tasks:read", {}),
    ("GET", "/workflows/{name}/preview", "workflows:read", {}),
]
ALLOWED = {
    "tasks:read": "tasks-read",
    "tasks:write": "tasks-write",
    "workflows:read": "workflows-read",
    "workflows:write": "workflows-write",
}
FORBIDDEN = {
    "tasks:read": ["workflows-write", "workflows-read"],
    "tasks:write": ["tasks-read", "workflows-write"],
    "workflows:read": ["tasks-write", "tasks-read"],
    "workflows:write": ["workflows-read", "tasks-write"],
}


def test_the_route_table_covers_every_protected_operation(api: ApiHarness) -> None:
    schema = api.client.get("/openapi.json").json()
    documented = {
        (method.upper(), path, operation["x-required-scope"])
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if "x-required-scope" in operation
    }
    assert documented == {(m, p, s) for m, p, s, _ in ROUTES}
    for path, item in schema["paths"].items():
        for operation in item.values():
            if "x-required-scope" in operation:
                assert operation["security"] == [{"bearerAuth": []}], path


@pytest.mark.parametrize(
    ("method", "path", "scope", "kwargs"), ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES]
)
def test_auth_matrix(
    api: ApiHarness, method: str, path: str, scope: str, kwargs: dict[str, Any]
) -> None:
    api.apply()
    task_id = api.client.post("/tasks", json={"workflow": "report"}, headers=api.auth()).json()[
        "id"
    ]
    url = path.format(task_id=task_id, name="report")
    extra = dict(kwargs.get("headers", {}))
    rest = {k: v for k, v in kwargs.items() if k != "headers"}

    def call(authorization: str | None) -> Any:
        headers = dict(extra)
        if authorization is not None:
            headers["Authorization"] = authorization
        return api.client.request(method, url, headers=headers, **rest)

    forged = api.keys["admin"][:-4] + "AAAA"
    unknown = "cvk_0123456789ab_" + "A" * 43
    for authorization, needle in [
        (None, "missing Authorization"),
        ("Basic YWRtaW46YWRtaW4=", "Bearer"),
        ("Bearer ", "Bearer"),
        (f"Bearer {forged}", "unknown or revoked"),
        (f"Bearer {unknown}", "unknown or revoked"),
        (f"Bearer {api.keys['revoked']}", "unknown or revoked"),
        ("Bearer not.a.jwt", "JWT"),
        (f"Bearer {make_jwt({'scope': 'admin', 'exp': 1})}", "expired"),
        (f"Bearer {make_jwt({'scope': 'admin', 'exp': 4e9}, secret='x' * 64)}", "signature"),
        (f"Bearer {make_jwt({'scope': 'admin', 'exp': 4e9}, alg='none')}", "HS256"),
    ]:
        response = call(authorization)
        assert_problem(response, 401, needle)
        assert response.headers["www-authenticate"].startswith("Bearer")
    for key in FORBIDDEN[scope]:
        assert_problem(call(f"Bearer {api.keys[key]}"), 403, scope)
    allowed = call(f"Bearer {api.keys[ALLOWED[scope]]}")
    assert allowed.status_code < 300, allowed.text
    token = make_jwt({"sub": "svc", "scopes": [scope], "exp": 4e9})
    # Re-create what a DELETE removed before the second allowed call.
    api.apply()
    assert call(f"Bearer {token}").status_code < 300


def test_usage_is_counted_per_key_per_month(api: ApiHarness) -> None:
    for _ in range(3):
        assert api.client.get("/tasks", headers=api.auth("tasks-read")).status_code == 200
    api.client.get("/tasks", headers=api.auth("workflows-read"))  # 403: not counted
    api.client.get("/tasks")  # anonymous: not counted
    with api.sessions() as session:
        rows = session.execute(
            select(ApiKeyUsage.api_key_id, ApiKeyUsage.period, ApiKeyUsage.calls)
        ).all()
    assert [(period, calls) for _, period, calls in rows] == [
        (datetime.now(UTC).strftime("%Y-%m"), 3)
    ]


def test_api_gateway_authorizer_claims_are_trusted_only_inside_lambda(api: ApiHarness) -> None:
    # Outside Lambda there is no aws.event in the scope: a header cannot fake one.
    response = api.client.get("/tasks", headers={"X-Amzn-Claims": "admin"})
    assert_problem(response, 401)


# ------------------------------------------------------------------ webhooks


def test_github_webhook_starts_subscribed_workflows_once(api: ApiHarness) -> None:
    api.apply()
    api.apply(
        REPORT.replace("name: report", "name: unsubscribed").replace(
            "webhooks: [github, stripe, acme]", "webhooks: [stripe]"
        )
    )
    body = json.dumps({"ref": "refs/heads/main"}).encode()
    headers = github_headers(body, delivery="d-1")
    first = api.client.post("/webhooks/github", content=body, headers=headers)
    assert first.status_code == 202, first.text
    accepted = first.json()
    assert accepted["replayed"] is False
    assert accepted["event"] == "push"
    [task_id] = accepted["executions"]
    row = execution(api, task_id)
    assert row.workflow_name == "report"
    assert row.trigger.value == "webhook"
    assert row.input["webhook"] == {
        "source": "github",
        "delivery_id": "d-1",
        "event": "push",
        "payload": {"ref": "refs/heads/main"},
    }
    assert api.received() == [task_id]
    replay = api.client.post("/webhooks/github", content=body, headers=headers)
    assert replay.status_code == 200
    assert replay.json()["replayed"] is True
    assert replay.json()["executions"] == [task_id]
    assert api.received(wait=0.2) == []
    with api.sessions() as session:
        assert len(session.scalars(select(WebhookDelivery)).all()) == 1


def test_forged_or_unsigned_webhooks_are_401_and_start_nothing(api: ApiHarness) -> None:
    api.apply()
    body = b'{"ref": "x"}'
    forged = github_headers(body, secret="wrong")
    assert_problem(
        api.client.post("/webhooks/github", content=body, headers=forged), 401, "does not match"
    )
    tampered = github_headers(body)
    assert_problem(
        api.client.post("/webhooks/github", content=b'{"ref": "y"}', headers=tampered), 401
    )
    unsigned = {"Content-Type": "application/json", "X-GitHub-Delivery": "d"}
    assert_problem(
        api.client.post("/webhooks/github", content=body, headers=unsigned),
        401,
        "X-Hub-Signature-256",
    )
    assert_problem(
        api.client.post("/webhooks/nobody", content=body, headers=github_headers(body)),
        404,
        "nobody",
    )
    # An API key is no substitute for a signature.
    assert_problem(
        api.client.post(
            "/webhooks/github", content=body, headers={**api.auth(), "X-GitHub-Delivery": "d"}
        ),
        401,
    )
    assert api.received(wait=0.2) == []


def test_stripe_webhooks_check_the_timestamp_and_use_the_event_id(api: ApiHarness) -> None:
    api.apply()
    body = json.dumps({"id": "evt_1", "type": "invoice.paid", "data": {}}).encode()
    ok = api.client.post("/webhooks/stripe", content=body, headers=stripe_headers(body))
    assert ok.status_code == 202, ok.text
    assert ok.json()["delivery_id"] == "evt_1"
    assert ok.json()["event"] == "invoice.paid"
    stale = stripe_headers(body, at=int(datetime.now(UTC).timestamp()) - 301)
    assert_problem(
        api.client.post("/webhooks/stripe", content=body, headers=stale), 401, "tolerance"
    )
    future = stripe_headers(body, at=int(datetime.now(UTC).timestamp()) + 400)
    assert_problem(api.client.post("/webhooks/stripe", content=body, headers=future), 401)
    replay = api.client.post("/webhooks/stripe", content=body, headers=stripe_headers(body))
    assert replay.status_code == 200
    assert replay.json()["executions"] == ok.json()["executions"]
    no_id = b'{"type": "x"}'
    assert_problem(
        api.client.post("/webhooks/stripe", content=no_id, headers=stripe_headers(no_id)),
        422,
        "body.id",
    )


def test_generic_webhook_with_and_without_a_delivery_id(api: ApiHarness) -> None:
    api.apply()
    body = b'{"hello": "world"}'
    first = api.client.post("/webhooks/acme", content=body, headers=generic_headers(body, "a-1"))
    assert first.status_code == 202
    second = api.client.post("/webhooks/acme", content=body, headers=generic_headers(body, "a-2"))
    assert second.status_code == 202
    assert second.json()["executions"] != first.json()["executions"]
    hashed = api.client.post("/webhooks/acme", content=body, headers=generic_headers(body))
    assert hashed.status_code == 202
    assert len(hashed.json()["delivery_id"]) == 64
    again = api.client.post("/webhooks/acme", content=body, headers=generic_headers(body))
    assert again.json()["replayed"] is True
    bad_json = b"{nope"
    assert_problem(
        api.client.post("/webhooks/acme", content=bad_json, headers=generic_headers(bad_json)),
        422,
        "not valid JSON",
    )


def test_paused_workflows_are_not_started_by_webhooks(api: ApiHarness) -> None:
    api.apply()
    api.client.post("/workflows/report/pause", headers=api.auth())
    body = b"{}"
    response = api.client.post("/webhooks/acme", content=body, headers=generic_headers(body, "p"))
    assert response.status_code == 202
    assert response.json()["executions"] == []


# ------------------------------------------------------------------ cross-cutting


def test_request_ids_are_echoed_when_sane_and_made_up_otherwise(api: ApiHarness) -> None:
    echoed = api.client.get("/health", headers={"X-Request-Id": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    replaced = api.client.get("/health", headers={"X-Request-Id": "bad id\twith spaces"})
    assert replaced.headers["x-request-id"] != "bad id\twith spaces"
    assert len(replaced.headers["x-request-id"]) == 32
    problem = api.client.get("/tasks", headers={"X-Request-Id": "r-1"}).json()
    assert problem["request_id"] == "r-1"


def test_every_request_is_logged_with_the_key_name(
    api: ApiHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    from shared.logs import configure_logging

    configure_logging(api.settings.model_copy(update={"log_level": "INFO"}), force=True)
    try:
        api.client.get("/tasks", headers={**api.auth("tasks-read"), "X-Request-Id": "log-1"})
        lines = [
            json.loads(line)
            for line in capsys.readouterr().err.splitlines()
            if line.startswith("{")
        ]
    finally:
        configure_logging(api.settings, force=True)
    [event] = [line for line in lines if line.get("event") == "http_request"]
    assert event == {
        **event,
        "method": "GET",
        "path": "/tasks",
        "status": 200,
        "key": "tasks-read",
        "request_id": "log-1",
    }
    assert event["duration_ms"] >= 0


def test_unknown_routes_and_methods_are_problems(api: ApiHarness) -> None:
    assert_problem(api.client.get("/nowhere"), 404, "/nowhere")
    assert_problem(api.client.patch("/tasks", headers=api.auth()), 405, "PATCH")


def test_an_unexpected_error_is_a_generic_500_without_internals(
    api: ApiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    import api.routes.tasks as routes

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("SELECT secret FROM executions -- password=hunter2")

    monkeypatch.setattr(routes, "list_executions", explode)
    response = api.client.get("/tasks", headers=api.auth())
    body = assert_problem(response, 500)
    assert "SELECT" not in response.text
    assert "hunter2" not in response.text
    assert body["request_id"] == response.headers["x-request-id"]


def test_cors_answers_preflight_for_configured_origins_only(pg_url: str, sqs: Any) -> None:
    settings = api_settings(pg_url, sqs, cors_origins=["https://app.example.com"])
    with harness(settings, sqs) as api:
        preflight = api.client.options(
            "/tasks",
            headers={
                "Origin": "https://app.example.com",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type,idempotency-key",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
        assert preflight.headers["access-control-allow-credentials"] == "true"
        evil = api.client.options(
            "/tasks",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in evil.headers
    wildcard = api_settings(pg_url, sqs, cors_origins=["*"])
    with harness(wildcard, sqs, with_keys=False) as api:
        response = api.client.get("/health", headers={"Origin": "https://any.example"})
        assert response.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in response.headers


def test_no_cors_headers_by_default(api: ApiHarness) -> None:
    response = api.client.options(
        "/tasks",
        headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in response.headers


def test_a_task_that_finished_shows_its_output(api: ApiHarness) -> None:
    api.apply()
    task_id = api.client.post("/tasks", json={"workflow": "report"}, headers=api.auth()).json()[
        "id"
    ]
    now = datetime.now(UTC)
    with api.sessions() as session, session.begin():
        session.execute(
            update(Execution)
            .where(Execution.id == uuid.UUID(task_id))
            .values(
                status=ExecutionStatus.SUCCEEDED,
                output={"ok": True},
                started_at=now,
                finished_at=now + timedelta(seconds=1),
            )
        )
    view = api.client.get(f"/tasks/{task_id}", headers=api.auth()).json()
    assert view["status"] == "succeeded"
    assert view["output"] == {"ok": True}


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ('{"workflow": "report", "input": {"a": "\\u0000"}}', "body.input: a: NUL"),
        (
            '{"workflow": "report", "input": {"\\u0000": 1}}',
            "NUL characters are not allowed in keys",
        ),
        ('{"workflow": "report", "input": {"a": NaN}}', "NaN and Infinity"),
        ('{"workflow": "report", "input": {"a": -Infinity}}', "NaN and Infinity"),
        ('{"workflow": "rep\\u0000ort"}', "body.workflow"),
        ('{"step": {"action": "http", "url": "https://x.example/\\u0000"}}', "url: NUL"),
        ('{"workflow": "report", "input": ' + '{"a": ' * 70 + "1" + "}" * 71, "nested deeper"),
    ],
)
def test_values_postgresql_cannot_store_are_422_not_500(
    api: ApiHarness, body: str, needle: str
) -> None:
    api.apply()
    headers = {**api.auth(), "Content-Type": "application/json"}
    assert_problem(api.client.post("/tasks", content=body, headers=headers), 422, needle)


def test_nul_in_path_query_definitions_and_webhooks_is_422(api: ApiHarness) -> None:
    api.apply()
    assert_problem(api.client.get("/tasks?workflow=a%00b", headers=api.auth()), 422, "NUL")
    assert_problem(api.client.get("/workflows/a%00b", headers=api.auth()), 422, "NUL")
    json_headers = {**api.auth(), "Content-Type": "application/json"}
    steps = '"steps": [{"name": "s", "action": "python", "function": "a.b"}]'
    nan = '{"name": "x", "input": {"a": NaN}, ' + steps + "}"
    assert_problem(api.client.put("/workflows/x", content=nan, headers=json_headers), 422, "NaN")
    nul = '{"name": "x", "input": {"a": "\\u0000"}, ' + steps + "}"
    assert_problem(
        api.client.put("/workflows/x", content=nul, headers=json_headers), 422, "input.a"
    )
    yaml_nan = "name: x\ninput: {a: .nan}\nsteps: [{name: s, action: python, function: a.b}]\n"
    assert_problem(
        api.client.put(
            "/workflows/x",
            content=yaml_nan,
            headers={**api.auth(), "Content-Type": "application/yaml"},
        ),
        422,
    )
    deep = ("[" * 5000 + "]" * 5000).encode()
    assert_problem(api.client.put("/workflows/x", content=deep, headers=json_headers), 422)
    for body in (b'{"a": "\\u0000"}', b'{"a": NaN}', b"[" * 100_000 + b"]" * 100_000):
        response = api.client.post(
            "/webhooks/acme", content=body, headers=generic_headers(body, "nul")
        )
        assert_problem(response, 422, "body")
