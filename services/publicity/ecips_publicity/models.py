"""Publicity's tables (schema ``publicity``): the public read model.

Only what may be published is stored with content: records whose
disclosure class is not ``public`` are kept as empty, versioned markers so a
late, older event can never bring their content back.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ecips_common.outbox_table import define_outbox_tables

SCHEMA = "publicity"


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)


class Enterprise(Base):
    """The newest EnterpriseChanged snapshot of each enterprise."""

    __tablename__ = "enterprises"
    __table_args__ = (
        Index(
            "ix_enterprises_name_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ),
        Index("ix_enterprises_registration_number", "registration_number"),
    )

    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    registered: Mapped[bool] = mapped_column(Boolean)
    name: Mapped[str] = mapped_column(String(200))
    former_names: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    registration_number: Mapped[str | None] = mapped_column(String(15))
    legal_representative: Mapped[str | None] = mapped_column(String(100))
    enterprise_type: Mapped[str | None] = mapped_column(String(100))
    registered_capital: Mapped[str | None] = mapped_column(String(100))
    established_on: Mapped[date | None] = mapped_column(Date)
    address: Mapped[str | None] = mapped_column(Text)
    business_scope: Mapped[str | None] = mapped_column(Text)
    registration_authority: Mapped[str | None] = mapped_column(String(200))
    division_code: Mapped[str] = mapped_column(String(6))
    status: Mapped[str] = mapped_column(String(40))
    flags: Mapped[dict[str, Any]] = mapped_column(JSONB)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class FormerName(Base):
    """Former names, one row each, so the name search can use a trigram index."""

    __tablename__ = "former_names"
    __table_args__ = (
        Index(
            "ix_former_names_name_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ),
    )

    uscc: Mapped[str] = mapped_column(
        String(18), ForeignKey("enterprises.uscc", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    until: Mapped[date | None] = mapped_column(Date)


class PublicItem(Base):
    """The newest RecordFiled version of each record, personal data masked."""

    __tablename__ = "public_items"
    __table_args__ = (Index("ix_public_items_uscc_category", "uscc", "category"),)

    record_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    revision: Mapped[int] = mapped_column(Integer)
    uscc: Mapped[str] = mapped_column(String(18))
    category: Mapped[str] = mapped_column(String(50))
    department: Mapped[str] = mapped_column(String(40))
    source_id: Mapped[str] = mapped_column(String(128))
    occurred_on: Mapped[date] = mapped_column(Date)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    disclosure: Mapped[str] = mapped_column(String(20))
    publish_until: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20))
    filed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class JointMeasure(Base):
    """A joint punishment (or incentive) rule applied to an enterprise.

    Lifting keeps the row as ``lifted`` so that a late, older trigger event
    cannot bring it back.
    """

    __tablename__ = "joint_measures"

    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    rule_version: Mapped[int] = mapped_column(Integer)
    rule_title: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(20))
    measures: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    legal_basis: Mapped[str | None] = mapped_column(Text)
    since: Mapped[date | None] = mapped_column(Date)
    until: Mapped[date | None] = mapped_column(Date)
    active: Mapped[bool] = mapped_column(Boolean)
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


OUTBOX = define_outbox_tables(Base.metadata)
