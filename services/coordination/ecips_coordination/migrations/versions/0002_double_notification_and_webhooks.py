"""Double notification and webhooks: registrations (the business scope each
enterprise registered and the approval items it matched), webhook
subscriptions and deliveries, and the tasks' double-notification columns.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 08:36:30.395236
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "registrations",
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("enterprise_name", sa.String(length=200), nullable=False),
        sa.Column("registered", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=True),
        sa.Column("business_scope", sa.Text(), nullable=True),
        sa.Column("registration_authority", sa.String(length=200), nullable=True),
        sa.Column("established_on", sa.Date(), nullable=True),
        sa.Column("ledger_version", sa.BigInteger(), nullable=False),
        sa.Column("matched", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("catalogue_version", sa.String(length=40), nullable=True),
        sa.Column("filing", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("notified", sa.Boolean(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("uscc"),
        schema="coordination",
    )
    op.create_table(
        "subscriptions",
        sa.Column("subscription_id", sa.UUID(), nullable=False),
        sa.Column("department", sa.String(length=40), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("types", postgresql.ARRAY(sa.String(length=30)), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("subscription_id"),
        schema="coordination",
    )
    op.create_index(
        "ix_subscriptions_department",
        "subscriptions",
        ["department"],
        unique=False,
        schema="coordination",
    )
    op.create_table(
        "deliveries",
        sa.Column("delivery_id", sa.UUID(), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("subscription_id", sa.UUID(), nullable=False),
        sa.Column("department", sa.String(length=40), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("task_id", sa.UUID(), nullable=False),
        sa.Column("event_type", sa.String(length=60), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dead_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'dead', 'cancelled')", name="ck_deliveries_status"
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"], ["coordination.subscriptions.subscription_id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("delivery_id"),
        sa.UniqueConstraint("seq"),
        schema="coordination",
    )
    op.create_index(
        "ix_deliveries_department_status_seq",
        "deliveries",
        ["department", "status", "seq"],
        unique=False,
        schema="coordination",
    )
    op.create_index(
        "ix_deliveries_due",
        "deliveries",
        ["next_attempt_at"],
        unique=False,
        schema="coordination",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_deliveries_stream",
        "deliveries",
        ["subscription_id", "uscc", "seq"],
        unique=False,
        schema="coordination",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.add_column(
        "tasks", sa.Column("trigger", sa.String(length=20), nullable=True), schema="coordination"
    )
    op.add_column(
        "tasks", sa.Column("scope_excerpt", sa.Text(), nullable=True), schema="coordination"
    )
    op.add_column(
        "tasks",
        sa.Column("catalogue_version", sa.String(length=40), nullable=True),
        schema="coordination",
    )
    op.create_index(
        "ix_tasks_opened_at", "tasks", ["opened_at"], unique=False, schema="coordination"
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_opened_at", table_name="tasks", schema="coordination")
    op.drop_column("tasks", "catalogue_version", schema="coordination")
    op.drop_column("tasks", "scope_excerpt", schema="coordination")
    op.drop_column("tasks", "trigger", schema="coordination")
    op.drop_index(
        "ix_deliveries_stream",
        table_name="deliveries",
        schema="coordination",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_index(
        "ix_deliveries_due",
        table_name="deliveries",
        schema="coordination",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_index(
        "ix_deliveries_department_status_seq", table_name="deliveries", schema="coordination"
    )
    op.drop_table("deliveries", schema="coordination")
    op.drop_index("ix_subscriptions_department", table_name="subscriptions", schema="coordination")
    op.drop_table("subscriptions", schema="coordination")
    op.drop_table("registrations", schema="coordination")
