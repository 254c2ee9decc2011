"""Task commands for callers: ``task submit [--wait]``, ``task status``, ``task wait``.

With an API URL (``--api-url`` or ``CONVEYOR_API_URL``) they speak HTTP to the API with an API key
(``--api-key`` or ``CONVEYOR_API_KEY``); without one they use the database directly and send the
doorbell through the queue, the same way the API does.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Protocol

import click

from conveyor_cli.context import (
    EXIT_FAILED,
    CliContext,
    emit_json,
    now_utc,
    parse_json_object,
    pass_state,
)
from shared.errors import ConfigurationError, ConveyorError, InvalidInput, NotFound

TERMINAL = {"succeeded", "failed", "cancelled", "timed_out", "skipped"}


class TaskBackend(Protocol):
    def submit(
        self, body: dict[str, Any], idempotency_key: str | None
    ) -> dict[str, Any]: ...  # pragma: no cover

    def status(self, task_id: str) -> dict[str, Any]: ...  # pragma: no cover


class HttpBackend:
    def __init__(self, url: str, key: str | None, timeout: float = 10.0) -> None:
        import httpx  # noqa: PLC0415

        headers = {"Accept": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self.client = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)

    def _check(self, response: Any) -> dict[str, Any]:
        if response.status_code < 400:
            data: dict[str, Any] = response.json()
            return data
        try:
            detail = response.json().get("detail") or response.text
        except ValueError:
            detail = response.text
        message = f"API answered {response.status_code}: {detail}"
        if response.status_code == 404:
            raise NotFound(message)
        if response.status_code in (400, 409, 413, 422):
            raise InvalidInput(message)
        if response.status_code in (401, 403):
            raise ConfigurationError(message)
        raise ConveyorError(message)

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        import httpx  # noqa: PLC0415

        try:
            return self._check(self.client.request(method, path, **kwargs))
        except httpx.HTTPError as exc:
            raise ConveyorError(f"cannot reach the API at {self.client.base_url}: {exc}") from exc

    def submit(self, body: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self._call("POST", "/tasks", json=body, headers=headers)

    def status(self, task_id: str) -> dict[str, Any]:
        return self._call("GET", f"/tasks/{task_id}")


class DatabaseBackend:
    def __init__(self, state: CliContext) -> None:
        self.state = state

    def submit(self, body: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]:
        from shared.executions import request_fingerprint, start_task  # noqa: PLC0415
        from shared.status import Trigger  # noqa: PLC0415

        key = f"cli/{idempotency_key}" if idempotency_key else None
        with self.state.transaction() as session:
            created = start_task(
                session,
                workflow=body.get("workflow"),
                step=body.get("step"),
                trigger=Trigger.API,
                now=now_utc(),
                run_input=body.get("input"),
                idempotency_key=key,
                request_hash=request_fingerprint(body),
                source="<cli> --step",
            )
            task_id, status = created.id, created.status.value
        if created.created:
            note = self.state.dispatch([task_id])
            if self.state.settings.queue_url is None:
                click.echo(f"note: {note}", err=True)
        return {
            "id": str(task_id),
            "status": status,
            "created": created.created,
            "links": {"self": f"/tasks/{task_id}"},
        }

    def status(self, task_id: str) -> dict[str, Any]:
        from shared.executions import describe_execution, get_execution  # noqa: PLC0415

        with self.state.transaction() as session:
            return describe_execution(get_execution(session, task_id), detail=True)


def _backend(state: CliContext, api_url: str | None, api_key: str | None) -> TaskBackend:
    url = api_url or state.settings.api_url
    if url:
        key = api_key or (
            state.settings.api_key.get_secret_value() if state.settings.api_key else None
        )
        return HttpBackend(url, key)
    return DatabaseBackend(state)


def _api_options(function: Any) -> Any:
    function = click.option("--api-key", default=None, help="API key (default: CONVEYOR_API_KEY).")(
        function
    )
    return click.option(
        "--api-url", default=None, help="API base URL (default: CONVEYOR_API_URL; none: database)."
    )(function)


def _status_line(view: dict[str, Any], elapsed: float) -> str:
    steps = view.get("steps") or []
    done = sum(1 for step in steps if step.get("status") == "succeeded")
    return (
        f"{view['id']}  {view['status']:10}  attempt {view.get('attempt', 0)}"
        f"/{view.get('max_attempts', 1)}  steps done {done}  {elapsed:5.1f}s"
    )


def _finish(view: dict[str, Any], *, live: bool, as_json: bool) -> int:
    if live:
        click.echo("", err=True)
    if as_json:
        emit_json(view)
    else:
        if view.get("error"):
            click.echo(f"error: {json.dumps(view['error'])}", err=True)
        if view.get("output") is not None:
            click.echo(json.dumps(view["output"], indent=2))
    return 0 if view["status"] == "succeeded" else EXIT_FAILED


def wait_for(
    backend: TaskBackend, task_id: str, *, timeout: float, interval: float, as_json: bool
) -> int:
    """Poll until the task ends; show a live status line and the timeline as it grows."""
    live = sys.stderr.isatty() and not as_json
    started = time.monotonic()
    shown = 0
    last_key: tuple[Any, ...] | None = None
    while True:
        view = backend.status(task_id)
        events = view.get("events") or []
        elapsed = time.monotonic() - started
        if not as_json:
            if live:
                click.echo("\r\033[K", nl=False, err=True)
            for event in events[shown:]:
                step = f" [{event['step']}]" if event.get("step") else ""
                click.echo(f"{event['at']}  {event['kind']:16}{step} {event['message']}")
            key = (view["status"], view.get("attempt"))
            if live:
                click.echo(_status_line(view, elapsed), nl=False, err=True)
            elif key != last_key:
                click.echo(_status_line(view, elapsed), err=True)
            last_key = key
        shown = len(events)
        if view["status"] in TERMINAL:
            return _finish(view, live=live, as_json=as_json)
        if elapsed >= timeout:
            if live:
                click.echo("", err=True)
            click.echo(f"error: task {task_id} still {view['status']} after {timeout:g}s", err=True)
            return EXIT_FAILED
        time.sleep(min(interval, max(0.0, timeout - elapsed)))


@click.group("task")
def task() -> None:
    """Submit tasks and follow them."""


@task.command("submit")
@click.option("--workflow", "workflow", default=None, help="Run this stored workflow.")
@click.option("--step", "step", default=None, help="Or run one ad-hoc step (JSON object).")
@click.option("--input", "input_json", default=None, help="Input as a JSON object.")
@click.option("--idempotency-key", default=None, help="Make a retried submit return the same task.")
@click.option("--wait", is_flag=True, help="Follow the task until it ends (exit 1 if it fails).")
@click.option("--timeout", default=600.0, show_default=True, type=float, help="--wait limit, s.")
@click.option("--interval", default=0.5, show_default=True, type=float, help="Poll interval, s.")
@click.option("--json", "as_json", is_flag=True)
@_api_options
@pass_state
def task_submit(
    state: CliContext,
    workflow: str | None,
    step: str | None,
    input_json: str | None,
    idempotency_key: str | None,
    wait: bool,
    timeout: float,
    interval: float,
    as_json: bool,
    api_url: str | None,
    api_key: str | None,
) -> None:
    """Start a task: a run of --workflow NAME, or one --step."""
    if (workflow is None) == (step is None):
        raise InvalidInput("give exactly one of --workflow or --step")
    body: dict[str, Any] = {"input": parse_json_object(input_json, option="--input")}
    if workflow is not None:
        body["workflow"] = workflow
    else:
        body["step"] = parse_json_object(step, option="--step")
    backend = _backend(state, api_url, api_key)
    accepted = backend.submit(body, idempotency_key)
    if not wait:
        if as_json:
            emit_json(accepted)
        else:
            click.echo(accepted["id"])
        return
    if not as_json:
        click.echo(f"submitted {accepted['id']}", err=True)
    sys.exit(wait_for(backend, accepted["id"], timeout=timeout, interval=interval, as_json=as_json))


@task.command("status")
@click.argument("task_id")
@click.option("--json", "as_json", is_flag=True)
@_api_options
@pass_state
def task_status(
    state: CliContext, task_id: str, as_json: bool, api_url: str | None, api_key: str | None
) -> None:
    """Show a task: status, steps and timeline."""
    view = _backend(state, api_url, api_key).status(task_id)
    if as_json:
        emit_json(view)
        return
    for key in (
        "id",
        "workflow",
        "trigger",
        "status",
        "attempt",
        "created_at",
        "started_at",
        "finished_at",
    ):
        click.echo(f"{key}: {view.get(key)}")
    if view.get("error"):
        click.echo(f"error: {json.dumps(view['error'])}")
    if view.get("output") is not None:
        click.echo(f"output: {json.dumps(view['output'])}")
    for step in view.get("steps") or []:
        click.echo(
            f"  step {step['name']} attempt {step['attempt']}: {step['status']}"
            f" ({step.get('duration_ms') or '-'} ms)"
        )
    click.echo("timeline:")
    for event in view.get("events") or []:
        step_name = f" [{event['step']}]" if event.get("step") else ""
        click.echo(f"  {event['at']}  {event['kind']}{step_name} {event['message']}")


@task.command("wait")
@click.argument("task_id")
@click.option("--timeout", default=600.0, show_default=True, type=float)
@click.option("--interval", default=0.5, show_default=True, type=float)
@click.option("--json", "as_json", is_flag=True)
@_api_options
@pass_state
def task_wait(
    state: CliContext,
    task_id: str,
    timeout: float,
    interval: float,
    as_json: bool,
    api_url: str | None,
    api_key: str | None,
) -> None:
    """Wait for a task to end: exit 0 if it succeeded, 1 otherwise."""
    backend = _backend(state, api_url, api_key)
    sys.exit(wait_for(backend, task_id, timeout=timeout, interval=interval, as_json=as_json))
