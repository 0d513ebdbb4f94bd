"""Initial schema: enterprise snapshots, punishments, active measures, outbox and inbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-26 08:16:16.254166
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
        schema="rules",
    )
    op.create_table(
        "enterprises",
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "matched_rules",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "evaluated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("uscc"),
        schema="rules",
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
        schema="rules",
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
        schema="rules",
    )
    op.create_index(
        "ix_inbox_source_sequence", "inbox", ["source", "sequence"], unique=False, schema="rules"
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
        schema="rules",
    )
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["seq"],
        unique=False,
        schema="rules",
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.create_table(
        "punishments",
        sa.Column("punishment_id", sa.UUID(), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("rule_id", sa.String(length=80), nullable=False),
        sa.Column("rule_version", sa.Integer(), nullable=False),
        sa.Column("rule_title", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("measures", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("since", sa.Date(), nullable=False),
        sa.Column("until", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("catalogue_version", sa.String(length=100), nullable=False),
        sa.Column("triggered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lifted_on", sa.Date(), nullable=True),
        sa.Column("lift_reason", sa.String(length=60), nullable=True),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("punishment_id"),
        schema="rules",
    )
    op.create_index(
        op.f("ix_rules_punishments_uscc"), "punishments", ["uscc"], unique=False, schema="rules"
    )
    op.create_index(
        "uq_punishments_active",
        "punishments",
        ["uscc", "rule_id"],
        unique=True,
        schema="rules",
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_table(
        "active_measures",
        sa.Column("punishment_id", sa.UUID(), nullable=False),
        sa.Column("measure", sa.String(length=80), nullable=False),
        sa.Column("scenario", sa.String(length=50), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("rule_id", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("department", sa.String(length=40), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("since", sa.Date(), nullable=False),
        sa.Column("until", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["punishment_id"], ["rules.punishments.punishment_id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("punishment_id", "measure", "scenario"),
        schema="rules",
    )
    op.create_index(
        "ix_active_measures_uscc_scenario",
        "active_measures",
        ["uscc", "scenario"],
        unique=False,
        schema="rules",
    )


def downgrade() -> None:
    op.drop_index("ix_active_measures_uscc_scenario", table_name="active_measures", schema="rules")
    op.drop_table("active_measures", schema="rules")
    op.drop_index(
        "uq_punishments_active",
        table_name="punishments",
        schema="rules",
        postgresql_where=sa.text("status = 'active'"),
    )
    op.drop_index(op.f("ix_rules_punishments_uscc"), table_name="punishments", schema="rules")
    op.drop_table("punishments", schema="rules")
    op.drop_index(
        "ix_outbox_unpublished",
        table_name="outbox",
        schema="rules",
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.drop_table("outbox", schema="rules")
    op.drop_index("ix_inbox_source_sequence", table_name="inbox", schema="rules")
    op.drop_table("inbox", schema="rules")
    op.drop_table("feed_cursors", schema="rules")
    op.drop_table("enterprises", schema="rules")
    op.drop_table("dead_letters", schema="rules")
