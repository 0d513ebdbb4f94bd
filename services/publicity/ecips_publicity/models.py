"""Publicity's tables (schema ``publicity``): the public read model.

Only what may be published is stored with content: records whose
disclosure class is not ``public`` are kept as empty, versioned markers so a
late, older event can never bring their content back.

The name search (see ``repository.NameSearch``) uses: a trigram GIN index
(pg_trgm) for fragments of three or more characters; stored arrays of the
lower-cased character pairs (``name_bigrams``) with a GIN index for
two-character fragments, which trigrams cannot serve; a C-collation btree on
the lower-cased name for exact and prefix matches in code-point order.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Computed,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    func,
    literal_column,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ecips_common.outbox_table import define_outbox_tables

SCHEMA = "publicity"
# Created by migration 0002: the distinct lower-cased character pairs of a text.
NAME_BIGRAMS_FUNCTION = f"{SCHEMA}.name_bigrams"


def _bigrams_of(column: str) -> Computed:
    return Computed(f"{NAME_BIGRAMS_FUNCTION}({column})", persisted=True)


def _lower_c(column: str) -> Any:
    """``lower(column) COLLATE "C"``: byte order, so btree serves LIKE 'x%' and ORDER BY."""
    return literal_column(f'(lower({column}) COLLATE "C")')


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
        Index("ix_enterprises_name_bigrams", "name_bigrams", postgresql_using="gin"),
        Index("ix_enterprises_name_lower", _lower_c("name"), "uscc"),
        Index(
            "ix_enterprises_former_names_trgm",
            "former_names_text",
            postgresql_using="gin",
            postgresql_ops={"former_names_text": "gin_trgm_ops"},
        ),
        Index(
            "ix_enterprises_former_names_bigrams", "former_names_bigrams", postgresql_using="gin"
        ),
        Index("ix_enterprises_legal_representative", "legal_representative"),
        # Broad searches walk matches in an order unrelated to their names.
        Index("ix_enterprises_shuffle", func.md5(literal_column("uscc"))),
        # Browsing a list without a name: walk the listed enterprises in name order.
        Index(
            "ix_enterprises_abnormal_operation_name",
            _lower_c("name"),
            "uscc",
            postgresql_where=text("abnormal_operation"),
        ),
        Index(
            "ix_enterprises_serious_illegal_name",
            _lower_c("name"),
            "uscc",
            postgresql_where=text("serious_illegal"),
        ),
    )

    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    registered: Mapped[bool] = mapped_column(Boolean)
    name: Mapped[str] = mapped_column(String(200))
    former_names: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    # All former names, one per line: one row per enterprise for the search.
    former_names_text: Mapped[str | None] = mapped_column(Text)
    name_bigrams: Mapped[list[str]] = mapped_column(ARRAY(Text), _bigrams_of("name"))
    former_names_bigrams: Mapped[list[str] | None] = mapped_column(
        ARRAY(Text), _bigrams_of("former_names_text")
    )
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
    status_code: Mapped[str] = mapped_column(String(20), server_default="active")
    flags: Mapped[dict[str, Any]] = mapped_column(JSONB)
    abnormal_operation: Mapped[bool] = mapped_column(Boolean, server_default="false")
    serious_illegal: Mapped[bool] = mapped_column(Boolean, server_default="false")
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class FormerName(Base):
    """Former names, one row each: exact matches, and which name matched."""

    __tablename__ = "former_names"
    __table_args__ = (Index("ix_former_names_name_lower", _lower_c("name")),)

    uscc: Mapped[str] = mapped_column(
        String(18), ForeignKey("enterprises.uscc", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    until: Mapped[date | None] = mapped_column(Date)


class PublicItem(Base):
    """The newest RecordFiled version of each record, personal data masked.

    ``withdrawn_reason`` is null while the item is published; the projector
    sets it when an event withdraws the item, the withdrawal job when its
    period or an early end (credit repair) is reached. Queries also check
    the dates themselves, so an item is never shown a day too long.
    """

    __tablename__ = "public_items"
    __table_args__ = (
        Index("ix_public_items_uscc_category", "uscc", "category"),
        Index(
            "ix_public_items_published",
            "uscc",
            "category",
            "occurred_on",
            "record_id",
            postgresql_where=text("withdrawn_reason IS NULL"),
        ),
        Index(
            "ix_public_items_due",
            func.least(literal_column("publish_until"), literal_column("repaired_on")),
            postgresql_where=text("withdrawn_reason IS NULL"),
        ),
    )

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
    # The day a credit repair ends the publication (null: not repaired).
    repaired_on: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20))
    revocation_reason: Mapped[str | None] = mapped_column(Text)
    filed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    withdrawn_reason: Mapped[str | None] = mapped_column(String(30))
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CreditRepair(Base):
    """A credit repair decision and the record it withdraws early.

    Kept apart from the items so that the repair and the repaired record may
    arrive in any order; revocation keeps the row (``status``) for versioning.
    """

    __tablename__ = "credit_repairs"
    __table_args__ = (Index("ix_credit_repairs_uscc", "uscc"),)

    record_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    uscc: Mapped[str] = mapped_column(String(18))
    status: Mapped[str] = mapped_column(String(20))
    target_record_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    target_category: Mapped[str | None] = mapped_column(String(50))
    target_source_id: Mapped[str | None] = mapped_column(String(128))
    target_department: Mapped[str | None] = mapped_column(String(40))
    effective_on: Mapped[date] = mapped_column(Date)


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
