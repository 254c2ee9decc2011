"""Shared set-up for the API tests (no tests here): the app on PostgreSQL + moto SQS, keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from api.runtime import Runtime
from shared.apikeys import create_key, revoke_key
from shared.catalog import apply_definition
from shared.definition import parse_definition_text
from shared.queue import decode_message_body
from shared.settings import Settings

GITHUB_SECRET = "gh-secret-for-tests"
STRIPE_SECRET = "whsec_test_secret"
ACME_SECRET = "acme-secret"
JWT_SECRET = "j" * 64
WEBHOOK_SECRETS = json.dumps(
    {"github": GITHUB_SECRET, "stripe": STRIPE_SECRET, "acme": ACME_SECRET}
)

REPORT = """\
name: report
schedule: "0 9 * * *"
timezone: Europe/Berlin
input: {region: eu}
webhooks: [github, stripe, acme]
steps:
  - name: work
    action: python
    function: conveyor.heartbeat
"""

KEY_SCOPES: dict[str, list[str]] = {
    "admin": ["admin"],
    "tasks-read": ["tasks:read"],
    "tasks-write": ["tasks:write"],
    "workflows-read": ["workflows:read"],
    "workflows-write": ["workflows:write"],
    "revoked": ["admin"],
}


def api_settings(pg_url: str, sqs: Any, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": pg_url,
        "queue_url": sqs.queue_url,
        "queue_name": sqs.queue_name,
        "webhook_secrets": WEBHOOK_SECRETS,
        "jwt_secret": JWT_SECRET,
        "log_format": "json",
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class ApiHarness:
    settings: Settings
    runtime: Runtime
    app: FastAPI
    client: TestClient
    sqs: Any
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self.runtime.sessions

    def auth(self, key_name: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[key_name]}"}

    def apply(self, text: str = REPORT) -> None:
        with self.sessions() as session, session.begin():
            apply_definition(session, parse_definition_text(text), datetime.now(UTC))

    def received(self, wait: float = 1.0) -> list[str]:
        """Execution ids of the doorbells on the queue (consumed)."""
        ids: list[str] = []
        deadline = time.monotonic() + wait
        while True:
            messages = self.sqs.client.receive_message(
                QueueUrl=self.sqs.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            for message in messages:
                ids.append(decode_message_body(message["Body"]).args[0])
                self.sqs.client.delete_message(
                    QueueUrl=self.sqs.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
            if not messages and (ids or time.monotonic() > deadline):
                return ids
            if not messages:
                time.sleep(0.05)


@contextmanager
def harness(settings: Settings, sqs: Any, *, with_keys: bool = True) -> Iterator[ApiHarness]:
    runtime = Runtime.from_settings(settings)
    app = create_app(runtime=runtime)
    keys: dict[str, str] = {}
    now = datetime.now(UTC)
    with runtime.sessions() as session, session.begin():
        for name, scopes in KEY_SCOPES.items() if with_keys else ():
            keys[name] = create_key(session, name, scopes, now).key
        if with_keys:
            revoke_key(session, "revoked", now)
    with TestClient(app) as client:
        yield ApiHarness(settings, runtime, app, client, sqs, keys)
    runtime.close()


# ------------------------------------------------------------------ signing helpers


def github_headers(
    body: bytes, delivery: str | None = None, secret: str = GITHUB_SECRET
) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": f"sha256={digest}",
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-GitHub-Event": "push",
    }


def stripe_headers(
    body: bytes, *, at: int | None = None, secret: str = STRIPE_SECRET
) -> dict[str, str]:
    stamp = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "Stripe-Signature": f"t={stamp},v1={digest}"}


def generic_headers(
    body: bytes, delivery: str | None = None, secret: str = ACME_SECRET
) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Webhook-Signature": f"sha256={digest}"}
    if delivery:
        headers["X-Webhook-Id"] = delivery
    return headers


def make_jwt(claims: dict[str, Any], secret: str = JWT_SECRET, alg: str = "HS256") -> str:
    def enc(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    header = enc(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = enc(json.dumps(claims).encode())
    signature = enc(
        hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    )
    return f"{header}.{payload}.{signature}"
