"""What every CLI command shares: the settings (built once), the database, output helpers."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import click
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from shared.database import create_engine_from_settings, session_factory, transaction
from shared.errors import ConfigurationError, ConveyorError, InvalidInput, NotFound
from shared.executions import dispatch
from shared.queue import ExecutionPublisher, publisher_from_settings
from shared.settings import Settings, resolve_secrets

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_CONFIG = 3


@dataclass
class CliContext:
    raw_settings: Settings
    """The settings as read from the environment, secret references unresolved."""
    _settings: Settings | None = field(default=None, init=False)
    _engine: Engine | None = field(default=None, init=False)
    _publisher: ExecutionPublisher | None = field(default=None, init=False)

    @property
    def settings(self) -> Settings:
        """The settings with secrets resolved, on first use (so `worker --check` stays local)."""
        if self._settings is None:
            self._settings = resolve_secrets(self.raw_settings)
        return self._settings

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = create_engine_from_settings(self.settings)
        return self._engine

    @property
    def sessions(self) -> sessionmaker[Session]:
        return session_factory(self.engine)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with transaction(self.sessions) as session:
            yield session

    @property
    def publisher(self) -> ExecutionPublisher | None:
        """The SQS publisher, or None when no queue is configured (runs then wait as pending)."""
        if self.settings.queue_url is None:
            return None
        if self._publisher is None:
            self._publisher = publisher_from_settings(self.settings)
        return self._publisher

    def dispatch(self, execution_ids: list[uuid.UUID]) -> str:
        """Send doorbells for committed executions; a short note on what happened."""
        if not execution_ids:
            return ""
        publisher = self.publisher
        if publisher is None:
            return "no queue configured (CONVEYOR_QUEUE_URL): left pending for the scheduler"
        report = dispatch(self.sessions, publisher, execution_ids, now_utc())
        if report.failed:
            return f"{len(report.failed)} not sent yet: the scheduler's sweeper will send them"
        return f"queued {len(report.sent)}"

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


pass_state = click.make_pass_decorator(CliContext)


def now_utc() -> datetime:
    return datetime.now(UTC)


def parse_instant(value: str | None, *, option: str) -> datetime | None:
    """ISO 8601 from a flag; a naive value is read as UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(f"{option}: not an ISO 8601 date-time: {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def require_instant(value: str, *, option: str) -> datetime:
    parsed = parse_instant(value, option=option)
    if parsed is None:
        raise InvalidInput(f"{option}: required")
    return parsed


def parse_json_object(value: str | None, *, option: str) -> dict[str, Any]:
    """A JSON object from a flag (``{}`` when absent)."""
    if value is None:
        return {}
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{option}: not valid JSON: {exc.msg} (column {exc.colno})") from exc
    if not isinstance(parsed, dict):
        raise InvalidInput(f"{option}: expected a JSON object, got {type(parsed).__name__}")
    return parsed


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def fail(error: ConveyorError) -> None:
    """Report ``error`` on stderr and exit with its code."""
    click.echo(f"error: {error}", err=True)
    if isinstance(error, InvalidInput | NotFound):
        sys.exit(EXIT_INVALID)
    if isinstance(error, ConfigurationError):
        sys.exit(EXIT_CONFIG)
    sys.exit(EXIT_FAILED)
