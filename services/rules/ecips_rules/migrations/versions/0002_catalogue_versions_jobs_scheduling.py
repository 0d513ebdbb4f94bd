"""Catalogue versions kept in the database, dry runs and enactments, and the
per-enterprise bookkeeping the scheduler needs (rule state, next evaluation).

Enterprises evaluated before this revision keep their punishments; each
rule they matched gets ``held_since`` = the day of their last evaluation, and
every enterprise is due for evaluation today, so the scheduler's first pass
re-evaluates them under the enacted catalogue.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 08:36:08.019852
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
        "catalogue_versions",
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("document", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("based_on", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("enacted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("enacted_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("number"),
        schema="rules",
    )
    op.create_table(
        "catalogue_current",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name="single_row"),
        sa.ForeignKeyConstraint(
            ["number"],
            ["rules.catalogue_versions.number"],
        ),
        sa.PrimaryKeyConstraint("id"),
        schema="rules",
    )
    op.create_table(
        "catalogue_jobs",
        sa.Column("job_id", sa.UUID(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("catalogue_number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("evaluated", sa.Integer(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "summary",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("dry_run_job_id", sa.UUID(), nullable=True),
        sa.Column("matches_dry_run", sa.Boolean(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["catalogue_number"],
            ["rules.catalogue_versions.number"],
        ),
        sa.PrimaryKeyConstraint("job_id"),
        schema="rules",
    )
    op.create_index(
        op.f("ix_rules_catalogue_jobs_catalogue_number"),
        "catalogue_jobs",
        ["catalogue_number"],
        unique=False,
        schema="rules",
    )
    op.create_table(
        "job_changes",
        sa.Column("job_id", sa.UUID(), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("rule_id", sa.String(length=80), nullable=False),
        sa.Column("rule_version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=60), nullable=True),
        sa.Column("since", sa.Date(), nullable=True),
        sa.Column("until", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["rules.catalogue_jobs.job_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", "position"),
        schema="rules",
    )
    op.add_column(
        "enterprises",
        sa.Column(
            "rule_state",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        schema="rules",
    )
    op.add_column(
        "enterprises", sa.Column("evaluated_catalogue", sa.Integer(), nullable=True), schema="rules"
    )
    op.add_column(
        "enterprises", sa.Column("next_evaluation_on", sa.Date(), nullable=True), schema="rules"
    )
    op.create_index(
        "ix_enterprises_next_evaluation_on",
        "enterprises",
        ["next_evaluation_on"],
        unique=False,
        schema="rules",
        postgresql_where=sa.text("next_evaluation_on IS NOT NULL"),
    )
    op.add_column(
        "active_measures", sa.Column("rule_title", sa.Text(), nullable=True), schema="rules"
    )
    op.execute(
        """
        UPDATE rules.active_measures m SET rule_title = p.rule_title
          FROM rules.punishments p WHERE p.punishment_id = m.punishment_id
        """
    )
    op.execute(
        """
        UPDATE rules.enterprises SET
            rule_state = COALESCE(
                (SELECT jsonb_object_agg(
                            rule_id,
                            jsonb_build_object(
                                'held_since',
                                to_char(evaluated_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD')))
                   FROM jsonb_array_elements_text(matched_rules) AS rule_id),
                '{}'::jsonb),
            next_evaluation_on = (now() AT TIME ZONE 'Asia/Shanghai')::date
        """
    )
    op.drop_column("enterprises", "matched_rules", schema="rules")


def downgrade() -> None:
    op.drop_column("active_measures", "rule_title", schema="rules")
    op.add_column(
        "enterprises",
        sa.Column(
            "matched_rules",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            autoincrement=False,
            nullable=False,
        ),
        schema="rules",
    )
    op.drop_index(
        "ix_enterprises_next_evaluation_on",
        table_name="enterprises",
        schema="rules",
        postgresql_where=sa.text("next_evaluation_on IS NOT NULL"),
    )
    op.drop_column("enterprises", "next_evaluation_on", schema="rules")
    op.drop_column("enterprises", "evaluated_catalogue", schema="rules")
    op.drop_column("enterprises", "rule_state", schema="rules")
    op.drop_table("job_changes", schema="rules")
    op.drop_index(
        op.f("ix_rules_catalogue_jobs_catalogue_number"),
        table_name="catalogue_jobs",
        schema="rules",
    )
    op.drop_table("catalogue_jobs", schema="rules")
    op.drop_table("catalogue_current", schema="rules")
    op.drop_table("catalogue_versions", schema="rules")
