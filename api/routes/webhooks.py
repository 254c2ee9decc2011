"""``POST /webhooks/{source}``: authenticated by the sender's signature, not by an API key."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from api.problems import ApiProblem
from api.routes.dependencies import public_errors, runtime_of
from api.runtime import Runtime, utcnow
from api.schemas import WebhookAccepted
from api.service import send
from shared.webhooks import SignatureError, accept_delivery, read_delivery, verify_signature

router = APIRouter(tags=["webhooks"])

WEBHOOK_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The sender's JSON payload, byte for byte as signed.",
        "content": {"application/json": {"schema": {}}},
    },
    "parameters": [
        {
            "name": name,
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
            "description": description,
        }
        for name, description in (
            ("X-Hub-Signature-256", "GitHub: sha256=<hex HMAC of the body>"),
            ("X-GitHub-Delivery", "GitHub: the delivery id"),
            ("X-GitHub-Event", "GitHub: the event name"),
            ("Stripe-Signature", "Stripe: t=<unix time>,v1=<hex HMAC of '<t>.<body>'>"),
            ("X-Webhook-Signature", "Generic: sha256=<hex HMAC of the body>"),
            ("X-Webhook-Id", "Generic: the delivery id (default: SHA-256 of the body)"),
            ("X-Webhook-Event", "Generic: the event name"),
        )
    ],
}


def _receive(
    runtime: Runtime, source_name: str, headers: Any, body: bytes
) -> tuple[int, WebhookAccepted]:
    source = runtime.webhook_sources.get(source_name)
    if source is None:
        raise ApiProblem(404, f"source: no webhook source named {source_name!r} is configured")
    now = utcnow()
    try:
        verify_signature(source, headers, body, now)
    except SignatureError as error:
        raise ApiProblem(401, str(error)) from None
    delivery = read_delivery(source, headers, body)
    with runtime.sessions() as session, session.begin():
        accepted = accept_delivery(session, delivery, now)
    if not accepted.replayed:
        send(runtime, accepted.execution_ids, now)
    view = WebhookAccepted(
        source=delivery.source,
        delivery_id=delivery.delivery_id,
        event=delivery.event,
        replayed=accepted.replayed,
        executions=[str(i) for i in accepted.execution_ids],
    )
    return (200 if accepted.replayed else 202), view


@router.post(
    "/webhooks/{source}",
    status_code=202,
    response_model=WebhookAccepted,
    openapi_extra=WEBHOOK_BODY,
    responses={
        200: {
            "description": "A replayed delivery: the first delivery's executions",
            "model": WebhookAccepted,
        },
        **public_errors(400, 401, 404, 413, 422),
    },
    summary="Receive a signed webhook delivery and start the workflows subscribed to the source",
)
async def receive(
    source: Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")],
    request: Request,
    response: Response,
) -> WebhookAccepted:
    body = await request.body()
    status, view = await run_in_threadpool(
        _receive, runtime_of(request), source, request.headers, body
    )
    response.status_code = status
    request.state.key_name = f"webhook:{source}"
    return view
