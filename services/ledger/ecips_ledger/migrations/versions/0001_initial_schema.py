"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26 08:15:42.567238
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
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("department", sa.String(length=40), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("query", sa.String(length=1000), nullable=True),
        sa.Column("uscc", sa.String(length=64), nullable=True),
        sa.Column("token_id", sa.String(length=64), nullable=True),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id"),
        schema="ledger",
    )
    op.create_index(
        "ix_audit_log_department_id",
        "audit_log",
        ["department", "id"],
        unique=False,
        schema="ledger",
    )
    op.create_index("ix_audit_log_uscc", "audit_log", ["uscc"], unique=False, schema="ledger")
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
        schema="ledger",
    )
    op.create_table(
        "early_revocations",
        sa.Column("record_id", sa.UUID(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("record_id"),
        schema="ledger",
    )
    op.create_table(
        "enterprises",
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("registration_number", sa.String(length=15), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "former_names",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("legal_representative", sa.String(length=100), nullable=True),
        sa.Column("enterprise_type", sa.String(length=100), nullable=True),
        sa.Column("registered_capital", sa.String(length=100), nullable=True),
        sa.Column("established_on", sa.Date(), nullable=True),
        sa.Column("address", sa.String(length=500), nullable=True),
        sa.Column("business_scope", sa.Text(), nullable=True),
        sa.Column("registration_authority", sa.String(length=200), nullable=True),
        sa.Column("division_code", sa.String(length=6), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("status_since", sa.Date(), nullable=True),
        sa.Column("registered", sa.Boolean(), nullable=False),
        sa.Column(
            "abnormal_operation", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
        sa.Column("abnormal_operation_since", sa.Date(), nullable=True),
        sa.Column("abnormal_operation_reason", sa.Text(), nullable=True),
        sa.Column("serious_illegal", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("serious_illegal_since", sa.Date(), nullable=True),
        sa.Column("serious_illegal_reason", sa.Text(), nullable=True),
        sa.Column(
            "record_counts",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("uscc"),
        sa.UniqueConstraint("registration_number"),
        schema="ledger",
    )
    op.create_index(
        op.f("ix_ledger_enterprises_division_code"),
        "enterprises",
        ["division_code"],
        unique=False,
        schema="ledger",
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
        schema="ledger",
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
        schema="ledger",
    )
    op.create_index(
        "ix_inbox_source_sequence", "inbox", ["source", "sequence"], unique=False, schema="ledger"
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
        schema="ledger",
    )
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["seq"],
        unique=False,
        schema="ledger",
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.create_table(
        "record_revisions",
        sa.Column("record_id", sa.UUID(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=True),
        sa.Column("registration_number", sa.String(length=15), nullable=True),
        sa.Column("enterprise_name", sa.String(length=200), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("disclosure", sa.String(length=20), nullable=False),
        sa.Column("publicity_period_days", sa.Integer(), nullable=True),
        sa.Column("catalogue_version", sa.String(length=100), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("record_id", "revision"),
        schema="ledger",
    )
    op.create_table(
        "records",
        sa.Column("record_id", sa.UUID(), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=True),
        sa.Column("registration_number", sa.String(length=15), nullable=True),
        sa.Column("matched", sa.Boolean(), nullable=False),
        sa.Column("category", sa.String(length=50), nullable=False),
        sa.Column("department", sa.String(length=40), nullable=False),
        sa.Column("source_id", sa.String(length=128), nullable=False),
        sa.Column("enterprise_name", sa.String(length=200), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("disclosure", sa.String(length=20), nullable=False),
        sa.Column("publicity_period_days", sa.Integer(), nullable=True),
        sa.Column("catalogue_version", sa.String(length=100), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revocation_reason", sa.Text(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("record_id"),
        schema="ledger",
    )
    op.create_index(
        "ix_records_unmatched_number",
        "records",
        ["registration_number"],
        unique=False,
        schema="ledger",
        postgresql_where=sa.text("NOT matched"),
    )
    op.create_index(
        "ix_records_unmatched_uscc",
        "records",
        ["uscc"],
        unique=False,
        schema="ledger",
        postgresql_where=sa.text("NOT matched"),
    )
    op.create_index(
        "ix_records_uscc_category",
        "records",
        ["uscc", "category", "occurred_on"],
        unique=False,
        schema="ledger",
    )


def downgrade() -> None:
    op.drop_index("ix_records_uscc_category", table_name="records", schema="ledger")
    op.drop_index(
        "ix_records_unmatched_uscc",
        table_name="records",
        schema="ledger",
        postgresql_where=sa.text("NOT matched"),
    )
    op.drop_index(
        "ix_records_unmatched_number",
        table_name="records",
        schema="ledger",
        postgresql_where=sa.text("NOT matched"),
    )
    op.drop_table("records", schema="ledger")
    op.drop_table("record_revisions", schema="ledger")
    op.drop_index(
        "ix_outbox_unpublished",
        table_name="outbox",
        schema="ledger",
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.drop_table("outbox", schema="ledger")
    op.drop_index("ix_inbox_source_sequence", table_name="inbox", schema="ledger")
    op.drop_table("inbox", schema="ledger")
    op.drop_table("feed_cursors", schema="ledger")
    op.drop_index(
        op.f("ix_ledger_enterprises_division_code"), table_name="enterprises", schema="ledger"
    )
    op.drop_table("enterprises", schema="ledger")
    op.drop_table("early_revocations", schema="ledger")
    op.drop_table("dead_letters", schema="ledger")
    op.drop_index("ix_audit_log_uscc", table_name="audit_log", schema="ledger")
    op.drop_index("ix_audit_log_department_id", table_name="audit_log", schema="ledger")
    op.drop_table("audit_log", schema="ledger")
