"""Time-driven evaluation: every enterprise carries the day its answer may
change with no new record (a fixed period ends, a delay such as "listed for
three years" runs out, a year turns), and this job re-evaluates the ones
whose day has come. Missed days are caught up: "due" means on or before today."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from ecips_common.db import Database
from ecips_rules.registry import CatalogueRegistry
from ecips_rules.repository import RulesRepository
from ecips_rules.service import EvaluationService
from ecips_rules.variables import china_today

logger = logging.getLogger("ecips.rules")


class Scheduler:
    def __init__(
        self,
        database: Database,
        registry: CatalogueRegistry,
        *,
        clock: Callable[[], datetime],
        batch_size: int = 500,
    ) -> None:
        self._db = database
        self._registry = registry
        self._clock = clock
        self._batch = batch_size

    async def run_due(self) -> int:
        """Re-evaluate every enterprise due today; returns how many."""
        now = self._clock()
        today = china_today(now)
        done: set[str] = set()
        while True:
            async with self._db.read_only() as session:
                due = await RulesRepository(session).due_enterprises(today, self._batch)
            fresh = [u for u in due if u not in done]
            if not fresh:
                # Nothing due, or only enterprises this pass already handled
                # (one that could not be decided stays due for the next pass).
                break
            async with self._db.unit_of_work() as uow:
                await EvaluationService(uow, self._registry, now=now).reevaluate(fresh)
            done.update(fresh)
        if done:
            logger.info("scheduled evaluations", extra={"count": len(done), "day": str(today)})
        return len(done)

    async def run(self, interval: float, also: Callable[[], Awaitable[None]] | None = None) -> None:
        """Every ``interval`` seconds: the due enterprises, then ``also``."""
        while True:
            try:
                await self.run_due()
                if also is not None:
                    await also()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("scheduled evaluation failed; retrying")
            await asyncio.sleep(interval)
