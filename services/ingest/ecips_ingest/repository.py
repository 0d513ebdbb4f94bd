"""All of ingest's SQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Integer, String, Table, and_, bindparam, delete, func, or_, select, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID, insert
from sqlalchemy.ext.asyncio import AsyncSession

from ecips_ingest.models import (
    Batch,
    BatchFileChunk,
    BatchRowIssue,
    NilReturn,
    Record,
    RecordRevision,
    SubmissionCount,
)


@dataclass(slots=True)
class RecordHead:
    """What accepting a submission needs to know (and change) of its record."""

    record_id: uuid.UUID
    department: str
    source_id: str
    category: str
    current_revision: int
    content_hash: str | None
    status: str
    changed: bool = False


RECORDS = cast(Table, Record.__table__)
REVISIONS = cast(Table, RecordRevision.__table__)
ISSUES = cast(Table, BatchRowIssue.__table__)
COUNTS = cast(Table, SubmissionCount.__table__)


_SAVE_HEADS = text(
    "UPDATE ingest.records AS r "
    "SET current_revision = v.revision, content_hash = v.hash, updated_at = :now "
    "FROM unnest(:ids, :revisions, :hashes) AS v(id, revision, hash) "
    "WHERE r.record_id = v.id"
).bindparams(
    bindparam("ids", type_=ARRAY(UUID(as_uuid=True))),
    bindparam("revisions", type_=ARRAY(Integer)),
    bindparam("hashes", type_=ARRAY(String)),
)


class RecordRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock_or_create_many(
        self, department: str, items: Iterable[tuple[str, str]]
    ) -> dict[str, RecordHead]:
        """The records for (department, source_id), created if new, locked for this transaction.

        Rows are inserted and locked in source_id order, so two transactions
        touching overlapping records wait for each other instead of deadlocking;
        the loser of an insert race waits on the row lock and then sees the
        winner's revision.
        """
        first_category: dict[str, str] = {}
        for source_id, category in items:
            first_category.setdefault(source_id, category)
        ordered = sorted(first_category)
        if not ordered:
            return {}
        # Core executemany: one cached statement, sent in multi-row batches, in order.
        await self._session.execute(
            insert(RECORDS).on_conflict_do_nothing(constraint="uq_records_department_source"),
            [
                {
                    "record_id": uuid.uuid4(),
                    "department": department,
                    "source_id": source_id,
                    "category": first_category[source_id],
                    "current_revision": 0,
                    "status": "accepted",
                }
                for source_id in ordered
            ],
        )
        rows = await self._session.execute(
            select(
                RECORDS.c.record_id,
                RECORDS.c.source_id,
                RECORDS.c.category,
                RECORDS.c.current_revision,
                RECORDS.c.content_hash,
                RECORDS.c.status,
            )
            .where(
                RECORDS.c.department == department,
                RECORDS.c.source_id == func.any(bindparam("ids", type_=ARRAY(String))),
            )
            .order_by(RECORDS.c.source_id)
            .with_for_update(),
            {"ids": ordered},
        )
        return {row.source_id: RecordHead(department=department, **row._asdict()) for row in rows}

    async def save_heads(self, heads: Iterable[RecordHead], now: datetime) -> None:
        """Write the new revision numbers and content hashes in one statement."""
        changed = [h for h in heads if h.changed]
        if not changed:
            return
        await self._session.execute(
            _SAVE_HEADS,
            {
                "ids": [h.record_id for h in changed],
                "revisions": [h.current_revision for h in changed],
                "hashes": [h.content_hash for h in changed],
                "now": now,
            },
        )

    async def get(self, record_id: uuid.UUID, *, for_update: bool = False) -> Record | None:
        stmt = select(Record).where(Record.record_id == record_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self._session.execute(stmt)).scalar_one_or_none()

    async def add_revisions(self, revisions: Sequence[dict[str, Any]]) -> None:
        if revisions:
            await self._session.execute(insert(REVISIONS), list(revisions))

    async def get_revision(self, record_id: uuid.UUID, revision: int) -> RecordRevision | None:
        return await self._session.get(RecordRevision, (record_id, revision))

    async def revisions(self, record_id: uuid.UUID) -> Sequence[RecordRevision]:
        return (
            (
                await self._session.execute(
                    select(RecordRevision)
                    .where(RecordRevision.record_id == record_id)
                    .order_by(RecordRevision.revision)
                )
            )
            .scalars()
            .all()
        )


class BatchRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, batch: Batch) -> None:
        self._session.add(batch)
        await self._session.flush()

    async def add_chunk(self, batch_id: uuid.UUID, seq: int, content: bytes) -> None:
        await self._session.execute(
            insert(BatchFileChunk).values(batch_id=batch_id, seq=seq, content=content)
        )

    async def get(self, batch_id: uuid.UUID) -> Batch | None:
        return await self._session.get(Batch, batch_id)

    async def page(
        self, department: str, *, before: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> Sequence[Batch]:
        stmt = select(Batch).where(Batch.department == department)
        if before is not None:
            stmt = stmt.where(
                or_(
                    Batch.created_at < before[0],
                    and_(Batch.created_at == before[0], Batch.batch_id < before[1]),
                )
            )
        stmt = stmt.order_by(Batch.created_at.desc(), Batch.batch_id.desc()).limit(limit)
        return (await self._session.execute(stmt)).scalars().all()

    async def claim(self, worker: str, lease: timedelta, now: datetime) -> Batch | None:
        """Take the oldest batch nobody holds a live lease on; the lease is ours until renewed."""
        batch = (
            await self._session.execute(
                select(Batch)
                .where(
                    Batch.status.in_(("queued", "processing")),
                    or_(Batch.lease_until.is_(None), Batch.lease_until < now),
                )
                .order_by(Batch.created_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
        ).scalar_one_or_none()
        if batch is None:
            return None
        batch.status = "processing"
        batch.worker = worker
        batch.lease_until = now + lease
        batch.attempts += 1
        batch.started_at = batch.started_at or now
        await self._session.flush()
        return batch

    async def lock_held(self, batch_id: uuid.UUID, worker: str) -> Batch | None:
        """The batch, locked, if this worker still holds it; None if the lease was lost."""
        batch = (
            await self._session.execute(
                select(Batch)
                .where(Batch.batch_id == batch_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).scalar_one_or_none()
        if batch is None or batch.worker != worker or batch.status != "processing":
            return None
        return batch

    async def finish(
        self, batch: Batch, now: datetime, *, failure: tuple[str, str] | None = None
    ) -> None:
        """Done (or failed): release the lease and drop the stored file."""
        batch.status = "failed" if failure else "done"
        if failure:
            batch.failure_code, batch.failure_detail = failure
        batch.lease_until = None
        batch.finished_at = now
        await self._session.flush()
        await self.delete_file(batch.batch_id)

    async def chunk(self, batch_id: uuid.UUID, seq: int) -> bytes | None:
        return (
            await self._session.execute(
                select(BatchFileChunk.content).where(
                    BatchFileChunk.batch_id == batch_id, BatchFileChunk.seq == seq
                )
            )
        ).scalar_one_or_none()

    async def delete_file(self, batch_id: uuid.UUID) -> None:
        await self._session.execute(
            delete(BatchFileChunk).where(BatchFileChunk.batch_id == batch_id)
        )

    async def add_issues(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            await self._session.execute(insert(ISSUES), list(rows))

    async def issues(
        self, batch_id: uuid.UUID, severity: str, limit: int
    ) -> Sequence[BatchRowIssue]:
        return (
            (
                await self._session.execute(
                    select(BatchRowIssue)
                    .where(BatchRowIssue.batch_id == batch_id, BatchRowIssue.severity == severity)
                    .order_by(BatchRowIssue.row_number)
                    .limit(limit)
                )
            )
            .scalars()
            .all()
        )

    async def stream_issues(
        self, batch_id: uuid.UUID, severity: str
    ) -> AsyncIterator[BatchRowIssue]:
        """Every issue in row order, fetched in pages (an errors file can be long)."""
        result = await self._session.stream(
            select(BatchRowIssue)
            .where(BatchRowIssue.batch_id == batch_id, BatchRowIssue.severity == severity)
            .order_by(BatchRowIssue.row_number)
            .execution_options(yield_per=1000)
        )
        async for issue in result.scalars():
            yield issue


@dataclass(frozen=True, slots=True, order=True)
class CountKey:
    department: str
    period: str
    category: str
    outcome: str
    code: str = ""


class CountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, counts: dict[CountKey, int], at: datetime) -> None:
        """Add to the month's counters (rows locked in key order: no deadlocks)."""
        if not counts:
            return
        rows = [
            {
                "department": k.department,
                "period": k.period,
                "category": k.category,
                "outcome": k.outcome,
                "code": k.code,
                "rows": n,
                "last_at": at,
            }
            for k, n in sorted(counts.items())
        ]
        stmt = insert(COUNTS)
        await self._session.execute(
            stmt.on_conflict_do_update(
                index_elements=["department", "period", "category", "outcome", "code"],
                set_={
                    "rows": COUNTS.c.rows + stmt.excluded.rows,
                    "last_at": func.greatest(COUNTS.c.last_at, stmt.excluded.last_at),
                },
            ),
            rows,
        )

    async def for_period(self, period: str) -> Sequence[SubmissionCount]:
        return (
            (
                await self._session.execute(
                    select(SubmissionCount).where(SubmissionCount.period == period)
                )
            )
            .scalars()
            .all()
        )


@dataclass(frozen=True, slots=True)
class FirstSubmissions:
    department: str
    category: str
    records: int
    late: int
    last_at: datetime


class ComplianceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def first_submissions(
        self, start: date, end: date, deadline: datetime
    ) -> list[FirstSubmissions]:
        """Per department and category: records of [start, end) by occurred_on, counted
        by their first revision, and how many of those arrived after the deadline."""
        first = RecordRevision
        rows = (
            await self._session.execute(
                select(
                    Record.department,
                    Record.category,
                    func.count(),
                    func.count().filter(first.accepted_at > deadline),
                    func.max(first.accepted_at),
                )
                .join(first, and_(first.record_id == Record.record_id, first.revision == 1))
                .where(first.occurred_on >= start, first.occurred_on < end)
                .group_by(Record.department, Record.category)
            )
        ).all()
        return [FirstSubmissions(d, c, n, late, last) for d, c, n, late, last in rows]

    async def nil_returns(self, period: str, department: str | None = None) -> Sequence[NilReturn]:
        stmt = select(NilReturn).where(NilReturn.period == period)
        if department is not None:
            stmt = stmt.where(NilReturn.department == department)
        return (
            (await self._session.execute(stmt.order_by(NilReturn.department, NilReturn.category)))
            .scalars()
            .all()
        )

    async def declare_nil(
        self, department: str, period: str, categories: Iterable[str], at: datetime
    ) -> None:
        rows = [
            {"department": department, "period": period, "category": c, "declared_at": at}
            for c in sorted(set(categories))
        ]
        await self._session.execute(insert(NilReturn).values(rows).on_conflict_do_nothing())
