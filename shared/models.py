"""The data model (SQLAlchemy 2, typed). PostgreSQL in production and tests, SQLite locally.

JSON columns are JSONB on PostgreSQL; timestamps are stored in UTC and always come back aware.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from shared.status import ExecutionStatus, StepStatus, Trigger

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONType = JSON().with_variant(JSONB(), "postgresql")
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z`` (the form every JSON output and log uses), or None."""
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp stored in UTC; naive values coming back (SQLite) get UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; pass an aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _enum(enum_class: type[Any], name: str) -> Enum:
    return Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


def _partial_index(name: str, *columns: str, where: str, unique: bool = False) -> Index:
    """An index over the rows matching ``where``, on PostgreSQL and SQLite alike."""
    return Index(
        name, *columns, unique=unique, postgresql_where=text(where), sqlite_where=text(where)
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
    }


class Workflow(Base):
    """A workflow definition and its scheduling state."""

    __tablename__ = "workflows"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONType)
    schedule: Mapped[str | None] = mapped_column(String(256))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # The scheduler's cursor: the next fire time at or after which the workflow is due (jitter
    # included), and the last fire time already accounted for. Due lookups use ix_workflows_due.
    next_run_at: Mapped[datetime | None]
    last_fire_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        Index(
            "ix_workflows_due",
            "next_run_at",
            postgresql_where=text("enabled AND next_run_at IS NOT NULL"),
            sqlite_where=text("enabled AND next_run_at IS NOT NULL"),
        ),
    )


class Execution(Base):
    """One run of a workflow (scheduled, manual, backfill, API, webhook) or of an ad-hoc step."""

    __tablename__ = "executions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    workflow_id: Mapped[int | None] = mapped_column(ForeignKey("workflows.id", ondelete="SET NULL"))
    workflow_name: Mapped[str | None] = mapped_column(String(63))
    trigger: Mapped[Trigger] = mapped_column(_enum(Trigger, "execution_trigger"))
    scheduled_for: Mapped[datetime | None]
    status: Mapped[ExecutionStatus] = mapped_column(
        _enum(ExecutionStatus, "execution_status"), default=ExecutionStatus.PENDING
    )
    reason: Mapped[str | None] = mapped_column(String(64))
    # The definition the run executes, frozen at creation (a later apply does not change it).
    definition: Mapped[dict[str, Any]] = mapped_column(JSONType)
    input: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    output: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=1)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    worker_id: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    not_before: Mapped[datetime | None]
    deadline_at: Mapped[datetime | None]
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    enqueued_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    steps: Mapped[list[StepRun]] = relationship(
        back_populates="execution", order_by="StepRun.id", passive_deletes=True
    )
    events: Mapped[list[ExecutionEvent]] = relationship(
        back_populates="execution", order_by="ExecutionEvent.id", passive_deletes=True
    )

    # Partial indexes keep the hot insert path (the tick writes thousands of rows a second, most
    # of them never retried, leased or keyed) to the few indexes every row needs.
    __table_args__ = (
        UniqueConstraint("workflow_id", "scheduled_for"),
        _partial_index(
            "uq_executions_idempotency_key",
            "idempotency_key",
            unique=True,
            where="idempotency_key IS NOT NULL",
        ),
        _partial_index(
            "ix_executions_active",
            "workflow_id",
            where="status IN ('pending', 'queued', 'running', 'retrying')",
        ),
        _partial_index("ix_executions_pending", "updated_at", where="status = 'pending'"),
        _partial_index("ix_executions_retrying", "not_before", where="status = 'retrying'"),
        _partial_index("ix_executions_running", "lease_expires_at", where="status = 'running'"),
        Index("ix_executions_created", "created_at", "id"),
        Index("ix_executions_workflow_created", "workflow_name", "created_at", "id"),
    )


class StepRun(Base):
    """One attempt at one step of an execution."""

    __tablename__ = "step_runs"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    execution_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("executions.id", ondelete="CASCADE"), index=True
    )
    step_name: Mapped[str] = mapped_column(String(63))
    step_index: Mapped[int] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer)
    status: Mapped[StepStatus] = mapped_column(_enum(StepStatus, "step_status"))
    input: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    output: Mapped[Any | None] = mapped_column(JSONType)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    usage: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]

    execution: Mapped[Execution] = relationship(back_populates="steps")

    __table_args__ = (
        UniqueConstraint("execution_id", "step_name", "attempt"),
        # Invariant 4 in the database: a step succeeds at most once per execution.
        Index(
            "uq_step_runs_succeeded_once",
            "execution_id",
            "step_name",
            unique=True,
            postgresql_where=text("status = 'succeeded'"),
            sqlite_where=text("status = 'succeeded'"),
        ),
    )


class ExecutionEvent(Base):
    """The timeline of an execution: one row per transition."""

    __tablename__ = "execution_events"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    execution_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("executions.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    message: Mapped[str] = mapped_column(Text, default="")
    step: Mapped[str | None] = mapped_column(String(63))
    attempt: Mapped[int | None] = mapped_column(Integer)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONType)

    execution: Mapped[Execution] = relationship(back_populates="events")


class ApiKey(Base):
    """An API key: only a SHA-256 hash of the secret part is stored."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class ApiKeyUsage(Base):
    """Calls per API key per calendar month (UTC), ``period`` as ``YYYY-MM``."""

    __tablename__ = "api_key_usage"

    api_key_id: Mapped[int] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    calls: Mapped[int] = mapped_column(BigInteger, default=0)


class WebhookDelivery(Base):
    """Delivery ids already accepted per webhook source (replay protection)."""

    __tablename__ = "webhook_deliveries"

    source: Mapped[str] = mapped_column(String(63), primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    execution_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)


# The tables, for Core statements on hot paths (the scheduler's set-based tick, the API's inserts).
workflows_table: Table = Workflow.__table__  # type: ignore[assignment]
executions_table: Table = Execution.__table__  # type: ignore[assignment]
events_table: Table = ExecutionEvent.__table__  # type: ignore[assignment]
