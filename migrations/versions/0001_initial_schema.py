"""initial schema

Revision ID: 0001
Revises:

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Partial indexes: the tick's insert path only touches the indexes every row needs.
EXECUTION_PARTIAL_INDEXES = [
    ("uq_executions_idempotency_key", "idempotency_key", "idempotency_key IS NOT NULL", True),
    (
        "ix_executions_active",
        "workflow_id",
        "status IN ('pending', 'queued', 'running', 'retrying')",
        False,
    ),
    ("ix_executions_pending", "updated_at", "status = 'pending'", False),
    ("ix_executions_retrying", "not_before", "status = 'retrying'", False),
    ("ix_executions_running", "lease_expires_at", "status = 'running'", False),
]


def _partial_index(name: str, table: str, column: str, where: str, *, unique: bool) -> None:
    op.create_index(
        name,
        table,
        [column],
        unique=unique,
        postgresql_where=sa.text(where),
        sqlite_where=sa.text(where),
    )


# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "api_keys",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", JSON_TYPE, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("name", name=op.f("uq_api_keys_name")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("source", sa.String(length=63), nullable=False),
        sa.Column("delivery_id", sa.String(length=255), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("execution_ids", JSON_TYPE, nullable=False),
        sa.PrimaryKeyConstraint("source", "delivery_id", name=op.f("pk_webhook_deliveries")),
    )
    op.create_table(
        "workflows",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("definition", JSON_TYPE, nullable=False),
        sa.Column("schedule", sa.String(length=256), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_fire_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflows")),
        sa.UniqueConstraint("name", name=op.f("uq_workflows_name")),
    )
    with op.batch_alter_table("workflows", schema=None) as batch_op:
        batch_op.create_index(
            "ix_workflows_due",
            ["next_run_at"],
            unique=False,
            postgresql_where=sa.text("enabled AND next_run_at IS NOT NULL"),
            sqlite_where=sa.text("enabled AND next_run_at IS NOT NULL"),
        )

    op.create_table(
        "api_key_usage",
        sa.Column("api_key_id", BIG_ID, nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("calls", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_keys.id"],
            name=op.f("fk_api_key_usage_api_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("api_key_id", "period", name=op.f("pk_api_key_usage")),
    )
    op.create_table(
        "executions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workflow_id", BIG_ID, nullable=True),
        sa.Column("workflow_name", sa.String(length=63), nullable=True),
        sa.Column(
            "trigger",
            sa.Enum(
                "schedule",
                "manual",
                "backfill",
                "api",
                "webhook",
                "event",
                name="execution_trigger",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "queued",
                "running",
                "retrying",
                "succeeded",
                "failed",
                "cancelled",
                "timed_out",
                "skipped",
                name="execution_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("definition", JSON_TYPE, nullable=False),
        sa.Column("input", JSON_TYPE, nullable=False),
        sa.Column("output", JSON_TYPE, nullable=True),
        sa.Column("error", JSON_TYPE, nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=True),
        sa.Column("worker_id", sa.String(length=255), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["workflows.id"],
            name=op.f("fk_executions_workflow_id_workflows"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_executions")),
        sa.UniqueConstraint(
            "workflow_id", "scheduled_for", name=op.f("uq_executions_workflow_id_scheduled_for")
        ),
    )
    op.create_index("ix_executions_created", "executions", ["created_at", "id"])
    op.create_index(
        "ix_executions_workflow_created", "executions", ["workflow_name", "created_at", "id"]
    )
    for name, column, where, unique in EXECUTION_PARTIAL_INDEXES:
        _partial_index(name, "executions", column, where, unique=unique)

    op.create_table(
        "execution_events",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("execution_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("step", sa.String(length=63), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=True),
        sa.Column("data", JSON_TYPE, nullable=True),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["executions.id"],
            name=op.f("fk_execution_events_execution_id_executions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_execution_events")),
    )
    with op.batch_alter_table("execution_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_execution_events_execution_id"), ["execution_id"], unique=False
        )

    op.create_table(
        "step_runs",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("execution_id", sa.Uuid(), nullable=False),
        sa.Column("step_name", sa.String(length=63), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "running",
                "succeeded",
                "failed",
                "timed_out",
                "cancelled",
                name="step_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("input", JSON_TYPE, nullable=True),
        sa.Column("output", JSON_TYPE, nullable=True),
        sa.Column("error", JSON_TYPE, nullable=True),
        sa.Column("usage", JSON_TYPE, nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["executions.id"],
            name=op.f("fk_step_runs_execution_id_executions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_step_runs")),
        sa.UniqueConstraint(
            "execution_id",
            "step_name",
            "attempt",
            name=op.f("uq_step_runs_execution_id_step_name_attempt"),
        ),
    )
    with op.batch_alter_table("step_runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_step_runs_execution_id"), ["execution_id"], unique=False
        )
        batch_op.create_index(
            "uq_step_runs_succeeded_once",
            ["execution_id", "step_name"],
            unique=True,
            postgresql_where=sa.text("status = 'succeeded'"),
            sqlite_where=sa.text("status = 'succeeded'"),
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("step_runs", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_step_runs_succeeded_once",
            postgresql_where=sa.text("status = 'succeeded'"),
            sqlite_where=sa.text("status = 'succeeded'"),
        )
        batch_op.drop_index(batch_op.f("ix_step_runs_execution_id"))

    op.drop_table("step_runs")
    with op.batch_alter_table("execution_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_execution_events_execution_id"))

    op.drop_table("execution_events")
    for name, *_ in EXECUTION_PARTIAL_INDEXES:
        op.drop_index(name, table_name="executions")
    op.drop_index("ix_executions_workflow_created", table_name="executions")
    op.drop_index("ix_executions_created", table_name="executions")

    op.drop_table("executions")
    op.drop_table("api_key_usage")
    with op.batch_alter_table("workflows", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_workflows_due",
            postgresql_where=sa.text("enabled AND next_run_at IS NOT NULL"),
            sqlite_where=sa.text("enabled AND next_run_at IS NOT NULL"),
        )

    op.drop_table("workflows")
    op.drop_table("webhook_deliveries")
    op.drop_table("api_keys")
