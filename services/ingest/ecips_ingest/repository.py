"""All of ingest's SQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ecips_ingest.models import Record, RecordRevision


class RecordRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock_or_create(self, department: str, source_id: str, category: str) -> Record:
        """The record for (department, source_id), created if new, locked for this transaction.

        Concurrent identical submissions serialise here: the loser of the
        insert race waits on the row lock and then sees the winner's revision.
        """
        await self._session.execute(
            insert(Record)
            .values(
                record_id=uuid.uuid4(),
                department=department,
                source_id=source_id,
                category=category,
                current_revision=0,
                status="accepted",
            )
            .on_conflict_do_nothing(constraint="uq_records_department_source")
        )
        record = (
            await self._session.execute(
                select(Record)
                .where(Record.department == department, Record.source_id == source_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).scalar_one()
        return record

    async def get(self, record_id: uuid.UUID, *, for_update: bool = False) -> Record | None:
        stmt = select(Record).where(Record.record_id == record_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self._session.execute(stmt)).scalar_one_or_none()

    async def add_revision(self, revision: RecordRevision) -> None:
        self._session.add(revision)
        await self._session.flush()

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
