"""Initial schema: tasks, plus the outbox, inbox, dead letters and feed cursors.

Revision ID: 0001
Revises:
Create Date: 2026-11-26 08:14:03.171691
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("event", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("event_id"),
        schema="coordination",
    )
    op.create_table(
        "feed_cursors",
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("source"),
        schema="coordination",
    )
    op.create_table(
        "inbox",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("event_id"),
        schema="coordination",
    )
    op.create_index(
        "ix_inbox_source_sequence",
        "inbox",
        ["source", "sequence"],
        unique=False,
        schema="coordination",
    )
    op.create_table(
        "outbox",
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column(
            "event_id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False
        ),
        sa.Column("topic", sa.String(length=100), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("partition_key", sa.String(length=64), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("event_id"),
        schema="coordination",
    )
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["seq"],
        unique=False,
        schema="coordination",
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.create_table(
        "tasks",
        sa.Column("task_id", sa.UUID(), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("idempotency_key", sa.String(length=400), nullable=False),
        sa.Column("source_event_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=30), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("department", sa.String(length=40), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("enterprise_name", sa.String(length=200), nullable=False),
        sa.Column("rule_id", sa.String(length=100), nullable=True),
        sa.Column("rule_version", sa.Integer(), nullable=True),
        sa.Column("rule_title", sa.String(length=300), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=True),
        sa.Column("measure", sa.String(length=100), nullable=False),
        sa.Column("measure_title", sa.String(length=300), nullable=False),
        sa.Column("scenarios", postgresql.ARRAY(sa.String(length=60)), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=True),
        sa.Column("effective_until", sa.Date(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column(
            "opened_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("claim_due", sa.Date(), nullable=False),
        sa.Column("feedback_due", sa.Date(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("feedback", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.CheckConstraint("action IN ('apply', 'release', 'notify')", name="ck_tasks_action"),
        sa.CheckConstraint("status IN ('open', 'claimed', 'done')", name="ck_tasks_status"),
        sa.CheckConstraint(
            "type IN ('double_notification', 'joint_punishment')", name="ck_tasks_type"
        ),
        sa.PrimaryKeyConstraint("task_id"),
        sa.UniqueConstraint("idempotency_key"),
        sa.UniqueConstraint("seq"),
        schema="coordination",
    )
    op.create_index(
        "ix_tasks_department_seq",
        "tasks",
        ["department", "seq"],
        unique=False,
        schema="coordination",
    )
    op.create_index(
        "ix_tasks_department_status_seq",
        "tasks",
        ["department", "status", "seq"],
        unique=False,
        schema="coordination",
    )
    op.create_index("ix_tasks_uscc", "tasks", ["uscc"], unique=False, schema="coordination")


def downgrade() -> None:
    op.drop_index("ix_tasks_uscc", table_name="tasks", schema="coordination")
    op.drop_index("ix_tasks_department_status_seq", table_name="tasks", schema="coordination")
    op.drop_index("ix_tasks_department_seq", table_name="tasks", schema="coordination")
    op.drop_table("tasks", schema="coordination")
    op.drop_index(
        "ix_outbox_unpublished",
        table_name="outbox",
        schema="coordination",
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.drop_table("outbox", schema="coordination")
    op.drop_index("ix_inbox_source_sequence", table_name="inbox", schema="coordination")
    op.drop_table("inbox", schema="coordination")
    op.drop_table("feed_cursors", schema="coordination")
    op.drop_table("dead_letters", schema="coordination")
