"""The API's Lambda entry point: ``api.handler.handler``.

One function takes three kinds of event:

* API Gateway HTTP API (payload v2): served by the ASGI app through Mangum;
* a direct invocation ``{"action": "trigger", "workflow": …, "input": {…}}`` (or ``"step"``
  instead of ``"workflow"``, and an optional ``"idempotency_key"``);
* an EventBridge event with ``detail-type`` ``conveyor.trigger`` and ``detail`` holding
  ``workflow``/``step`` and ``input``; the event id is the idempotency key, so EventBridge's
  at-least-once delivery starts one run.

The last two start a task exactly as ``POST /tasks`` does and return
``{"ok": true, "id": …, "status": "pending", …}``; a bad event returns
``{"ok": false, "error": <problem>}`` rather than raising.

Settings are read once (``load_settings``), on the first invocation of the execution
environment; the engine keeps no pool between invocations (``serverless=True``), and boto3 is
imported only when the first doorbell is sent.
"""

from __future__ import annotations

from typing import Any

from mangum import Mangum

from api.app import create_app
from api.runtime import Runtime, freeze_startup_objects, utcnow
from api.service import event_error, event_result, parse_event_request, submit
from shared.errors import ConveyorError, InvalidInput
from shared.logs import configure_logging, get_logger
from shared.settings import load_settings
from shared.status import Trigger

EVENT_DETAIL_TYPE = "conveyor.trigger"

_runtime: Runtime | None = None
_adapter: Mangum | None = None
log = get_logger("api")


def configure(runtime: Runtime) -> None:
    """Use ``runtime`` instead of building one from the environment (tests, custom setups)."""
    global _runtime, _adapter  # noqa: PLW0603  (one per execution environment)
    _runtime = runtime
    _adapter = Mangum(create_app(runtime=runtime), lifespan="off", api_gateway_base_path="/")


def _ensure() -> tuple[Runtime, Mangum]:
    if _runtime is None or _adapter is None:
        settings = load_settings()
        configure_logging(settings)
        configure(Runtime.from_settings(settings, serverless=True))
        freeze_startup_objects(collect=False)
    assert _runtime is not None
    assert _adapter is not None
    return _runtime, _adapter


def _is_http(event: dict[str, Any]) -> bool:
    context = event.get("requestContext")
    return isinstance(context, dict) and ("http" in context or "httpMethod" in event)


def _key(namespace: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= 128:
        raise InvalidInput("idempotency_key: must be a string of 1 to 128 characters")
    return f"{namespace}/{value}"


def _trigger(
    runtime: Runtime, data: dict[str, Any], *, where: str, trigger: Trigger, key: str | None
) -> dict[str, Any]:
    request = parse_event_request(data, where=where)
    started = submit(runtime, request, trigger=trigger, now=utcnow(), idempotency_key=key)
    log.info("task_started", source=where, execution_id=str(started.id), created=started.created)
    return event_result(started)


def _direct(runtime: Runtime, event: dict[str, Any]) -> dict[str, Any]:
    action = event.get("action")
    if action != "trigger":
        raise InvalidInput(f"action: unknown action {action!r}; expected 'trigger'")
    return _trigger(
        runtime,
        event,
        where="event",
        trigger=Trigger.API,
        key=_key("lambda", event.get("idempotency_key")),
    )


def _eventbridge(runtime: Runtime, event: dict[str, Any]) -> dict[str, Any]:
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise InvalidInput("detail: an EventBridge conveyor.trigger event needs a detail object")
    event_id = event.get("id")
    key = _key("eventbridge", event_id) if isinstance(event_id, str) else None
    return _trigger(runtime, detail, where="detail", trigger=Trigger.EVENT, key=key)


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Lambda entry point (see the module docstring for the events it takes)."""
    if not isinstance(event, dict):
        return event_error(InvalidInput("event: expected a JSON object"))
    runtime, adapter = _ensure()
    if _is_http(event):
        response: dict[str, Any] = adapter(event, context)
        return response
    try:
        if "detail-type" in event:
            if event["detail-type"] != EVENT_DETAIL_TYPE:
                raise InvalidInput(
                    f"detail-type: expected {EVENT_DETAIL_TYPE!r}, got {event['detail-type']!r}"
                )
            return _eventbridge(runtime, event)
        if "action" in event:
            return _direct(runtime, event)
        raise InvalidInput(
            'event: not an API Gateway request, a direct invocation ({"action": "trigger", '
            "…}) or an EventBridge conveyor.trigger event"
        )
    except ConveyorError as error:
        log.warning("event_rejected", error=str(error))
        return event_error(error)
    except Exception as exc:
        log.error("event_failed", error=f"{type(exc).__name__}: {exc}", exc_info=True)
        return {
            "ok": False,
            "error": {
                "type": "/problems/internal-error",
                "title": "Internal Server Error",
                "status": 500,
                "detail": "an internal error occurred; see the function's log",
            },
        }
