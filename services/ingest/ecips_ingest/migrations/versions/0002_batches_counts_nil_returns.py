"""Batches (file chunks, row issues), per-month submission counts, nil returns;
revisions remember their batch; an index for first submissions by month.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 08:43:50.349644
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
        "batches",
        sa.Column("batch_id", sa.UUID(), nullable=False),
        sa.Column("department", sa.String(length=40), nullable=False),
        sa.Column("category", sa.String(length=50), nullable=True),
        sa.Column("file_format", sa.String(length=10), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("encoding", sa.String(length=20), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("header", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("total", sa.Integer(), nullable=True),
        sa.Column("processed", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("warnings", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failure_code", sa.String(length=50), nullable=True),
        sa.Column("failure_detail", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("batch_id"),
        schema="ingest",
    )
    op.create_index(
        "ix_batches_department_created",
        "batches",
        ["department", "created_at"],
        unique=False,
        schema="ingest",
    )
    op.create_index(
        "ix_batches_pending",
        "batches",
        ["created_at"],
        unique=False,
        schema="ingest",
        postgresql_where=sa.text("status IN ('queued', 'processing')"),
    )
    op.create_table(
        "nil_returns",
        sa.Column("department", sa.String(length=40), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("category", sa.String(length=50), nullable=False),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("department", "period", "category"),
        schema="ingest",
    )
    op.create_table(
        "submission_counts",
        sa.Column("department", sa.String(length=40), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("category", sa.String(length=50), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("department", "period", "category", "outcome", "code"),
        schema="ingest",
    )
    op.create_table(
        "batch_file_chunks",
        sa.Column("batch_id", sa.UUID(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["ingest.batches.batch_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("batch_id", "seq"),
        schema="ingest",
    )
    op.create_table(
        "batch_row_issues",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("batch_id", sa.UUID(), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("source_id", sa.String(length=200), nullable=True),
        sa.Column("issues", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("cells", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["ingest.batches.batch_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        schema="ingest",
    )
    op.create_index(
        "ix_batch_row_issues_batch_row",
        "batch_row_issues",
        ["batch_id", "severity", "row_number"],
        unique=False,
        schema="ingest",
    )
    op.add_column(
        "record_revisions", sa.Column("batch_id", sa.UUID(), nullable=True), schema="ingest"
    )
    op.create_index(
        "ix_record_revisions_first_occurred_on",
        "record_revisions",
        ["occurred_on"],
        unique=False,
        schema="ingest",
        postgresql_where=sa.text("revision = 1"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_record_revisions_first_occurred_on",
        table_name="record_revisions",
        schema="ingest",
        postgresql_where=sa.text("revision = 1"),
    )
    op.drop_column("record_revisions", "batch_id", schema="ingest")
    op.drop_index("ix_batch_row_issues_batch_row", table_name="batch_row_issues", schema="ingest")
    op.drop_table("batch_row_issues", schema="ingest")
    op.drop_table("batch_file_chunks", schema="ingest")
    op.drop_table("submission_counts", schema="ingest")
    op.drop_table("nil_returns", schema="ingest")
    op.drop_index(
        "ix_batches_pending",
        table_name="batches",
        schema="ingest",
        postgresql_where=sa.text("status IN ('queued', 'processing')"),
    )
    op.drop_index("ix_batches_department_created", table_name="batches", schema="ingest")
    op.drop_table("batches", schema="ingest")
