"""All of coordination's SQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ecips_coordination.models import Task


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
        task_id = (
            await self._session.execute(
                insert(Task)
                .values(**values)
                .on_conflict_do_nothing(index_elements=["idempotency_key"])
                .returning(Task.task_id)
            )
        ).scalar_one_or_none()
        if task_id is None:
            return None
        return await self.get(task_id)

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
