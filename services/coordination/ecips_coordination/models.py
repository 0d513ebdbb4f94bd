"""Coordination's tables (schema ``coordination``): tasks between departments."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ecips_common.outbox_table import define_outbox_tables

SCHEMA = "coordination"

TASK_TYPES = ("double_notification", "joint_punishment")
TASK_STATUSES = ("open", "claimed", "done")
# apply / release: joint punishment; notify: double notification (a later issue).
TASK_ACTIONS = ("apply", "release", "notify")


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Task(Base):
    """One department's piece of work about one enterprise.

    Joint punishment: one task per (department, measure) of a triggered or
    lifted punishment. Double notification (later): one task per approving
    department and approval item; ``measure``/``measure_title`` then name
    the approval and the rule columns stay empty.
    """

    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint(_one_of("type", TASK_TYPES), name="ck_tasks_type"),
        CheckConstraint(_one_of("status", TASK_STATUSES), name="ck_tasks_status"),
        CheckConstraint(_one_of("action", TASK_ACTIONS), name="ck_tasks_action"),
        Index("ix_tasks_department_seq", "department", "seq"),
        Index("ix_tasks_department_status_seq", "department", "status", "seq"),
        Index("ix_tasks_uscc", "uscc"),
    )

    task_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    # Stable listing order and keyset cursor.
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), unique=True)
    # Derived from what the task is about, not from the delivering event, so
    # a redelivery or a re-announcement of the same trigger never opens a
    # second task (see service.apply_key / release_key).
    idempotency_key: Mapped[str] = mapped_column(String(400), unique=True)
    source_event_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(30))
    action: Mapped[str] = mapped_column(String(20))
    department: Mapped[str] = mapped_column(String(40))
    uscc: Mapped[str] = mapped_column(String(18))
    enterprise_name: Mapped[str] = mapped_column(String(200))
    rule_id: Mapped[str | None] = mapped_column(String(100))
    rule_version: Mapped[int | None] = mapped_column(Integer)
    rule_title: Mapped[str | None] = mapped_column(String(300))
    kind: Mapped[str | None] = mapped_column(String(20))
    measure: Mapped[str] = mapped_column(String(100))
    measure_title: Mapped[str] = mapped_column(String(300))
    scenarios: Mapped[list[str]] = mapped_column(ARRAY(String(60)), default=list)
    legal_basis: Mapped[str] = mapped_column(Text)
    # apply: the punishment's start; release: the day it was lifted.
    effective_on: Mapped[date | None] = mapped_column(Date)
    effective_until: Mapped[date | None] = mapped_column(Date)
    reason: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="open")
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    claim_due: Mapped[date] = mapped_column(Date)
    feedback_due: Mapped[date] = mapped_column(Date)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    feedback: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


OUTBOX = define_outbox_tables(Base.metadata)
