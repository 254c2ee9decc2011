"""Incoming webhooks: verify the sender's signature, accept each delivery once, start workflows.

Schemes (chosen per source, see :func:`load_sources`):

* ``github``: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``, delivery id
  ``X-GitHub-Delivery``, event ``X-GitHub-Event``;
* ``stripe``: ``Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`` with a
  timestamp tolerance of 300 s, delivery id = the event's ``id``, event = its ``type``;
* ``generic``: ``X-Webhook-Signature: sha256=<hex HMAC-SHA256 of the body>``, delivery id
  ``X-Webhook-Id`` (else the SHA-256 of the body), event ``X-Webhook-Event``.

Every comparison is constant-time. A delivery id is accepted once per source
(:class:`shared.models.WebhookDelivery`, insert-or-ignore): a replay gets the executions the first
delivery started, never a new run.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select, type_coerce
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from shared.errors import ConfigurationError, ConveyorError, InvalidInput
from shared.models import WebhookDelivery, Workflow
from shared.status import Trigger

Scheme = Literal["github", "stripe", "generic"]
SCHEMES: tuple[Scheme, ...] = ("github", "stripe", "generic")
STRIPE_TOLERANCE_SECONDS = 300
_SOURCE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class SignatureError(ConveyorError):
    """The delivery is not signed by the source's secret (missing, forged, stale)."""


@dataclass(frozen=True)
class WebhookSource:
    name: str
    secret: str = field(repr=False)
    scheme: Scheme


def _scheme_for(name: str) -> Scheme:
    scheme: Scheme
    for scheme in ("github", "stripe"):
        if name == scheme or name.startswith(f"{scheme}-"):
            return scheme
    return "generic"


def load_sources(raw: str | None) -> dict[str, WebhookSource]:
    """Parse ``CONVEYOR_WEBHOOK_SECRETS``.

    A JSON object whose values are a secret (the scheme follows the source name: ``github`` and
    ``github-*`` use GitHub's, ``stripe``/``stripe-*`` Stripe's, anything else the generic one)
    or ``{"secret": "…", "scheme": "github|stripe|generic"}``.
    """
    if not raw:
        return {}
    try:
        document = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"webhook_secrets: not a JSON object: {exc.msg}") from None
    if not isinstance(document, dict):
        raise ConfigurationError("webhook_secrets: not a JSON object of {source: secret}")
    sources: dict[str, WebhookSource] = {}
    for name, value in document.items():
        if not _SOURCE_RE.match(name):
            raise ConfigurationError(f"webhook_secrets: {name!r} is not a valid source name")
        if isinstance(value, str):
            secret, scheme = value, _scheme_for(name)
        elif isinstance(value, dict) and isinstance(value.get("secret"), str):
            secret, scheme = value["secret"], value.get("scheme", _scheme_for(name))
            if scheme not in SCHEMES:
                raise ConfigurationError(
                    f"webhook_secrets.{name}.scheme: unknown scheme {scheme!r}; "
                    f"expected one of {', '.join(SCHEMES)}"
                )
        else:
            raise ConfigurationError(
                f'webhook_secrets.{name}: expected a secret string or {{"secret", "scheme"}}'
            )
        if not secret:
            raise ConfigurationError(f"webhook_secrets.{name}: the secret is empty")
        sources[name] = WebhookSource(name=name, secret=secret, scheme=scheme)
    return sources


def _hmac_hex(secret: str, data: bytes) -> str:
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def _check_sha256_header(value: str | None, header: str, secret: str, body: bytes) -> None:
    if not value:
        raise SignatureError(f"missing {header} header")
    algorithm, _, digest = value.strip().partition("=")
    if algorithm != "sha256" or not digest:
        raise SignatureError(f"{header}: expected 'sha256=<hex digest>'")
    if not hmac.compare_digest(digest.lower().encode(), _hmac_hex(secret, body).encode()):
        raise SignatureError(f"{header}: signature does not match")


def _check_stripe(value: str | None, secret: str, body: bytes, now: datetime) -> None:
    if not value:
        raise SignatureError("missing Stripe-Signature header")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in value.split(","):
        key, _, item = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(item)
            except ValueError:
                raise SignatureError("Stripe-Signature: t is not a Unix timestamp") from None
        elif key == "v1":
            signatures.append(item)
    if timestamp is None or not signatures:
        raise SignatureError("Stripe-Signature: expected 't=<timestamp>,v1=<signature>'")
    if abs(now.timestamp() - timestamp) > STRIPE_TOLERANCE_SECONDS:
        raise SignatureError(
            f"Stripe-Signature: timestamp outside the {STRIPE_TOLERANCE_SECONDS} s tolerance"
        )
    expected = _hmac_hex(secret, f"{timestamp}.".encode() + body).encode()
    matches = [hmac.compare_digest(sig.lower().encode(), expected) for sig in signatures]
    if not any(matches):
        raise SignatureError("Stripe-Signature: signature does not match")


def verify_signature(
    source: WebhookSource, headers: Mapping[str, str], body: bytes, now: datetime
) -> None:
    """Raise :class:`SignatureError` unless ``body`` is signed with the source's secret.

    ``headers`` must look names up case-insensitively (Starlette's ``Headers`` does).
    """
    if source.scheme == "github":
        _check_sha256_header(
            headers.get("x-hub-signature-256"), "X-Hub-Signature-256", source.secret, body
        )
    elif source.scheme == "stripe":
        _check_stripe(headers.get("stripe-signature"), source.secret, body, now)
    else:
        _check_sha256_header(
            headers.get("x-webhook-signature"), "X-Webhook-Signature", source.secret, body
        )


@dataclass(frozen=True)
class Delivery:
    source: str
    delivery_id: str
    event: str | None
    payload: Any

    def as_input(self) -> dict[str, Any]:
        return {
            "webhook": {
                "source": self.source,
                "delivery_id": self.delivery_id,
                "event": self.event,
                "payload": self.payload,
            }
        }


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _has_nul(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and "\x00" in item:
            return True
        if isinstance(item, dict):
            stack.extend(str(key) for key in item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def read_delivery(source: WebhookSource, headers: Mapping[str, str], body: bytes) -> Delivery:
    """Decode a verified body and find its delivery id and event name."""
    try:
        payload = json.loads(body, parse_constant=_reject_constant) if body.strip() else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"body: not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidInput("body: JSON nested too deeply") from None
    if _has_nul(payload):
        raise InvalidInput("body: NUL characters cannot be stored")
    event: str | None
    if source.scheme == "github":
        delivery_id = headers.get("x-github-delivery")
        event = headers.get("x-github-event")
        if not delivery_id:
            raise InvalidInput("X-GitHub-Delivery: missing header")
    elif source.scheme == "stripe":
        if not isinstance(payload, dict) or not isinstance(payload.get("id"), str):
            raise InvalidInput("body.id: a Stripe event needs its id")
        delivery_id = payload["id"]
        event = payload.get("type") if isinstance(payload.get("type"), str) else None
    else:
        delivery_id = headers.get("x-webhook-id") or hashlib.sha256(body).hexdigest()
        event = headers.get("x-webhook-event")
    if len(delivery_id) > 255:
        raise InvalidInput("delivery id: longer than 255 characters")
    return Delivery(source.name, delivery_id, event, payload)


def subscribed_workflows(session: Session, source: str) -> list[Workflow]:
    """Enabled workflows whose definition lists ``source`` under ``webhooks``."""
    query = select(Workflow).where(Workflow.enabled.is_(True)).order_by(Workflow.name)
    if session.get_bind().dialect.name == "postgresql":
        column = type_coerce(Workflow.definition, postgresql.JSONB)
        return list(session.scalars(query.where(column.contains({"webhooks": [source]}))))
    return [
        workflow
        for workflow in session.scalars(query)
        if source in (workflow.definition.get("webhooks") or [])
    ]


@dataclass(frozen=True)
class Accepted:
    delivery: Delivery
    execution_ids: list[uuid.UUID]
    replayed: bool  # True: seen before, nothing was started


def accept_delivery(session: Session, delivery: Delivery, now: datetime) -> Accepted:
    """Record the delivery once and start one run per subscribed workflow (caller commits).

    A replay (same source and delivery id) returns the first delivery's execution ids.
    """
    from shared.executions import start_workflow  # noqa: PLC0415

    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    inserted = session.execute(
        insert(WebhookDelivery)
        .values(
            source=delivery.source,
            delivery_id=delivery.delivery_id,
            received_at=now,
            execution_ids=[],
        )
        .on_conflict_do_nothing(index_elements=["source", "delivery_id"])
        .returning(WebhookDelivery.source)
    ).first()
    if inserted is None:
        seen = session.get(WebhookDelivery, (delivery.source, delivery.delivery_id))
        ids = [uuid.UUID(i) for i in (seen.execution_ids if seen else [])]
        return Accepted(delivery, ids, replayed=True)
    ids = [
        start_workflow(
            session,
            workflow.name,
            trigger=Trigger.WEBHOOK,
            now=now,
            run_input=delivery.as_input(),
        ).id
        for workflow in subscribed_workflows(session, delivery.source)
    ]
    row = session.get(WebhookDelivery, (delivery.source, delivery.delivery_id))
    if row is not None:
        row.execution_ids = [str(i) for i in ids]
    session.flush()
    return Accepted(delivery, ids, replayed=False)
