"""Webhook signature schemes: GitHub, Stripe (with its timestamp tolerance), generic HMAC."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest

from shared.errors import ConfigurationError, InvalidInput
from shared.webhooks import (
    SignatureError,
    WebhookSource,
    load_sources,
    read_delivery,
    verify_signature,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
BODY = b'{"id": "evt_1", "type": "invoice.paid"}'


def sign(secret: str, data: bytes) -> str:
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


class Headers(dict[str, str]):
    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        for name, value in self.items():
            if name.lower() == key.lower():
                return value
        return default


def test_sources_pick_the_scheme_from_the_name_or_say_it() -> None:
    sources = load_sources(
        json.dumps(
            {
                "github": "a",
                "github-enterprise": "b",
                "stripe": "c",
                "acme": "d",
                "billing": {"secret": "e", "scheme": "stripe"},
            }
        )
    )
    assert {name: s.scheme for name, s in sources.items()} == {
        "github": "github",
        "github-enterprise": "github",
        "stripe": "stripe",
        "acme": "generic",
        "billing": "stripe",
    }
    assert load_sources(None) == {}


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ("not json", "not a JSON object"),
        ("[1]", "not a JSON object"),
        ('{"Bad Name": "x"}', "not a valid source name"),
        ('{"a": ""}', "empty"),
        ('{"a": 3}', "expected a secret"),
        ('{"a": {"secret": "x", "scheme": "svn"}}', "unknown scheme"),
    ],
)
def test_bad_webhook_configuration_is_a_configuration_error(raw: str, needle: str) -> None:
    with pytest.raises(ConfigurationError, match=needle):
        load_sources(raw)


def test_github_signature() -> None:
    source = WebhookSource("github", "s3cret", "github")
    good = Headers({"X-Hub-Signature-256": f"sha256={sign('s3cret', BODY)}"})
    verify_signature(source, good, BODY, NOW)
    upper = Headers({"X-Hub-Signature-256": f"sha256={sign('s3cret', BODY).upper()}"})
    verify_signature(source, upper, BODY, NOW)
    for headers, needle in [
        (Headers(), "missing X-Hub-Signature-256"),
        (Headers({"X-Hub-Signature-256": "sha1=abc"}), "expected 'sha256="),
        (Headers({"X-Hub-Signature-256": f"sha256={sign('other', BODY)}"}), "does not match"),
    ]:
        with pytest.raises(SignatureError, match=needle):
            verify_signature(source, headers, BODY, NOW)
    with pytest.raises(SignatureError):
        verify_signature(source, good, BODY + b" ", NOW)


def test_stripe_signature_and_tolerance() -> None:
    source = WebhookSource("stripe", "whsec", "stripe")

    def header(at: datetime, secret: str = "whsec", extra: str = "") -> Headers:
        stamp = int(at.timestamp())
        digest = sign(secret, f"{stamp}.".encode() + BODY)
        return Headers({"Stripe-Signature": f"t={stamp},{extra}v1={digest},v0=ignored"})

    verify_signature(source, header(NOW), BODY, NOW)
    verify_signature(source, header(NOW - timedelta(seconds=300)), BODY, NOW)
    verify_signature(source, header(NOW, extra="v1=deadbeef,"), BODY, NOW)  # key rotation
    for headers, needle in [
        (header(NOW - timedelta(seconds=301)), "tolerance"),
        (header(NOW + timedelta(seconds=301)), "tolerance"),
        (header(NOW, secret="other"), "does not match"),
        (Headers({"Stripe-Signature": "v1=abc"}), "expected 't="),
        (Headers({"Stripe-Signature": "t=soon,v1=abc"}), "not a Unix timestamp"),
        (Headers(), "missing Stripe-Signature"),
    ]:
        with pytest.raises(SignatureError, match=needle):
            verify_signature(source, headers, BODY, NOW)


def test_generic_signature() -> None:
    source = WebhookSource("acme", "k", "generic")
    verify_signature(
        source, Headers({"X-Webhook-Signature": f"sha256={sign('k', BODY)}"}), BODY, NOW
    )
    with pytest.raises(SignatureError, match="X-Webhook-Signature"):
        verify_signature(
            source, Headers({"X-Hub-Signature-256": f"sha256={sign('k', BODY)}"}), BODY, NOW
        )


def test_delivery_ids_and_events_per_scheme() -> None:
    github = read_delivery(
        WebhookSource("github", "s", "github"),
        Headers({"X-GitHub-Delivery": "d1", "X-GitHub-Event": "push"}),
        BODY,
    )
    assert (github.delivery_id, github.event) == ("d1", "push")
    stripe = read_delivery(WebhookSource("stripe", "s", "stripe"), Headers(), BODY)
    assert (stripe.delivery_id, stripe.event) == ("evt_1", "invoice.paid")
    generic = read_delivery(WebhookSource("acme", "s", "generic"), Headers(), BODY)
    assert generic.delivery_id == hashlib.sha256(BODY).hexdigest()
    assert generic.as_input()["webhook"]["payload"] == json.loads(BODY)
    with pytest.raises(InvalidInput, match="X-GitHub-Delivery"):
        read_delivery(WebhookSource("github", "s", "github"), Headers(), BODY)
    with pytest.raises(InvalidInput, match=r"body\.id"):
        read_delivery(WebhookSource("stripe", "s", "stripe"), Headers(), b"[]")
