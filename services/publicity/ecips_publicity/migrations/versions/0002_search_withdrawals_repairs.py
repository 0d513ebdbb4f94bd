"""search at scale, withdrawals and credit repairs

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 09:00:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "publicity"

# The distinct-enough character pairs of a text, lower-cased: a GIN index over
# them finds two-character fragments, which pg_trgm cannot (a two-character
# LIKE pattern has no trigram). PL/pgSQL: three times faster than the
# generate_series form when a million rows are loaded.
CREATE_NAME_BIGRAMS = """
CREATE FUNCTION publicity.name_bigrams(value text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    lowered text := lower(value);
    pairs text[] := '{}';
BEGIN
    FOR i IN 1 .. char_length(lowered) - 1 LOOP
        pairs := pairs || substr(lowered, i, 2);
    END LOOP;
    RETURN pairs;
END
$$
"""

LOWER_C = 'lower({column}) COLLATE "C"'


def _lower_c(column: str) -> sa.TextClause:
    return sa.text(f"({LOWER_C.format(column=column)})")


def upgrade() -> None:
    op.execute(CREATE_NAME_BIGRAMS)

    op.add_column("enterprises", sa.Column("former_names_text", sa.Text()), schema=SCHEMA)
    op.add_column(
        "enterprises",
        sa.Column("status_code", sa.String(20), server_default="active", nullable=False),
        schema=SCHEMA,
    )
    for flag in ("abnormal_operation", "serious_illegal"):
        op.add_column(
            "enterprises",
            sa.Column(flag, sa.Boolean(), server_default=sa.text("false"), nullable=False),
            schema=SCHEMA,
        )
    op.execute(
        """
        UPDATE publicity.enterprises SET
            former_names_text = (
                SELECT string_agg(n ->> 'name', E'\\n')
                FROM jsonb_array_elements(former_names) AS n
            ),
            status_code = CASE status
                WHEN '吊销' THEN 'revoked' WHEN '注销' THEN 'deregistered'
                WHEN '迁出' THEN 'moved_out' ELSE 'active' END,
            abnormal_operation = coalesce((flags ->> 'abnormal_operation')::boolean, false),
            serious_illegal = coalesce((flags ->> 'serious_illegal')::boolean, false)
        """
    )
    op.add_column(
        "enterprises",
        sa.Column(
            "name_bigrams",
            postgresql.ARRAY(sa.Text()),
            sa.Computed("publicity.name_bigrams(name)", persisted=True),
        ),
        schema=SCHEMA,
    )
    op.add_column(
        "enterprises",
        sa.Column(
            "former_names_bigrams",
            postgresql.ARRAY(sa.Text()),
            sa.Computed("publicity.name_bigrams(former_names_text)", persisted=True),
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_enterprises_name_bigrams",
        "enterprises",
        ["name_bigrams"],
        postgresql_using="gin",
        schema=SCHEMA,
    )
    op.create_index(
        "ix_enterprises_name_lower", "enterprises", [_lower_c("name"), "uscc"], schema=SCHEMA
    )
    op.create_index(
        "ix_enterprises_former_names_trgm",
        "enterprises",
        ["former_names_text"],
        postgresql_using="gin",
        postgresql_ops={"former_names_text": "gin_trgm_ops"},
        schema=SCHEMA,
    )
    op.create_index(
        "ix_enterprises_former_names_bigrams",
        "enterprises",
        ["former_names_bigrams"],
        postgresql_using="gin",
        schema=SCHEMA,
    )
    op.create_index(
        "ix_enterprises_legal_representative",
        "enterprises",
        ["legal_representative"],
        schema=SCHEMA,
    )
    op.create_index("ix_enterprises_shuffle", "enterprises", [sa.text("md5(uscc)")], schema=SCHEMA)
    for flag in ("abnormal_operation", "serious_illegal"):
        op.create_index(
            f"ix_enterprises_{flag}_name",
            "enterprises",
            [_lower_c("name"), "uscc"],
            postgresql_where=sa.text(flag),
            schema=SCHEMA,
        )
    # Finer statistics: the planner estimates how many names a fragment
    # matches from them, which decides between an index walk and a bitmap.
    for column in ("name", "former_names_text", "name_bigrams", "former_names_bigrams"):
        op.execute(f"ALTER TABLE publicity.enterprises ALTER COLUMN {column} SET STATISTICS 1000")

    op.drop_index("ix_former_names_name_trgm", table_name="former_names", schema=SCHEMA)
    op.create_index("ix_former_names_name_lower", "former_names", [_lower_c("name")], schema=SCHEMA)

    new_item_columns: list[sa.Column[Any]] = [
        sa.Column("repaired_on", sa.Date()),
        sa.Column("revocation_reason", sa.Text()),
        sa.Column("withdrawn_reason", sa.String(30)),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True)),
    ]
    for item_column in new_item_columns:
        op.add_column("public_items", item_column, schema=SCHEMA)
    # What needs no catalogue; the withdrawal job reconciles the rest at start.
    op.execute(
        """
        UPDATE publicity.public_items SET
            withdrawn_reason = CASE
                WHEN disclosure <> 'public' THEN 'not_public' ELSE 'revoked' END,
            withdrawn_at = now()
        WHERE disclosure <> 'public' OR status <> 'active'
        """
    )
    op.create_index(
        "ix_public_items_published",
        "public_items",
        ["uscc", "category", "occurred_on", "record_id"],
        postgresql_where=sa.text("withdrawn_reason IS NULL"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_public_items_due",
        "public_items",
        [sa.text("least(publish_until, repaired_on)")],
        postgresql_where=sa.text("withdrawn_reason IS NULL"),
        schema=SCHEMA,
    )

    op.create_table(
        "credit_repairs",
        sa.Column("record_id", sa.UUID(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("uscc", sa.String(18), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("target_record_id", sa.UUID(), nullable=True),
        sa.Column("target_category", sa.String(50), nullable=True),
        sa.Column("target_source_id", sa.String(128), nullable=True),
        sa.Column("target_department", sa.String(40), nullable=True),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("record_id"),
        schema=SCHEMA,
    )
    op.create_index("ix_credit_repairs_uscc", "credit_repairs", ["uscc"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("ix_credit_repairs_uscc", table_name="credit_repairs", schema=SCHEMA)
    op.drop_table("credit_repairs", schema=SCHEMA)
    op.drop_index("ix_public_items_due", table_name="public_items", schema=SCHEMA)
    op.drop_index("ix_public_items_published", table_name="public_items", schema=SCHEMA)
    for column in ("withdrawn_at", "withdrawn_reason", "revocation_reason", "repaired_on"):
        op.drop_column("public_items", column, schema=SCHEMA)
    op.drop_index("ix_former_names_name_lower", table_name="former_names", schema=SCHEMA)
    op.create_index(
        "ix_former_names_name_trgm",
        "former_names",
        ["name"],
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
        schema=SCHEMA,
    )
    for index in (
        "ix_enterprises_serious_illegal_name",
        "ix_enterprises_abnormal_operation_name",
        "ix_enterprises_shuffle",
        "ix_enterprises_legal_representative",
        "ix_enterprises_former_names_bigrams",
        "ix_enterprises_former_names_trgm",
        "ix_enterprises_name_lower",
        "ix_enterprises_name_bigrams",
    ):
        op.drop_index(index, table_name="enterprises", schema=SCHEMA)
    for column in (
        "former_names_bigrams",
        "name_bigrams",
        "serious_illegal",
        "abnormal_operation",
        "status_code",
        "former_names_text",
    ):
        op.drop_column("enterprises", column, schema=SCHEMA)
    op.execute("DROP FUNCTION publicity.name_bigrams(text)")
