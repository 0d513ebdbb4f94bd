"""All of the ledger's SQL."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ecips_ledger.models import (
    AuditEntry,
    EarlyRevocation,
    Enterprise,
    FiledRecord,
    RecordRevision,
)

# Advisory-lock namespace (first int4 of the two-key form) for the ledger's
# per-record and per-enterprise locks.
LOCK_NAMESPACE = 0x1ED6E4


class LedgerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # --- locks -----------------------------------------------------------

    async def lock(self, keys: Sequence[str]) -> None:
        """Transaction-scoped locks, taken in the order given (callers keep
        one global order so two transactions never wait on each other)."""
        for key in keys:
            await self._session.execute(
                text("SELECT pg_advisory_xact_lock(:ns, hashtext(:key))"),
                {"ns": LOCK_NAMESPACE, "key": key},
            )

    # --- records ---------------------------------------------------------

    async def add_revision(self, values: dict[str, Any]) -> bool:
        """Keep a revision in the history; False if it was already there."""
        inserted = (
            await self._session.execute(
                insert(RecordRevision)
                .values(**values)
                .on_conflict_do_nothing(index_elements=["record_id", "revision"])
                .returning(RecordRevision.revision)
            )
        ).first()
        return inserted is not None

    async def get_record(
        self, record_id: uuid.UUID, *, for_update: bool = False
    ) -> FiledRecord | None:
        stmt = select(FiledRecord).where(FiledRecord.record_id == record_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (
            await self._session.execute(stmt.execution_options(populate_existing=True))
        ).scalar_one_or_none()

    async def add_record(self, record: FiledRecord) -> None:
        self._session.add(record)
        await self._session.flush()

    async def take_early_revocation(self, record_id: uuid.UUID) -> EarlyRevocation | None:
        early = await self._session.get(EarlyRevocation, record_id)
        if early is not None:
            await self._session.delete(early)
            await self._session.flush()
        return early

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

    async def records_page(
        self,
        uscc: str,
        *,
        category: str | None,
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

    async def uscc_for_number(self, registration_number: str) -> str | None:
        found: str | None = (
            await self._session.execute(
                select(Enterprise.uscc).where(Enterprise.registration_number == registration_number)
            )
        ).scalar_one_or_none()
        return found

    async def add_enterprise(self, enterprise: Enterprise) -> None:
        self._session.add(enterprise)
        await self._session.flush()

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
