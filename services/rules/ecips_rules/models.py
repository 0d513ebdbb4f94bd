"""The rules service's tables (schema ``rules``): the latest enterprise
snapshot, punishments (active and lifted) and the active measures that
credit checks read."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
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
    """The newest ``EnterpriseChanged`` snapshot seen for an enterprise."""

    __tablename__ = "enterprises"

    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    state: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # Rule ids whose condition held at the last evaluation: a fixed-duration
    # rule starts only when its condition turns from false to true.
    matched_rules: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    evaluated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


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
    kind: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(Text)
    department: Mapped[str] = mapped_column(String(40))
    legal_basis: Mapped[str] = mapped_column(Text)
    since: Mapped[date] = mapped_column(Date)
    until: Mapped[date | None] = mapped_column(Date)


OUTBOX = define_outbox_tables(Base.metadata)
