"""All of coordination's SQL."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import String, Table, and_, any_, bindparam, func, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from ecips_coordination.models import Delivery, Registration, Subscription, Task

# Deadlines are days in China time (no daylight saving since 1991).
CHINA_ZONE = "Asia/Shanghai"

USCC_ARRAY = ARRAY(String(18))


@dataclass(frozen=True, slots=True)
class TaskFilter:
    department: str
    status: str | None = None
    type: str | None = None
    uscc: str | None = None
    after: int = 0
    limit: int = 100


class TaskRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def open_if_new(self, values: dict[str, Any]) -> Task | None:
        """Insert a task unless one with the same idempotency key exists.

        Returns the new task, or None when the key was already taken (a
        concurrent insert of the same key waits for the other transaction
        and then does nothing).
        """
        return (
            await self._session.scalars(
                insert(Task)
                .values(**values)
                .on_conflict_do_nothing(index_elements=["idempotency_key"])
                .returning(Task),
                execution_options={"populate_existing": True},
            )
        ).one_or_none()

    async def get(self, task_id: uuid.UUID, *, for_update: bool = False) -> Task | None:
        stmt = select(Task).where(Task.task_id == task_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (
            await self._session.execute(stmt.execution_options(populate_existing=True))
        ).scalar_one_or_none()

    async def list(self, query: TaskFilter) -> Sequence[Task]:
        stmt = select(Task).where(Task.department == query.department, Task.seq > query.after)
        if query.status is not None:
            stmt = stmt.where(Task.status == query.status)
        if query.type is not None:
            stmt = stmt.where(Task.type == query.type)
        if query.uscc is not None:
            stmt = stmt.where(Task.uscc == query.uscc)
        stmt = stmt.order_by(Task.seq).limit(query.limit)
        return (await self._session.execute(stmt)).scalars().all()

    async def release_on_or_after(
        self, *, uscc: str, rule_id: str, department: str, measure: str, since: date
    ) -> bool:
        """Whether a release task exists for this measure lifted on or after ``since``:
        then a late-arriving trigger describes a punishment already over."""
        found = (
            await self._session.execute(
                select(Task.task_id)
                .where(
                    Task.type == "joint_punishment",
                    Task.action == "release",
                    Task.uscc == uscc,
                    Task.rule_id == rule_id,
                    Task.department == department,
                    Task.measure == measure,
                    Task.effective_on >= since,
                )
                .limit(1)
            )
        ).first()
        return found is not None


class RegistrationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock_all(self, names: Mapping[str, str]) -> dict[str, Registration]:
        """The rows of these enterprises (USCC -> name to create a new one under),
        created empty if new, locked until commit (the Kafka consumer and the
        feed follower may apply their events concurrently).

        Known rows are locked, and new ones created, in USCC order, so
        transactions working on overlapping sets queue behind each other
        instead of deadlocking.
        """
        usccs = sorted(names)
        rows = await self._locked(usccs)
        missing = [uscc for uscc in usccs if uscc not in rows]
        if not missing:
            return rows
        # A row this transaction inserts is its own until commit; a conflicting
        # one was inserted meanwhile by another transaction and is locked below.
        created = await self._session.scalars(
            insert(Registration)
            .values([
                {"uscc": uscc, "enterprise_name": names[uscc], "registered": False,
                 "ledger_version": 0, "matched": [], "notified": False}
                for uscc in missing
            ])
            .on_conflict_do_nothing(index_elements=["uscc"])
            .returning(Registration),
            execution_options={"populate_existing": True},
        )  # fmt: skip
        rows.update((row.uscc, row) for row in created)
        raced = [uscc for uscc in missing if uscc not in rows]
        if raced:
            rows.update(await self._locked(raced))
        return rows

    async def _locked(self, usccs: Sequence[str]) -> dict[str, Registration]:
        # = ANY(array): one statement text whatever the number of USCCs, so it
        # stays prepared.
        found = await self._session.scalars(
            select(Registration)
            .where(Registration.uscc == any_(bindparam("usccs", list(usccs), type_=USCC_ARRAY)))
            .order_by(Registration.uscc)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return {row.uscc: row for row in found}

    async def get(self, uscc: str) -> Registration | None:
        return await self._session.get(Registration, uscc)


class SubscriptionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def add(self, subscription: Subscription) -> None:
        self._session.add(subscription)

    async def get(self, subscription_id: uuid.UUID) -> Subscription | None:
        return (
            await self._session.execute(
                select(Subscription)
                .where(Subscription.subscription_id == subscription_id)
                .execution_options(populate_existing=True)
            )
        ).scalar_one_or_none()

    async def active_for(self, department: str) -> Sequence[Subscription]:
        return (
            (
                await self._session.execute(
                    select(Subscription)
                    .where(Subscription.department == department, Subscription.deleted_at.is_(None))
                    .order_by(Subscription.created_at)
                )
            )
            .scalars()
            .all()
        )

    async def active_by_id(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Subscription]:
        if not ids:
            return {}
        rows = await self._session.execute(
            select(Subscription).where(
                Subscription.subscription_id.in_(ids), Subscription.deleted_at.is_(None)
            )
        )
        return {s.subscription_id: s for s in rows.scalars()}

    async def delivery_counts(self, ids: Sequence[uuid.UUID]) -> dict[tuple[uuid.UUID, str], int]:
        if not ids:
            return {}
        rows = await self._session.execute(
            select(Delivery.subscription_id, Delivery.status, func.count())
            .where(Delivery.subscription_id.in_(ids), Delivery.status.in_(("pending", "dead")))
            .group_by(Delivery.subscription_id, Delivery.status)
        )
        return {(sid, status): int(count) for sid, status, count in rows.all()}


@dataclass(frozen=True, slots=True)
class Settlement:
    """The result of one webhook attempt, as it is recorded."""

    delivery_id: uuid.UUID
    status: str
    next_attempt_at: datetime
    status_code: int | None = None
    error: str | None = None
    delivered_at: datetime | None = None
    dead_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeliveryFilter:
    department: str
    status: str | None = None
    subscription_id: uuid.UUID | None = None
    after: int = 0
    limit: int = 100


class DeliveryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_many(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            await self._session.execute(insert(Delivery), rows)

    async def lease_due(
        self, *, now: datetime, lease_until: datetime, limit: int
    ) -> Sequence[Delivery]:
        """Take up to ``limit`` deliveries that are due and first in their
        (subscription, enterprise) stream, and lease them to this worker.

        A later delivery of a stream is never taken while an earlier one is
        pending (even leased by another worker), which keeps each enterprise's
        changes in order per subscriber. SKIP LOCKED lets replicas share work.
        """
        candidate = aliased(Delivery, name="candidate")
        earlier = aliased(Delivery, name="earlier")
        blocked = (
            select(earlier.delivery_id)
            .where(
                earlier.subscription_id == candidate.subscription_id,
                earlier.uscc == candidate.uscc,
                earlier.status == "pending",
                earlier.seq < candidate.seq,
            )
            .exists()
        )
        heads = (
            select(candidate.delivery_id)
            .where(
                candidate.status == "pending",
                candidate.next_attempt_at <= now,
                or_(candidate.leased_until.is_(None), candidate.leased_until < now),
                ~blocked,
            )
            .order_by(candidate.next_attempt_at, candidate.seq)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        stmt = (
            update(Delivery)
            .where(Delivery.delivery_id.in_(heads.scalar_subquery()))
            .values(leased_until=lease_until, attempts=Delivery.attempts + 1)
            .returning(Delivery)
            .execution_options(populate_existing=True)
        )
        return (await self._session.execute(stmt)).scalars().all()

    async def settle(self, outcomes: Sequence[Settlement]) -> None:
        """Record attempts, one statement for the batch. A delivery no longer
        pending (cancelled, or redelivered meanwhile) is left as it is."""
        if not outcomes:
            return
        # Core, not ORM: an executemany with its own WHERE on each row.
        table = cast(Table, Delivery.__table__)
        stmt = (
            update(table)
            .where(table.c.delivery_id == bindparam("b_id"), table.c.status == "pending")
            .values(
                status=bindparam("b_status"),
                next_attempt_at=bindparam("b_next"),
                leased_until=None,
                last_status_code=bindparam("b_code"),
                last_error=bindparam("b_error"),
                delivered_at=bindparam("b_delivered"),
                dead_at=bindparam("b_dead"),
            )
        )
        await self._session.execute(
            stmt,
            [
                {"b_id": o.delivery_id, "b_status": o.status, "b_next": o.next_attempt_at,
                 "b_code": o.status_code, "b_error": o.error, "b_delivered": o.delivered_at,
                 "b_dead": o.dead_at}
                for o in outcomes
            ],
        )  # fmt: skip

    async def cancel_pending(self, subscription_id: uuid.UUID, now: datetime) -> None:
        await self._session.execute(
            update(Delivery)
            .where(Delivery.subscription_id == subscription_id, Delivery.status == "pending")
            .values(status="cancelled", leased_until=None, dead_at=now)
        )

    async def get(self, delivery_id: uuid.UUID, *, for_update: bool = False) -> Delivery | None:
        stmt = select(Delivery).where(Delivery.delivery_id == delivery_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (
            await self._session.execute(stmt.execution_options(populate_existing=True))
        ).scalar_one_or_none()

    async def list(self, query: DeliveryFilter) -> Sequence[Delivery]:
        stmt = select(Delivery).where(
            Delivery.department == query.department, Delivery.seq > query.after
        )
        if query.status is not None:
            stmt = stmt.where(Delivery.status == query.status)
        if query.subscription_id is not None:
            stmt = stmt.where(Delivery.subscription_id == query.subscription_id)
        stmt = stmt.order_by(Delivery.seq).limit(query.limit)
        return (await self._session.execute(stmt)).scalars().all()


@dataclass(frozen=True, slots=True)
class ReportCounts:
    department: str
    workflow: str
    opened: int
    on_time: int
    late: int
    open: int
    overdue: int
    claimed_late: int


class ReportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def coordination(
        self, *, start: datetime, end: datetime, today: date, department: str | None
    ) -> list[ReportCounts]:
        """Tasks opened in [start, end), per department and workflow, judged
        against their deadlines in China time; ``today`` decides what is overdue."""
        claimed_on = func.date(func.timezone(CHINA_ZONE, Task.claimed_at))
        done_on = func.date(func.timezone(CHINA_ZONE, Task.done_at))
        done = Task.status == "done"
        claimed_in_time = and_(Task.claimed_at.is_not(None), claimed_on <= Task.claim_due)
        on_time = and_(done, claimed_in_time, done_on <= Task.feedback_due)
        overdue = and_(
            Task.status != "done",
            or_(today > Task.feedback_due, and_(Task.status == "open", today > Task.claim_due)),
        )
        claimed_late = or_(
            and_(Task.claimed_at.is_not(None), claimed_on > Task.claim_due),
            and_(Task.claimed_at.is_(None), today > Task.claim_due),
        )

        def count_if(condition: Any) -> Any:
            return func.count().filter(condition)

        stmt = (
            select(
                Task.department,
                Task.type,
                func.count(),
                count_if(on_time),
                count_if(and_(done, ~on_time)),
                count_if(Task.status != "done"),
                count_if(overdue),
                count_if(claimed_late),
            )
            .where(Task.opened_at >= start, Task.opened_at < end)
            .group_by(Task.department, Task.type)
            .order_by(Task.department, Task.type)
        )
        if department is not None:
            stmt = stmt.where(Task.department == department)
        rows = await self._session.execute(stmt)
        return [ReportCounts(*row) for row in rows.all()]
