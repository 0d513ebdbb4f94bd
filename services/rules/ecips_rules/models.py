"""The rules service's tables (schema ``rules``): the latest enterprise
snapshot, punishments (active and lifted), the active measures that credit
checks read, the catalogue versions, and the dry runs and enactments."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ecips_common.outbox_table import define_outbox_tables

SCHEMA = "rules"


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)


class Enterprise(Base):
    """The newest ``EnterpriseChanged`` snapshot seen for an enterprise and
    what the last evaluation left behind."""

    __tablename__ = "enterprises"
    __table_args__ = (
        Index(
            "ix_enterprises_next_evaluation_on",
            "next_evaluation_on",
            postgresql_where=text("next_evaluation_on IS NOT NULL"),
        ),
    )

    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    # The snapshot as the ledger sent it (JSON), fields the rules do not read included.
    state: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # Per rule: the day its condition was first seen to hold, and the first
    # day of the last onset of a fixed-duration rule (see evaluation.py).
    rule_state: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    evaluated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    # The catalogue number of the last evaluation: under the same one, rules
    # whose inputs did not change keep their answer.
    evaluated_catalogue: Mapped[int | None] = mapped_column(Integer)
    # The day the answer may change with no new record (a fixed period ends,
    # a delay runs out, a year turns); the scheduler re-evaluates then.
    next_evaluation_on: Mapped[date | None] = mapped_column(Date)


class Punishment(Base):
    """One rule applied to one enterprise, from trigger to lift."""

    __tablename__ = "punishments"
    __table_args__ = (
        Index(
            "uq_punishments_active",
            "uscc",
            "rule_id",
            unique=True,
            postgresql_where=text("status = 'active'"),
        ),
    )

    punishment_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), primary_key=True, default=uuid.uuid4
    )
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    rule_id: Mapped[str] = mapped_column(String(80))
    rule_version: Mapped[int] = mapped_column(Integer)
    rule_title: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(20))
    legal_basis: Mapped[str] = mapped_column(Text)
    measures: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    since: Mapped[date] = mapped_column(Date)
    until: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default="active")
    catalogue_version: Mapped[str] = mapped_column(String(100))
    triggered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    lifted_on: Mapped[date | None] = mapped_column(Date)
    lift_reason: Mapped[str | None] = mapped_column(String(60))
    lifted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ActiveMeasure(Base):
    """One scenario an active punishment blocks, flattened so that a credit
    check (one or a thousand enterprises) is one indexed query."""

    __tablename__ = "active_measures"
    __table_args__ = (Index("ix_active_measures_uscc_scenario", "uscc", "scenario"),)

    punishment_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("punishments.punishment_id", ondelete="CASCADE"),
        primary_key=True,
    )
    measure: Mapped[str] = mapped_column(String(80), primary_key=True)
    scenario: Mapped[str] = mapped_column(String(50), primary_key=True)
    uscc: Mapped[str] = mapped_column(String(18))
    rule_id: Mapped[str] = mapped_column(String(80))
    rule_title: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(Text)
    department: Mapped[str] = mapped_column(String(40))
    legal_basis: Mapped[str] = mapped_column(Text)
    since: Mapped[date] = mapped_column(Date)
    until: Mapped[date | None] = mapped_column(Date)


class CatalogueVersion(Base):
    """Every catalogue version ever written; never deleted."""

    __tablename__ = "catalogue_versions"

    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    document: Mapped[dict[str, Any]] = mapped_column(JSONB)
    note: Mapped[str] = mapped_column(Text)
    # draft -> enacted -> superseded
    status: Mapped[str] = mapped_column(String(20))
    based_on: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(200))
    enacted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    enacted_by: Mapped[str | None] = mapped_column(String(200))


class CatalogueCurrent(Base):
    """The enacted catalogue (one row). Evaluations read it under a share lock
    and enactment switches it under an update lock, so no evaluation runs on
    a catalogue that is being replaced."""

    __tablename__ = "catalogue_current"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, default=1)
    number: Mapped[int] = mapped_column(ForeignKey("catalogue_versions.number"))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CatalogueJob(Base):
    """A dry run or an enactment: an evaluation of every enterprise."""

    __tablename__ = "catalogue_jobs"

    job_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # dry_run | enactment
    catalogue_number: Mapped[int] = mapped_column(
        ForeignKey("catalogue_versions.number"), index=True
    )
    status: Mapped[str] = mapped_column(String(20))  # running | done | failed
    as_of: Mapped[date] = mapped_column(Date)
    requested_by: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    evaluated: Mapped[int] = mapped_column(Integer, default=0)
    # Renewed by the process running the job; a running job whose heartbeat
    # is old was interrupted, and another process takes it over.
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    summary: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    dry_run_job_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    matches_dry_run: Mapped[bool | None] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)


class JobChange(Base):
    """One difference a job found (dry run) or made (enactment)."""

    __tablename__ = "job_changes"

    job_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("catalogue_jobs.job_id", ondelete="CASCADE"),
        primary_key=True,
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    uscc: Mapped[str] = mapped_column(String(18))
    rule_id: Mapped[str] = mapped_column(String(80))
    rule_version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(20))  # triggered | lifted
    reason: Mapped[str | None] = mapped_column(String(60))
    since: Mapped[date | None] = mapped_column(Date)
    until: Mapped[date | None] = mapped_column(Date)


OUTBOX = define_outbox_tables(Base.metadata)
