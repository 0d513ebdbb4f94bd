"""encumbrances and unmatched waits

Active freezes, mortgages and pledges per enterprise, and the version of the
rules that derived it (existing rows: 0, so they are derived again at start);
when each record was received and how long it waited for its enterprise; an
index for duplicate source ids across departments.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 08:31:40.541196
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
    for column in ("equity_freezes", "chattel_mortgages", "equity_pledges"):
        op.add_column(
            "enterprises",
            sa.Column(
                column,
                postgresql.JSONB(astext_type=sa.Text()),
                server_default=sa.text("'[]'::jsonb"),
                nullable=False,
            ),
            schema="ledger",
        )
    op.add_column(
        "enterprises",
        sa.Column("fold_version", sa.Integer(), server_default=sa.text("0"), nullable=False),
        schema="ledger",
    )
    op.add_column(
        "records",
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        schema="ledger",
    )
    op.add_column(
        "records",
        sa.Column("unmatched_since", sa.DateTime(timezone=True), nullable=True),
        schema="ledger",
    )
    # Existing rows: received with their first revision; those still waiting wait since then.
    op.execute(
        """
        UPDATE ledger.records AS r
        SET received_at = first.received_at
        FROM (
            SELECT record_id, min(received_at) AS received_at
            FROM ledger.record_revisions GROUP BY record_id
        ) AS first
        WHERE first.record_id = r.record_id
        """
    )
    op.execute("UPDATE ledger.records SET unmatched_since = received_at WHERE NOT matched")
    op.create_index(
        "ix_records_source_id_department",
        "records",
        ["source_id", "department"],
        unique=False,
        schema="ledger",
    )
    op.create_index(
        "ix_records_waited",
        "records",
        ["unmatched_since"],
        unique=False,
        schema="ledger",
        postgresql_where=sa.text("unmatched_since IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_records_waited",
        table_name="records",
        schema="ledger",
        postgresql_where=sa.text("unmatched_since IS NOT NULL"),
    )
    op.drop_index("ix_records_source_id_department", table_name="records", schema="ledger")
    op.drop_column("records", "unmatched_since", schema="ledger")
    op.drop_column("records", "received_at", schema="ledger")
    op.drop_column("enterprises", "fold_version", schema="ledger")
    for column in ("equity_pledges", "chattel_mortgages", "equity_freezes"):
        op.drop_column("enterprises", column, schema="ledger")
