"""Engine, sessions and the unit of work that commits in one place."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import URL, insert, make_url, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from ecips_common.events import EventPayload
from ecips_common.outbox_table import OutboxTables


def asyncpg_dsn(database_url: str) -> str:
    """The plain libpq-style DSN asyncpg wants, from an SQLAlchemy URL."""
    url: URL = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def create_engine(database_url: str, *, application_name: str, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"server_settings": {"application_name": application_name}},
    )


@dataclass(slots=True)
class PendingEvent:
    payload: EventPayload
    subject: str
    partition_key: str


@dataclass(slots=True)
class UnitOfWork:
    """One business transaction: state changes and the events they cause.

    Services and repositories work through ``session`` and ``emit``; only the
    wrapper that opened the unit (a request or a consumed message) commits.
    """

    session: AsyncSession
    tables: OutboxTables
    pending: list[PendingEvent] = field(default_factory=list)

    def emit(
        self, payload: EventPayload, *, subject: str, partition_key: str | None = None
    ) -> None:
        self.pending.append(PendingEvent(payload, subject, partition_key or subject))

    async def _flush_outbox(self) -> None:
        if not self.pending:
            return
        # Serialise outbox writers until commit so sequence order equals commit
        # order: a change-feed reader resuming "after N" can then never skip a
        # row that commits later with a smaller number.
        await self.session.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": self.tables.lock_key}
        )
        rows: list[dict[str, Any]] = [
            {
                "topic": p.payload.topic,
                "event_type": p.payload.event_type,
                "subject": p.subject,
                "partition_key": p.partition_key,
                "data": p.payload.model_dump(mode="json"),
            }
            for p in self.pending
        ]
        await self.session.execute(insert(self.tables.outbox), rows)
        await self.session.execute(text(f'NOTIFY "{self.tables.channel}"'))
        self.pending.clear()

    async def commit(self) -> None:
        await self._flush_outbox()
        await self.session.commit()

    async def rollback(self) -> None:
        self.pending.clear()
        await self.session.rollback()


class Database:
    """The service's engine plus factories for sessions and units of work."""

    def __init__(self, engine: AsyncEngine, tables: OutboxTables) -> None:
        self.engine = engine
        self.tables = tables
        self.sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=True)

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        """Commit when the block ends normally, roll back when it raises."""
        async with self.sessions() as session:
            uow = UnitOfWork(session, self.tables)
            try:
                yield uow
            except BaseException:
                await uow.rollback()
                raise
            await uow.commit()

    @asynccontextmanager
    async def read_only(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
