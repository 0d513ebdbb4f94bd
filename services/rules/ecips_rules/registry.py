"""Which catalogue is in force: the versions kept in the database, compiled
once per process, and the enacted one."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from ecips_common.db import Database
from ecips_rules.catalogue import Catalogue, CatalogueError, parse_catalogue
from ecips_rules.models import CatalogueVersion
from ecips_rules.repository import RulesRepository

logger = logging.getLogger("ecips.rules")


class CatalogueRegistry:
    """Compiled catalogue versions by number, and the one in force here.

    Every evaluation asks :meth:`in_force` inside its transaction, which reads
    the enacted number under a share lock: an enactment (which switches it
    under an update lock) and the evaluations never overlap, and a process
    that has not heard of a new version yet loads it there and then.
    """

    def __init__(self, seed: Catalogue) -> None:
        self.seed = seed
        self._compiled: dict[int, Catalogue] = {}
        self._current: Catalogue = seed

    @property
    def current(self) -> Catalogue:
        """The catalogue this process last saw in force (for read-only answers)."""
        return self._current

    async def in_force(self, session: AsyncSession) -> Catalogue:
        number = await RulesRepository(session).current_catalogue(lock="share")
        if number is None:
            return self._current
        catalogue = await self.get(session, number)
        self._current = catalogue
        return catalogue

    async def get(self, session: AsyncSession, number: int) -> Catalogue:
        """A stored version, compiled (cached: versions never change)."""
        found = self._compiled.get(number)
        if found is not None:
            return found
        version = await RulesRepository(session).version(number)
        if version is None:
            raise LookupError(f"catalogue version {number} does not exist")
        try:
            catalogue = parse_catalogue(
                version.document, number=number, source=f"catalogue version {number}"
            )
        except CatalogueError:
            # Stored versions were valid when written; the variables may have
            # changed since. Fail loudly rather than evaluate something else.
            logger.exception(
                "stored catalogue version no longer compiles", extra={"number": number}
            )
            raise
        self._compiled[number] = catalogue
        return catalogue

    def remember(self, catalogue: Catalogue) -> None:
        self._compiled[catalogue.number] = catalogue

    async def refresh(self, database: Database) -> bool:
        """Reload the enacted version; True when it changed."""
        async with database.read_only() as session:
            number = await RulesRepository(session).current_catalogue()
            if number is None or (number == self._current.number and number in self._compiled):
                return False
            self._current = await self.get(session, number)
        logger.info("catalogue in force", extra={"number": number})
        return True

    async def seed_database(self, database: Database, *, now: datetime) -> None:
        """Store the shipped catalogue as version 1 (enacted) on first start."""
        async with database.unit_of_work() as uow:
            repo = RulesRepository(uow.session)
            await repo.lock_versions()
            if await repo.current_catalogue() is None:
                added = await repo.add_version(
                    CatalogueVersion(
                        number=self.seed.number,
                        document=self.seed.document(),
                        note="The catalogue shipped with the service (seed).",
                        status="enacted",
                        based_on=None,
                        created_at=now,
                        created_by="seed",
                        enacted_at=now,
                        enacted_by="seed",
                    )
                )
                if added:
                    await repo.set_current_catalogue(self.seed.number, now)
                    logger.info("catalogue seeded", extra={"number": self.seed.number})
        await self.refresh(database)
        async with database.read_only() as session:
            first = await RulesRepository(session).version(self.seed.number)
        if first is not None and first.document != self.seed.document():
            # The database is the record once written: editing the shipped file
            # later changes nothing; new versions go through the API.
            logger.warning(
                "the shipped catalogue differs from the stored version 1 and is not used",
                extra={"in_force": self._current.number},
            )
