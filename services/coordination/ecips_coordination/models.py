"""Coordination's tables (schema ``coordination``): tasks between departments,
the registrations they come from, and webhook subscriptions and deliveries."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ecips_common.outbox_table import define_outbox_tables

SCHEMA = "coordination"

TASK_TYPES = ("double_notification", "joint_punishment")
TASK_STATUSES = ("open", "claimed", "done")
# apply / release: joint punishment; notify: double notification.
TASK_ACTIONS = ("apply", "release", "notify")
# What opened a double notification task.
TASK_TRIGGERS = ("registration", "scope_change")
DELIVERY_STATUSES = ("pending", "delivered", "dead", "cancelled")


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Task(Base):
    """One department's piece of work about one enterprise.

    Joint punishment: one task per (department, measure) of a triggered or
    lifted punishment. Double notification: one task per approving department
    and approval item; ``measure``/``measure_title`` then name the approval
    item and the approval, and the rule columns stay empty.
    """

    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint(_one_of("type", TASK_TYPES), name="ck_tasks_type"),
        CheckConstraint(_one_of("status", TASK_STATUSES), name="ck_tasks_status"),
        CheckConstraint(_one_of("action", TASK_ACTIONS), name="ck_tasks_action"),
        Index("ix_tasks_department_seq", "department", "seq"),
        Index("ix_tasks_department_status_seq", "department", "status", "seq"),
        Index("ix_tasks_uscc", "uscc"),
        Index("ix_tasks_opened_at", "opened_at"),
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
    # Double notification: registration or scope_change, the scope clauses that
    # matched, and the approval catalogue version that matched them.
    trigger: Mapped[str | None] = mapped_column(String(20))
    scope_excerpt: Mapped[str | None] = mapped_column(Text)
    catalogue_version: Mapped[str | None] = mapped_column(String(40))


class Registration(Base):
    """What coordination knows of a registered enterprise, from the ledger:
    its business scope and the approval items that scope matched."""

    __tablename__ = "registrations"

    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    enterprise_name: Mapped[str] = mapped_column(String(200))
    registered: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str | None] = mapped_column(String(20))
    business_scope: Mapped[str | None] = mapped_column(Text)
    registration_authority: Mapped[str | None] = mapped_column(String(200))
    established_on: Mapped[date | None] = mapped_column(Date)
    # The ledger's EnterpriseChanged version last applied (older ones are stale).
    ledger_version: Mapped[int] = mapped_column(BigInteger, default=0)
    # [{"item": key, "clauses": [...]}] for the current scope.
    matched: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    catalogue_version: Mapped[str | None] = mapped_column(String(40))
    # The latest registration / registration_change record filed (RecordFiled).
    filing: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # Whether double notification already ran for this enterprise.
    notified: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Subscription(Base):
    """A department's webhook: where to push its task changes, signed with ``secret``."""

    __tablename__ = "subscriptions"
    __table_args__ = (Index("ix_subscriptions_department", "department"),)

    subscription_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    department: Mapped[str] = mapped_column(String(40))
    url: Mapped[str] = mapped_column(String(2000))
    # Needed in clear to sign (HMAC); shown to the department once, at creation.
    secret: Mapped[str] = mapped_column(String(100))
    # Task types to push; empty means all.
    types: Mapped[list[str]] = mapped_column(ARRAY(String(30)), default=list)
    description: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_by: Mapped[str] = mapped_column(String(200))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Delivery(Base):
    """One webhook call to make: written in the transaction that changed the
    task, worked by the delivery job until delivered or dead-lettered."""

    __tablename__ = "deliveries"
    __table_args__ = (
        CheckConstraint(_one_of("status", DELIVERY_STATUSES), name="ck_deliveries_status"),
        Index(
            "ix_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
        Index(
            "ix_deliveries_stream",
            "subscription_id",
            "uscc",
            "seq",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_deliveries_department_status_seq", "department", "status", "seq"),
    )

    delivery_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    # Creation order: deliveries of one (subscription, enterprise) go out in it.
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), unique=True)
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("subscriptions.subscription_id", ondelete="CASCADE")
    )
    department: Mapped[str] = mapped_column(String(40))
    uscc: Mapped[str] = mapped_column(String(18))
    task_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    event_type: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Set while a worker is sending it; an expired lease means the worker died.
    leased_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dead_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


OUTBOX = define_outbox_tables(Base.metadata)
