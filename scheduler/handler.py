"""``scheduler.handler.handler``: the EventBridge-scheduled Lambda entry point.

The settings, the engine (no pool: Lambda) and the scheduler (with its timing cache) are built on
the first invocation and reused while the container stays warm.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from scheduler.service import SchedulerService
from shared.errors import ConveyorError, InvalidInput
from shared.logs import configure_logging, get_logger

log = get_logger(__name__)

_service: SchedulerService | None = None

SAFETY_MARGIN_SECONDS = 10.0


def reset() -> None:
    """Forget the warm scheduler and close its connections (tests; a config change)."""
    global _service  # noqa: PLW0603
    if _service is not None:
        _service.close()
    _service = None


def build_service() -> SchedulerService:
    from shared.database import create_engine_from_settings, session_factory  # noqa: PLC0415
    from shared.queue import publisher_from_settings  # noqa: PLC0415
    from shared.settings import load_settings  # noqa: PLC0415

    settings = load_settings()
    configure_logging(settings)
    engine = create_engine_from_settings(settings, serverless=True)
    publisher = publisher_from_settings(settings) if settings.queue_url else None
    ecs = None
    if settings.ecs_cluster and settings.ecs_service:
        import boto3  # noqa: PLC0415

        ecs = boto3.client("ecs", region_name=settings.region)
    return SchedulerService(settings, session_factory(engine), publisher, ecs_client=ecs)


def validate_event(event: Any) -> datetime | None:
    """Accept an EventBridge scheduled event (or an empty manual test event); return its time."""
    if event is None or event == {}:
        return None
    if not isinstance(event, dict):
        raise InvalidInput(f"event: expected a JSON object, got {type(event).__name__}")
    detail_type = event.get("detail-type")
    if detail_type is not None and detail_type != "Scheduled Event":
        raise InvalidInput(f"detail-type: expected 'Scheduled Event', got {detail_type!r}")
    stamp = event.get("time")
    if stamp is None:
        return None
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError as exc:
        raise InvalidInput(f"time: not an ISO 8601 timestamp: {stamp!r}") from exc


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Run one tick. ``now`` is the real clock (a late delivery must not fire early)."""
    global _service  # noqa: PLW0603  (one scheduler per warm container)
    try:
        scheduled_at = validate_event(event)
    except InvalidInput as error:
        log.error("scheduler_event_invalid", error=str(error))
        return {"ok": False, "error": str(error)}
    if _service is None:
        _service = build_service()
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    time_left = (lambda: remaining() / 1000.0) if callable(remaining) else None
    now = datetime.now(UTC)
    try:
        report = _service.tick(now, time_left=time_left)
    except ConveyorError as error:
        log.error("tick_failed", error=str(error))
        raise
    result = report.to_json()
    result["ok"] = True
    if scheduled_at is not None:
        result["lag_ms"] = round((now - scheduled_at).total_seconds() * 1000)
    return result
