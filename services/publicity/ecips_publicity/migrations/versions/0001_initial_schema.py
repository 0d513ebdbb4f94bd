"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26 08:15:24.232327
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The name search uses trigram indexes. The extension may exist already (another
# service or the operator created it; a service role may lack the right to), and
# two services migrating at once may race to create it: both are fine.
ENABLE_PG_TRGM = """
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$
"""


def upgrade() -> None:
    op.execute(ENABLE_PG_TRGM)
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
        schema="publicity",
    )
    op.create_table(
        "enterprises",
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("registered", sa.Boolean(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("former_names", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("registration_number", sa.String(length=15), nullable=True),
        sa.Column("legal_representative", sa.String(length=100), nullable=True),
        sa.Column("enterprise_type", sa.String(length=100), nullable=True),
        sa.Column("registered_capital", sa.String(length=100), nullable=True),
        sa.Column("established_on", sa.Date(), nullable=True),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("business_scope", sa.Text(), nullable=True),
        sa.Column("registration_authority", sa.String(length=200), nullable=True),
        sa.Column("division_code", sa.String(length=6), nullable=False),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("flags", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("uscc"),
        schema="publicity",
    )
    op.create_index(
        "ix_enterprises_name_trgm",
        "enterprises",
        ["name"],
        unique=False,
        schema="publicity",
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.create_index(
        "ix_enterprises_registration_number",
        "enterprises",
        ["registration_number"],
        unique=False,
        schema="publicity",
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
        schema="publicity",
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
        schema="publicity",
    )
    op.create_index(
        "ix_inbox_source_sequence",
        "inbox",
        ["source", "sequence"],
        unique=False,
        schema="publicity",
    )
    op.create_table(
        "joint_measures",
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("rule_id", sa.String(length=100), nullable=False),
        sa.Column("rule_version", sa.Integer(), nullable=False),
        sa.Column("rule_title", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("measures", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=True),
        sa.Column("since", sa.Date(), nullable=True),
        sa.Column("until", sa.Date(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("uscc", "rule_id"),
        schema="publicity",
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
        schema="publicity",
    )
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["seq"],
        unique=False,
        schema="publicity",
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.create_table(
        "public_items",
        sa.Column("record_id", sa.UUID(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("category", sa.String(length=50), nullable=False),
        sa.Column("department", sa.String(length=40), nullable=False),
        sa.Column("source_id", sa.String(length=128), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("disclosure", sa.String(length=20), nullable=False),
        sa.Column("publish_until", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("record_id"),
        schema="publicity",
    )
    op.create_index(
        "ix_public_items_uscc_category",
        "public_items",
        ["uscc", "category"],
        unique=False,
        schema="publicity",
    )
    op.create_table(
        "former_names",
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("until", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(["uscc"], ["publicity.enterprises.uscc"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("uscc", "position"),
        schema="publicity",
    )
    op.create_index(
        "ix_former_names_name_trgm",
        "former_names",
        ["name"],
        unique=False,
        schema="publicity",
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )


def downgrade() -> None:
    op.drop_index(
        "ix_former_names_name_trgm",
        table_name="former_names",
        schema="publicity",
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.drop_table("former_names", schema="publicity")
    op.drop_index("ix_public_items_uscc_category", table_name="public_items", schema="publicity")
    op.drop_table("public_items", schema="publicity")
    op.drop_index(
        "ix_outbox_unpublished",
        table_name="outbox",
        schema="publicity",
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.drop_table("outbox", schema="publicity")
    op.drop_table("joint_measures", schema="publicity")
    op.drop_index("ix_inbox_source_sequence", table_name="inbox", schema="publicity")
    op.drop_table("inbox", schema="publicity")
    op.drop_table("feed_cursors", schema="publicity")
    op.drop_index(
        "ix_enterprises_registration_number", table_name="enterprises", schema="publicity"
    )
    op.drop_index(
        "ix_enterprises_name_trgm",
        table_name="enterprises",
        schema="publicity",
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.drop_table("enterprises", schema="publicity")
    op.drop_table("dead_letters", schema="publicity")
