"""All of the ledger's SQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Table, and_, delete, func, or_, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ecips_ledger.models import (
    AuditEntry,
    EarlyRevocation,
    Enterprise,
    FiledRecord,
    RecordRevision,
)

WaitState = Literal["waiting", "filed", "all"]


@dataclass(frozen=True)
class WaitScope:
    """Which waiting records a question is about; bounds are [start, end)."""

    state: WaitState
    department: str | None = None
    received: tuple[datetime, datetime] | None = None
    occurred: tuple[date, date] | None = None


def _name_token(column: str) -> str:
    """SQL for a name as compared: NFKC-normalised, without whitespace."""
    return f"regexp_replace(normalize({column}, NFKC), '\\s', '', 'g')"


@dataclass(frozen=True)
class WaitingGroup:
    """Records waiting for one enterprise that has no registration yet."""

    uscc: str | None
    registration_number: str | None
    records: int
    departments: list[str]
    oldest: datetime | None


@dataclass(frozen=True)
class NameMismatch:
    record_id: uuid.UUID
    uscc: str
    department: str
    source_id: str
    category: str
    record_name: str
    enterprise_name: str


@dataclass(frozen=True)
class SharedSourceId:
    source_id: str
    departments: list[str]
    record_ids: list[uuid.UUID]


# Advisory-lock namespace (first int4 of the two-key form) for the ledger's
# per-record and per-enterprise locks.
LOCK_NAMESPACE = 0x1ED6E4


class LedgerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # --- locks -----------------------------------------------------------

    async def lock(self, keys: Sequence[str]) -> None:
        """Transaction-scoped locks, taken in the order given (callers keep
        one global order so two transactions never wait on each other).
        One statement: unnest yields the keys in array order."""
        if not keys:
            return
        await self._session.execute(
            text(
                "SELECT count(pg_advisory_xact_lock(:ns, hashtext(key))) "
                "FROM unnest(CAST(:keys AS text[])) AS key"
            ),
            {"ns": LOCK_NAMESPACE, "keys": list(keys)},
        )

    # --- records ---------------------------------------------------------

    async def add_revisions(self, rows: Sequence[dict[str, Any]]) -> None:
        """Keep revisions in the history (those already there stay as they are)."""
        if rows:
            await self._session.execute(
                insert(RecordRevision)
                .values(list(rows))
                .on_conflict_do_nothing(index_elements=["record_id", "revision"])
            )

    async def records_for_update(
        self, record_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, FiledRecord]:
        if not record_ids:
            return {}
        stmt = (
            select(FiledRecord)
            .where(FiledRecord.record_id.in_(list(record_ids)))
            .order_by(FiledRecord.record_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return {r.record_id: r for r in (await self._session.execute(stmt)).scalars()}

    async def take_early_revocations(
        self, record_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[str, datetime]]:
        """Revocations that overtook these records, removed as they are applied:
        record id → (reason, revoked_at)."""
        if not record_ids:
            return {}
        rows = await self._session.execute(
            delete(EarlyRevocation)
            .where(EarlyRevocation.record_id.in_(list(record_ids)))
            .returning(
                EarlyRevocation.record_id, EarlyRevocation.reason, EarlyRevocation.revoked_at
            )
        )
        return {row.record_id: (row.reason, row.revoked_at) for row in rows}

    async def get_record(
        self, record_id: uuid.UUID, *, for_update: bool = False
    ) -> FiledRecord | None:
        stmt = select(FiledRecord).where(FiledRecord.record_id == record_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (
            await self._session.execute(stmt.execution_options(populate_existing=True))
        ).scalar_one_or_none()

    def add_record(self, record: FiledRecord) -> None:
        """Written with the next flush (the next read, or the commit)."""
        self._session.add(record)

    async def remember_revocation(self, values: dict[str, Any]) -> None:
        await self._session.execute(
            insert(EarlyRevocation).values(**values).on_conflict_do_nothing()
        )

    async def unmatched_records(
        self, uscc: str, registration_number: str | None
    ) -> Sequence[FiledRecord]:
        """Records waiting for this enterprise, by USCC or by the old number."""
        match: ColumnElement[bool] = FiledRecord.uscc == uscc
        if registration_number:
            match = or_(
                match,
                and_(
                    FiledRecord.uscc.is_(None),
                    FiledRecord.registration_number == registration_number,
                ),
            )
        stmt = (
            select(FiledRecord)
            .where(FiledRecord.matched.is_(False), match)
            .order_by(FiledRecord.occurred_on, FiledRecord.accepted_at)
            .with_for_update()
        )
        return (await self._session.execute(stmt)).scalars().all()

    async def records_in_categories(
        self, uscc: str, categories: Collection[str]
    ) -> Sequence[FiledRecord]:
        stmt = select(FiledRecord).where(
            FiledRecord.uscc == uscc,
            FiledRecord.matched.is_(True),
            FiledRecord.category.in_(list(categories)),
        )
        return (await self._session.execute(stmt)).scalars().all()

    async def active_counts(self, uscc: str) -> dict[str, int]:
        rows = await self._session.execute(
            select(FiledRecord.category, func.count())
            .where(
                FiledRecord.uscc == uscc,
                FiledRecord.matched.is_(True),
                FiledRecord.status == "active",
            )
            .group_by(FiledRecord.category)
        )
        return {category: int(count) for category, count in rows.all()}

    @staticmethod
    def _wait_filters(scope: WaitScope) -> list[ColumnElement[bool]]:
        filters: list[ColumnElement[bool]] = [FiledRecord.unmatched_since.is_not(None)]
        if scope.state == "waiting":
            filters.append(FiledRecord.matched.is_(False))
        elif scope.state == "filed":
            filters.append(FiledRecord.matched.is_(True))
        if scope.department is not None:
            filters.append(FiledRecord.department == scope.department)
        if scope.received is not None:
            filters.append(FiledRecord.unmatched_since >= scope.received[0])
            filters.append(FiledRecord.unmatched_since < scope.received[1])
        if scope.occurred is not None:
            filters.append(FiledRecord.occurred_on >= scope.occurred[0])
            filters.append(FiledRecord.occurred_on < scope.occurred[1])
        return filters

    async def waits_page(
        self, scope: WaitScope, *, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> Sequence[FiledRecord]:
        """Records that waited (or wait) for their enterprise, longest wait first."""
        stmt = select(FiledRecord).where(*self._wait_filters(scope))
        if after is not None:
            stmt = stmt.where(
                tuple_(FiledRecord.unmatched_since, FiledRecord.record_id) > tuple_(*after)
            )
        stmt = stmt.order_by(FiledRecord.unmatched_since, FiledRecord.record_id).limit(limit)
        return (await self._session.execute(stmt)).scalars().all()

    async def waits_per_department(self, scope: WaitScope) -> dict[str, int]:
        rows = await self._session.execute(
            select(FiledRecord.department, func.count())
            .where(*self._wait_filters(scope))
            .group_by(FiledRecord.department)
            .order_by(FiledRecord.department)
        )
        return {dept: int(count) for dept, count in rows.all()}

    async def records_page(
        self,
        uscc: str,
        *,
        category: str | None,
        status: str | None,
        department: str | None,
        occurred_from: date | None,
        occurred_to: date | None,
        after: tuple[date, uuid.UUID] | None,
        limit: int,
    ) -> tuple[Sequence[FiledRecord], int]:
        """Filed records, newest first, keyset-paged; and how many match in all."""
        filters: list[ColumnElement[bool]] = [
            FiledRecord.uscc == uscc,
            FiledRecord.matched.is_(True),
        ]
        if category is not None:
            filters.append(FiledRecord.category == category)
        if status is not None:
            filters.append(FiledRecord.status == status)
        if department is not None:
            filters.append(FiledRecord.department == department)
        if occurred_from is not None:
            filters.append(FiledRecord.occurred_on >= occurred_from)
        if occurred_to is not None:
            filters.append(FiledRecord.occurred_on <= occurred_to)
        total = (await self._session.execute(select(func.count()).where(*filters))).scalar_one()
        stmt = select(FiledRecord).where(*filters)
        if after is not None:
            stmt = stmt.where(
                tuple_(FiledRecord.occurred_on, FiledRecord.record_id) < tuple_(*after)
            )
        stmt = stmt.order_by(FiledRecord.occurred_on.desc(), FiledRecord.record_id.desc()).limit(
            limit
        )
        return (await self._session.execute(stmt)).scalars().all(), int(total)

    async def revisions_of(
        self, record_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, list[RecordRevision]]:
        found: dict[uuid.UUID, list[RecordRevision]] = {rid: [] for rid in record_ids}
        if not record_ids:
            return found
        rows = await self._session.execute(
            select(RecordRevision)
            .where(RecordRevision.record_id.in_(list(record_ids)))
            .order_by(RecordRevision.record_id, RecordRevision.revision)
        )
        for revision in rows.scalars():
            found[revision.record_id].append(revision)
        return found

    # --- enterprises -----------------------------------------------------

    async def get_enterprise(self, uscc: str, *, for_update: bool = False) -> Enterprise | None:
        stmt = select(Enterprise).where(Enterprise.uscc == uscc)
        if for_update:
            stmt = stmt.with_for_update()
        return (
            await self._session.execute(stmt.execution_options(populate_existing=True))
        ).scalar_one_or_none()

    async def enterprises_for_update(self, usccs: Collection[str]) -> dict[str, Enterprise]:
        if not usccs:
            return {}
        stmt = (
            select(Enterprise)
            .where(Enterprise.uscc.in_(sorted(usccs)))
            .order_by(Enterprise.uscc)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return {e.uscc: e for e in (await self._session.execute(stmt)).scalars()}

    async def enterprises_in(self, usccs: Collection[str]) -> Sequence[Enterprise]:
        if not usccs:
            return []
        stmt = (
            select(Enterprise).where(Enterprise.uscc.in_(sorted(usccs))).order_by(Enterprise.uscc)
        )
        return (await self._session.execute(stmt)).scalars().all()

    async def usccs_for_numbers(self, numbers: Collection[str]) -> dict[str, str]:
        if not numbers:
            return {}
        rows = await self._session.execute(
            select(Enterprise.registration_number, Enterprise.uscc).where(
                Enterprise.registration_number.in_(sorted(numbers))
            )
        )
        return {number: uscc for number, uscc in rows if number is not None}

    async def add_audits(self, entries: Sequence[dict[str, Any]]) -> None:
        if entries:
            await self._session.execute(insert(AuditEntry), list(entries))

    async def uscc_for_number(self, registration_number: str) -> str | None:
        found: str | None = (
            await self._session.execute(
                select(Enterprise.uscc).where(Enterprise.registration_number == registration_number)
            )
        ).scalar_one_or_none()
        return found

    async def enterprise_by_number(self, registration_number: str) -> Enterprise | None:
        return (
            await self._session.execute(
                select(Enterprise).where(Enterprise.registration_number == registration_number)
            )
        ).scalar_one_or_none()

    async def outdated_enterprises(self, fold_version: int, *, after: str, limit: int) -> list[str]:
        rows = await self._session.execute(
            select(Enterprise.uscc)
            .where(Enterprise.fold_version < fold_version, Enterprise.uscc > after)
            .order_by(Enterprise.uscc)
            .limit(limit)
        )
        return list(rows.scalars())

    def add_enterprise(self, enterprise: Enterprise) -> None:
        """Written with the next flush (the next read, or the commit)."""
        self._session.add(enterprise)

    # --- audit -----------------------------------------------------------

    async def add_audit(self, entry: AuditEntry) -> None:
        self._session.add(entry)
        await self._session.flush()

    async def audit_page(
        self,
        *,
        department: str | None,
        uscc: str | None,
        before: int | None,
        limit: int,
    ) -> Sequence[AuditEntry]:
        stmt = select(AuditEntry)
        if department is not None:
            stmt = stmt.where(AuditEntry.department == department)
        if uscc is not None:
            stmt = stmt.where(AuditEntry.uscc == uscc)
        if before is not None:
            stmt = stmt.where(AuditEntry.id < before)
        stmt = stmt.order_by(AuditEntry.id.desc()).limit(limit)
        return (await self._session.execute(stmt)).scalars().all()

    # --- data quality ----------------------------------------------------

    async def waiting_groups(self, *, limit: int) -> tuple[Sequence[WaitingGroup], int]:
        """USCCs (or old numbers) that waiting records name but no registration
        created yet, longest wait first; and how many there are."""
        key = func.coalesce(FiledRecord.uscc, "#" + FiledRecord.registration_number)
        waiting = FiledRecord.matched.is_(False)
        total = (
            await self._session.execute(select(func.count(func.distinct(key))).where(waiting))
        ).scalar_one()
        rows = await self._session.execute(
            select(
                FiledRecord.uscc,
                func.min(FiledRecord.registration_number),
                func.count(),
                func.array_agg(func.distinct(FiledRecord.department)),
                func.min(FiledRecord.unmatched_since),
            )
            .where(waiting)
            .group_by(key, FiledRecord.uscc)
            .order_by(func.min(FiledRecord.unmatched_since), key)
            .limit(limit)
        )
        groups = [
            WaitingGroup(
                uscc=uscc,
                registration_number=None if uscc else number,
                records=int(count),
                departments=sorted(departments),
                oldest=oldest,
            )
            for uscc, number, count, departments, oldest in rows.all()
        ]
        return groups, int(total)

    async def overdue_waits(
        self, *, waiting_since_before: datetime, limit: int
    ) -> tuple[Sequence[FiledRecord], int]:
        filters = [
            FiledRecord.matched.is_(False),
            FiledRecord.unmatched_since < waiting_since_before,
        ]
        total = (await self._session.execute(select(func.count()).where(*filters))).scalar_one()
        rows = await self._session.execute(
            select(FiledRecord)
            .where(*filters)
            .order_by(FiledRecord.unmatched_since, FiledRecord.record_id)
            .limit(limit)
        )
        return rows.scalars().all(), int(total)

    async def unregistered_enterprises(self, *, limit: int) -> tuple[Sequence[Enterprise], int]:
        """Enterprises whose every registration record was revoked."""
        condition = Enterprise.registered.is_(False)
        total = (await self._session.execute(select(func.count()).where(condition))).scalar_one()
        rows = await self._session.execute(
            select(Enterprise).where(condition).order_by(Enterprise.uscc).limit(limit)
        )
        return rows.scalars().all(), int(total)

    async def name_mismatches(self, *, limit: int) -> tuple[Sequence[NameMismatch], int]:
        """Active filed records naming the enterprise by neither its name nor a
        former name (compared as ingest compares them: NFKC, without spaces,
        so ``（集团）`` = ``(集团)``)."""
        record_name = _name_token("r.enterprise_name")
        where = f"""
            FROM ledger.records AS r
            JOIN ledger.enterprises AS e ON e.uscc = r.uscc
            WHERE r.matched AND r.status = 'active'
              AND {record_name} <> {_name_token("e.name")}
              AND NOT EXISTS (
                  SELECT 1 FROM jsonb_array_elements(e.former_names) AS f
                  WHERE {_name_token("f->>'name'")} = {record_name}
              )
        """
        total = (await self._session.execute(text("SELECT count(*) " + where))).scalar_one()
        rows = await self._session.execute(
            text(
                "SELECT r.record_id, r.uscc, r.department, r.source_id, r.category, "
                "r.enterprise_name, e.name " + where + " ORDER BY r.uscc, r.record_id LIMIT :limit"
            ),
            {"limit": limit},
        )
        return [NameMismatch(*row) for row in rows.all()], int(total)

    async def shared_source_ids(self, *, limit: int) -> tuple[Sequence[SharedSourceId], int]:
        """Source ids used by more than one department."""
        shared = (
            select(FiledRecord.source_id)
            .group_by(FiledRecord.source_id)
            .having(func.count(func.distinct(FiledRecord.department)) > 1)
        )
        total = (
            await self._session.execute(select(func.count()).select_from(shared.subquery()))
        ).scalar_one()
        rows = await self._session.execute(
            select(
                FiledRecord.source_id,
                func.array_agg(func.distinct(FiledRecord.department)),
                func.array_agg(FiledRecord.record_id),
            )
            .group_by(FiledRecord.source_id)
            .having(func.count(func.distinct(FiledRecord.department)) > 1)
            .order_by(FiledRecord.source_id)
            .limit(limit)
        )
        return [
            SharedSourceId(source_id, sorted(departments), sorted(record_ids, key=str))
            for source_id, departments, record_ids in rows.all()
        ], int(total)

    async def long_abnormal_listings(
        self, *, listed_on_or_before: date, limit: int
    ) -> tuple[Sequence[Enterprise], int]:
        """Listed as abnormal since the given day or earlier, and not (yet) on
        the serious-illegal list."""
        condition = and_(
            Enterprise.abnormal_operation.is_(True),
            Enterprise.abnormal_operation_since <= listed_on_or_before,
            Enterprise.serious_illegal.is_(False),
        )
        total = (await self._session.execute(select(func.count()).where(condition))).scalar_one()
        rows = await self._session.execute(
            select(Enterprise)
            .where(condition)
            .order_by(Enterprise.abnormal_operation_since, Enterprise.uscc)
            .limit(limit)
        )
        return rows.scalars().all(), int(total)

    # --- snapshot --------------------------------------------------------

    async def last_outbox_seq(self, outbox: Table) -> int:
        return int(
            (
                await self._session.execute(select(func.coalesce(func.max(outbox.c.seq), 0)))
            ).scalar_one()
        )

    async def enterprise_count(self) -> int:
        return int((await self._session.execute(select(func.count(Enterprise.uscc)))).scalar_one())

    async def all_enterprises(self, fetch_size: int) -> AsyncIterator[Enterprise]:
        result = await self._session.stream_scalars(
            select(Enterprise).order_by(Enterprise.uscc).execution_options(yield_per=fetch_size)
        )
        async for enterprise in result:
            yield enterprise

    async def all_filed_records(self, fetch_size: int) -> AsyncIterator[FiledRecord]:
        result = await self._session.stream_scalars(
            select(FiledRecord)
            .where(FiledRecord.matched.is_(True))
            .order_by(FiledRecord.uscc, FiledRecord.record_id)
            .execution_options(yield_per=fetch_size)
        )
        async for record in result:
            yield record
