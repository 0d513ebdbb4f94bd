"""Ingest's tables (schema ``ingest``): records as submitted, every revision,
batches (their files until processed, their rows' problems), per-month
submission counts for the compliance report, and nil returns."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ecips_common.outbox_table import define_outbox_tables

SCHEMA = "ingest"


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)


class Record(Base):
    """A department's record, identified by (department, source_id); the head
    of its revisions."""

    __tablename__ = "records"
    __table_args__ = (
        UniqueConstraint("department", "source_id", name="uq_records_department_source"),
    )

    record_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), primary_key=True, default=uuid.uuid4
    )
    department: Mapped[str] = mapped_column(String(40))
    source_id: Mapped[str] = mapped_column(String(128))
    category: Mapped[str] = mapped_column(String(50))
    current_revision: Mapped[int] = mapped_column(Integer, default=0)
    content_hash: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="accepted")
    revocation_reason: Mapped[str | None] = mapped_column(Text)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RecordRevision(Base):
    __tablename__ = "record_revisions"
    __table_args__ = (
        # The compliance report counts first submissions by the month they concern.
        Index(
            "ix_record_revisions_first_occurred_on",
            "occurred_on",
            postgresql_where=text("revision = 1"),
        ),
    )

    record_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("records.record_id"), primary_key=True
    )
    revision: Mapped[int] = mapped_column(Integer, primary_key=True)
    uscc: Mapped[str | None] = mapped_column(String(18), index=True)
    registration_number: Mapped[str | None] = mapped_column(String(15))
    enterprise_name: Mapped[str] = mapped_column(String(200))
    occurred_on: Mapped[date] = mapped_column(Date)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    content_hash: Mapped[str] = mapped_column(String(64))
    catalogue_version: Mapped[str] = mapped_column(String(100))
    accepted_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    batch_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))


class Batch(Base):
    """An uploaded file of records, processed in the background.

    A worker claims it by taking a lease (``worker``, ``lease_until``); each
    chunk of rows commits together with ``processed``, so a batch resumes after
    a crash where the last committed chunk ended.
    """

    __tablename__ = "batches"
    __table_args__ = (
        Index("ix_batches_department_created", "department", "created_at"),
        Index(
            "ix_batches_pending",
            "created_at",
            postgresql_where=text("status IN ('queued', 'processing')"),
        ),
    )

    batch_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    department: Mapped[str] = mapped_column(String(40))
    category: Mapped[str | None] = mapped_column(String(50))
    file_format: Mapped[str] = mapped_column(String(10))
    filename: Mapped[str] = mapped_column(String(255))
    encoding: Mapped[str | None] = mapped_column(String(20))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    header: Mapped[list[str] | None] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(20))
    total: Mapped[int | None] = mapped_column(Integer)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    warnings: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failure_code: Mapped[str | None] = mapped_column(String(50))
    failure_detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class BatchFileChunk(Base):
    """The uploaded file, in order, until the batch is done (so a restart can resume)."""

    __tablename__ = "batch_file_chunks"

    batch_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("batches.batch_id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)


class BatchRowIssue(Base):
    """A rejected row (severity ``error``) or an accepted row with warnings."""

    __tablename__ = "batch_row_issues"
    __table_args__ = (Index("ix_batch_row_issues_batch_row", "batch_id", "severity", "row_number"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    batch_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("batches.batch_id", ondelete="CASCADE")
    )
    row_number: Mapped[int] = mapped_column(Integer)
    severity: Mapped[str] = mapped_column(String(10))
    source_id: Mapped[str | None] = mapped_column(String(200))
    issues: Mapped[list[dict[str, str]]] = mapped_column(JSONB)
    # The row's cells as uploaded (header order) or, for NDJSON, the line.
    cells: Mapped[list[str]] = mapped_column(JSONB)


class SubmissionCount(Base):
    """Rows submitted per department, month, category and outcome (compliance report).

    ``outcome`` is accepted, unchanged or rejected (``code`` empty), or ``error``
    with one row per rejection code (a row with two codes counts under both).
    """

    __tablename__ = "submission_counts"

    department: Mapped[str] = mapped_column(String(40), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    category: Mapped[str] = mapped_column(String(50), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(20), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    rows: Mapped[int] = mapped_column(BigInteger)
    last_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class NilReturn(Base):
    """A department's declaration that it had no records of a category in a month (零报告)."""

    __tablename__ = "nil_returns"

    department: Mapped[str] = mapped_column(String(40), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    category: Mapped[str] = mapped_column(String(50), primary_key=True)
    declared_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


OUTBOX = define_outbox_tables(Base.metadata)
