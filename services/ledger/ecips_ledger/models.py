"""The ledger's tables (schema ``ledger``): enterprises, the records filed
under them with every revision, and the audit log of non-public reads."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Identity,
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

SCHEMA = "ledger"


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)


class Enterprise(Base):
    """An enterprise's master data and derived state, rebuilt from its
    registration, change, deregistration and list records."""

    __tablename__ = "enterprises"

    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    # The pre-2015 15-digit number: records that carry only it are filed here.
    registration_number: Mapped[str | None] = mapped_column(String(15), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    former_names: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, server_default=text("'[]'::jsonb")
    )
    legal_representative: Mapped[str | None] = mapped_column(String(100))
    enterprise_type: Mapped[str | None] = mapped_column(String(100))
    registered_capital: Mapped[str | None] = mapped_column(String(100))
    established_on: Mapped[date | None] = mapped_column(Date)
    address: Mapped[str | None] = mapped_column(String(500))
    business_scope: Mapped[str | None] = mapped_column(Text)
    registration_authority: Mapped[str | None] = mapped_column(String(200))
    division_code: Mapped[str] = mapped_column(String(6), index=True)
    status: Mapped[str] = mapped_column(String(10))
    status_since: Mapped[date | None] = mapped_column(Date)
    registered: Mapped[bool] = mapped_column(Boolean)
    abnormal_operation: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    abnormal_operation_since: Mapped[date | None] = mapped_column(Date)
    abnormal_operation_reason: Mapped[str | None] = mapped_column(Text)
    serious_illegal: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    serious_illegal_since: Mapped[date | None] = mapped_column(Date)
    serious_illegal_reason: Mapped[str | None] = mapped_column(Text)
    # Active freezes, mortgages and pledges (lists of contracts.Encumbrance as JSON).
    equity_freezes: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, server_default=text("'[]'::jsonb")
    )
    chattel_mortgages: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, server_default=text("'[]'::jsonb")
    )
    equity_pledges: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, server_default=text("'[]'::jsonb")
    )
    record_counts: Mapped[dict[str, int]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    major_tax_violation: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    major_tax_violation_since: Mapped[date | None] = mapped_column(Date)
    major_tax_violation_reason: Mapped[str | None] = mapped_column(Text)
    dishonest_judgment_debtor: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    dishonest_judgment_debtor_since: Mapped[date | None] = mapped_column(Date)
    dishonest_judgment_debtor_reason: Mapped[str | None] = mapped_column(Text)
    # Active administrative penalties by year of decision ("2025": 2).
    penalty_counts_by_year: Mapped[dict[str, int]] = mapped_column(
        JSONB, server_default=text("'{}'::jsonb")
    )
    version: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # master_data.FOLD_VERSION of the rules that derived this row.
    fold_version: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class FiledRecord(Base):
    """A department's record: its head revision and where it is filed.

    ``matched`` is false while no registered enterprise answers to its USCC
    or registration number; it is filed when the registration arrives.
    """

    __tablename__ = "records"
    __table_args__ = (
        Index("ix_records_uscc_category", "uscc", "category", "occurred_on"),
        Index("ix_records_unmatched_uscc", "uscc", postgresql_where=text("NOT matched")),
        Index(
            "ix_records_unmatched_number",
            "registration_number",
            postgresql_where=text("NOT matched"),
        ),
        Index(
            "ix_records_waited",
            "unmatched_since",
            postgresql_where=text("unmatched_since IS NOT NULL"),
        ),
        Index("ix_records_source_id_department", "source_id", "department"),
    )

    record_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    uscc: Mapped[str | None] = mapped_column(String(18))
    registration_number: Mapped[str | None] = mapped_column(String(15))
    matched: Mapped[bool] = mapped_column(Boolean)
    category: Mapped[str] = mapped_column(String(50))
    department: Mapped[str] = mapped_column(String(40))
    source_id: Mapped[str] = mapped_column(String(128))
    enterprise_name: Mapped[str] = mapped_column(String(200))
    revision: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10))
    occurred_on: Mapped[date] = mapped_column(Date)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    disclosure: Mapped[str] = mapped_column(String(20))
    publicity_period_days: Mapped[int | None] = mapped_column(Integer)
    catalogue_version: Mapped[str] = mapped_column(String(100))
    accepted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revocation_reason: Mapped[str | None] = mapped_column(Text)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer)
    filed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # When the ledger first received the record, and when it started waiting
    # for its enterprise (kept after it is filed, so the wait stays on record).
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    unmatched_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RecordRevision(Base):
    """Every revision ever received, including late ones that never became the head."""

    __tablename__ = "record_revisions"

    record_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, primary_key=True)
    uscc: Mapped[str | None] = mapped_column(String(18))
    registration_number: Mapped[str | None] = mapped_column(String(15))
    enterprise_name: Mapped[str] = mapped_column(String(200))
    occurred_on: Mapped[date] = mapped_column(Date)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    disclosure: Mapped[str] = mapped_column(String(20))
    publicity_period_days: Mapped[int | None] = mapped_column(Integer)
    catalogue_version: Mapped[str] = mapped_column(String(100))
    accepted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class EarlyRevocation(Base):
    """A revocation that arrived before its record: applied when the record comes."""

    __tablename__ = "early_revocations"

    record_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    revoked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class AuditEntry(Base):
    """One read of non-public ledger data: who, what, when."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_department_id", "department", "id"),
        Index("ix_audit_log_uscc", "uscc"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    subject: Mapped[str] = mapped_column(String(200))
    department: Mapped[str] = mapped_column(String(40))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(500))
    query: Mapped[str | None] = mapped_column(String(1000))
    uscc: Mapped[str | None] = mapped_column(String(64))
    token_id: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


OUTBOX = define_outbox_tables(Base.metadata)
