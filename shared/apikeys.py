"""API keys: create, verify, revoke, list, and count their use per month.

A key reads ``cvk_<prefix>_<secret>``. The prefix (12 hex characters) is stored in clear and is
how a key is found; only the SHA-256 of the secret is stored, so a database dump does not give
callers' keys away. The full key is shown once, when it is created.

Scopes: ``tasks:read``, ``tasks:write``, ``workflows:read``, ``workflows:write`` and ``admin``.
``admin`` implies every scope and ``X:write`` implies ``X:read`` (:func:`grants`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from shared.errors import Conflict, InvalidInput, NotFound
from shared.models import ApiKey, ApiKeyUsage

KEY_PREFIX = "cvk"
SCOPES: tuple[str, ...] = (
    "tasks:read",
    "tasks:write",
    "workflows:read",
    "workflows:write",
    "admin",
)
DEFAULT_SCOPES: tuple[str, ...] = ("tasks:read", "tasks:write")
_KEY_RE = re.compile(r"^cvk_([0-9a-f]{12})_([A-Za-z0-9_-]{20,128})$")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def grants(scopes: Iterable[str], required: str) -> bool:
    """Whether ``scopes`` allow ``required`` (``admin`` allows all, ``X:write`` ``X:read``)."""
    held = set(scopes)
    if "admin" in held or required in held:
        return True
    resource, _, action = required.partition(":")
    return action == "read" and f"{resource}:write" in held


def check_scopes(scopes: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(scopes))
    unknown = [scope for scope in chosen if scope not in SCOPES]
    if unknown:
        raise InvalidInput(
            f"scope: unknown scope {unknown[0]!r}; expected one of {', '.join(SCOPES)}"
        )
    return chosen


@dataclass(frozen=True)
class CreatedKey:
    name: str
    key: str  # the full key: shown once, never stored
    prefix: str
    scopes: list[str]


def create_key(session: Session, name: str, scopes: Iterable[str], now: datetime) -> CreatedKey:
    """Store a new key named ``name`` and return it (the only time the secret is known)."""
    if not _NAME_RE.match(name):
        raise InvalidInput(
            f"name: {name!r} is not a valid key name (lower-case letters, digits, '.', '_', '-', "
            "at most 63 characters)"
        )
    chosen = check_scopes(scopes) or list(DEFAULT_SCOPES)
    if session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
        raise Conflict(f"an API key named {name!r} already exists")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    session.add(
        ApiKey(
            name=name,
            prefix=prefix,
            key_hash=hash_secret(secret),
            scopes=chosen,
            created_at=now,
        )
    )
    session.flush()
    return CreatedKey(
        name=name, key=f"{KEY_PREFIX}_{prefix}_{secret}", prefix=prefix, scopes=chosen
    )


def parse_key(key: str) -> tuple[str, str] | None:
    """``(prefix, secret)`` of a well-formed key, else ``None``."""
    match = _KEY_RE.match(key)
    return (match.group(1), match.group(2)) if match else None


def looks_like_key(token: str) -> bool:
    return token.startswith(f"{KEY_PREFIX}_")


@dataclass(frozen=True)
class VerifiedKey:
    id: int
    name: str
    scopes: list[str]


def verify_key(session: Session, key: str) -> VerifiedKey | None:
    """The key's identity if ``key`` is a live key, else ``None`` (unknown, wrong, revoked)."""
    parsed = parse_key(key)
    if parsed is None:
        return None
    prefix, secret = parsed
    row = session.execute(
        select(ApiKey.id, ApiKey.name, ApiKey.key_hash, ApiKey.scopes, ApiKey.revoked_at).where(
            ApiKey.prefix == prefix
        )
    ).one_or_none()
    # Hash even when the prefix is unknown, so timing does not tell the two cases apart.
    candidate = hash_secret(secret)
    if row is None:
        hmac.compare_digest(candidate, "0" * 64)
        return None
    if not hmac.compare_digest(candidate, row.key_hash) or row.revoked_at is not None:
        return None
    return VerifiedKey(id=row.id, name=row.name, scopes=list(row.scopes or []))


class VerifiedKeyCache:
    """Keys verified in the last ``ttl`` seconds, by the SHA-256 of the whole key.

    A process that serves many calls of one caller then reads the key once per ``ttl`` instead
    of on every call; a revoked key keeps working in that process for at most ``ttl``. Only
    successes are kept (a key created a moment ago works at once), and a different secret never
    matches an entry. ``ttl`` 0 keeps nothing. ``clock`` is monotonic seconds (tests pass one).
    """

    def __init__(
        self,
        ttl: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 10_000,
    ) -> None:
        self.ttl = ttl
        self._clock = clock
        self._max_entries = max_entries
        self._entries: dict[bytes, tuple[float, VerifiedKey]] = {}

    @staticmethod
    def _digest(key: str) -> bytes:
        return hashlib.sha256(key.encode()).digest()

    def get(self, key: str) -> VerifiedKey | None:
        if self.ttl <= 0:
            return None
        entry = self._entries.get(self._digest(key))
        if entry is None:
            return None
        expires, verified = entry
        if self._clock() >= expires:
            self._entries.pop(self._digest(key), None)
            return None
        return verified

    def put(self, key: str, verified: VerifiedKey) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= self._max_entries:
            self._entries.clear()  # simple bound: a burst of distinct keys costs one re-read each
        self._entries[self._digest(key)] = (self._clock() + self.ttl, verified)


def period_of(now: datetime) -> str:
    return now.strftime("%Y-%m")


def record_use(session: Session, key_id: int, now: datetime, calls: int = 1) -> None:
    """Count ``calls`` for the key in ``now``'s month (upsert) and touch ``last_used_at``.

    ``last_used_at`` is written at most once a minute per key so a busy key does not turn every
    call into an update of one hot row.
    """
    values: dict[str, Any] = {"api_key_id": key_id, "period": period_of(now), "calls": calls}
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(ApiKeyUsage).values(**values)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[ApiKeyUsage.api_key_id, ApiKeyUsage.period],
            set_={"calls": ApiKeyUsage.calls + calls},
        )
    )
    session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id)
        .where((ApiKey.last_used_at.is_(None)) | (ApiKey.last_used_at < now - timedelta(minutes=1)))
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )


def get_key(session: Session, name: str) -> ApiKey:
    key = session.scalar(select(ApiKey).where(ApiKey.name == name))
    if key is None:
        raise NotFound(f"no API key named {name!r}")
    return key


def revoke_key(session: Session, name: str, now: datetime) -> ApiKey:
    """Revoke ``name`` (idempotent: revoking twice keeps the first time)."""
    key = get_key(session, name)
    if key.revoked_at is None:
        key.revoked_at = now
        session.flush()
    return key


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.name)))


def usage(session: Session, name: str) -> list[tuple[str, int]]:
    """``(period, calls)`` for ``name``, newest month first."""
    key = get_key(session, name)
    rows = session.execute(
        select(ApiKeyUsage.period, ApiKeyUsage.calls)
        .where(ApiKeyUsage.api_key_id == key.id)
        .order_by(ApiKeyUsage.period.desc())
    )
    return [(str(period), int(calls)) for period, calls in rows]


def describe_key(key: ApiKey) -> dict[str, Any]:
    from shared.models import iso  # noqa: PLC0415

    return {
        "name": key.name,
        "prefix": key.prefix,
        "scopes": list(key.scopes or []),
        "created_at": iso(key.created_at),
        "last_used_at": iso(key.last_used_at),
        "revoked_at": iso(key.revoked_at),
        "active": key.revoked_at is None,
    }
