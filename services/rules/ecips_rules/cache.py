"""The credit-check cache: each known enterprise's active measures, kept until
an event says they changed (never expired by time: answers filter the
measures by date when they are given).

Invalidation follows the service's own outbox, the events every change of a
punishment writes in its transaction: a follower reads the outbox after its
cursor (woken by the outbox's NOTIFY, polling as a fallback) and drops the
subjects' entries, in every replica. Enterprises the service has never seen
are not cached, so the first snapshot of one needs no event to be seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg
from prometheus_client import Counter

from ecips_common.db import Database, asyncpg_dsn
from ecips_rules.registry import CatalogueRegistry
from ecips_rules.repository import RulesRepository

logger = logging.getLogger("ecips.rules")

CACHE_LOOKUPS = Counter("ecips_rules_check_cache_total", "Credit-check cache lookups", ["outcome"])


@dataclass(frozen=True, slots=True)
class MeasureRow:
    """One active measure of an enterprise for one scenario."""

    scenario: str
    kind: str
    rule_id: str
    rule_title: str | None
    measure: str
    title: str
    department: str
    legal_basis: str
    since: date
    until: date | None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> MeasureRow:
        return cls(
            record["scenario"],
            record["kind"],
            record["rule_id"],
            record["rule_title"],
            record["measure"],
            record["title"],
            record["department"],
            record["legal_basis"],
            record["since"],
            record["until"],
        )


class CheckCache:
    """USCC -> active measures. ``generation`` grows with every invalidation:
    a reader that loaded rows from the database stores them only if no
    invalidation happened since it started reading, so an answer read just
    before a change committed cannot outlive the change's event."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self.generation = 0
        self._entries: dict[str, tuple[MeasureRow, ...]] = {}
        # Entries are kept only while a follower watches the outbox.
        self.following = False

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0 and self.following

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, uscc: str) -> tuple[MeasureRow, ...] | None:
        if not self.enabled:
            return None
        found = self._entries.get(uscc)
        CACHE_LOOKUPS.labels("hit" if found is not None else "miss").inc()
        return found

    def put_many(self, entries: Mapping[str, tuple[MeasureRow, ...]], generation: int) -> None:
        if not self.enabled or generation != self.generation:
            return
        overflow = len(self._entries) + len(entries) - self.max_entries
        if overflow > 0:
            # Oldest first (dicts keep insertion order); a tenth more to make room.
            for key in list(self._entries)[: overflow + self.max_entries // 10]:
                del self._entries[key]
        self._entries.update(entries)

    def invalidate(self, usccs: Iterable[str]) -> None:
        self.generation += 1
        for uscc in usccs:
            self._entries.pop(uscc, None)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()


class CacheFollower:
    """Drops cache entries as the outbox records changes, and reloads the
    catalogue when another replica enacted a new one."""

    def __init__(
        self,
        database: Database,
        cache: CheckCache,
        registry: CatalogueRegistry,
        *,
        poll_interval: float = 1.0,
        on_catalogue_change: Callable[[], None] | None = None,
    ) -> None:
        self._db = database
        self._cache = cache
        self._registry = registry
        self._poll_interval = poll_interval
        self._wakeup = asyncio.Event()
        self._listener: asyncpg.Connection | None = None
        self._on_catalogue_change = on_catalogue_change
        self.cursor: int | None = None

    async def start(self) -> None:
        async with self._db.read_only() as session:
            self.cursor = await RulesRepository(session).last_event_sequence()
        # Whatever a reader loaded before the cursor was set must not be kept.
        self._cache.clear()
        self._cache.following = True

    async def catch_up(self) -> int:
        """Apply the outbox after the cursor; returns how many events it read."""
        if self.cursor is None:
            await self.start()
        assert self.cursor is not None
        total = 0
        while True:
            async with self._db.read_only() as session:
                events = await RulesRepository(session).event_subjects_after(self.cursor, 5000)
            if not events:
                break
            self._cache.invalidate(subject for _, subject in events)
            self.cursor = events[-1][0]
            total += len(events)
        if await self._registry.refresh(self._db):
            self._cache.clear()
            if self._on_catalogue_change is not None:
                self._on_catalogue_change()
        return total

    async def _listen(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        dsn = asyncpg_dsn(self._db.engine.url.render_as_string(hide_password=False))
        try:
            connection = await asyncpg.connect(dsn)
            await connection.add_listener(self._db.tables.channel, lambda *_: self._wakeup.set())
            self._listener = connection
        except (OSError, asyncpg.PostgresError) as exc:
            logger.warning("cache LISTEN unavailable, polling", extra={"error": str(exc)})

    async def run(self) -> None:
        while True:
            try:
                await self._listen()
                self._wakeup.clear()
                await self.catch_up()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self._poll_interval)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Entries may now be stale: start again from nothing.
                logger.exception("check cache follower failed; cache cleared")
                self._cache.following = False
                self._cache.clear()
                self.cursor = None
                await asyncio.sleep(self._poll_interval)

    async def close(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
