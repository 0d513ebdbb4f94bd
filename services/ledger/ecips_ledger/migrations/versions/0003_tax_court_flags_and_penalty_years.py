"""tax and court flags and penalties by year

The lists the joint punishment catalogue acts on besides the two the
registration authority keeps (重大税收违法失信主体, 失信被执行人) and the
active administrative penalties by year of decision. Existing enterprises
are derived again at start (the fold version rises).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 11:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FLAGS = ("major_tax_violation", "dishonest_judgment_debtor")


def upgrade() -> None:
    for flag in FLAGS:
        op.add_column(
            "enterprises",
            sa.Column(flag, sa.Boolean(), server_default=sa.text("false"), nullable=False),
            schema="ledger",
        )
        op.add_column("enterprises", sa.Column(f"{flag}_since", sa.Date()), schema="ledger")
        op.add_column("enterprises", sa.Column(f"{flag}_reason", sa.Text()), schema="ledger")
    op.add_column(
        "enterprises",
        sa.Column(
            "penalty_counts_by_year",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        schema="ledger",
    )


def downgrade() -> None:
    op.drop_column("enterprises", "penalty_counts_by_year", schema="ledger")
    for flag in reversed(FLAGS):
        for column in (f"{flag}_reason", f"{flag}_since", flag):
            op.drop_column("enterprises", column, schema="ledger")
