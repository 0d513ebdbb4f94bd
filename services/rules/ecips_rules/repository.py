"""All of the rules service's SQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, delete, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ecips_rules.models import ActiveMeasure, Enterprise, Punishment

# Advisory-lock class for "one enterprise is being evaluated" (two-key form,
# so it cannot collide with the outbox's single-key lock).
_ENTERPRISE_LOCK_CLASS = 5005


@dataclass(frozen=True, slots=True)
class RestrictionRow:
    uscc: str
    enterprise_version: int
    rule_id: str | None
    measure: str | None
    title: str | None
    department: str | None
    legal_basis: str | None
    since: date | None
    until: date | None


class RulesRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock_enterprise(self, uscc: str) -> None:
        """Serialise evaluations of one enterprise until the transaction ends
        (the Kafka consumer and the change-feed follower may race)."""
        await self._session.execute(
            select(func.pg_advisory_xact_lock(_ENTERPRISE_LOCK_CLASS, func.hashtext(uscc)))
        )

    async def get_enterprise(self, uscc: str) -> Enterprise | None:
        return await self._session.get(Enterprise, uscc, populate_existing=True)

    async def save_enterprise(
        self,
        *,
        uscc: str,
        name: str,
        version: int,
        state: dict[str, Any],
        matched_rules: list[str],
        evaluated_at: datetime,
    ) -> None:
        values = {
            "uscc": uscc,
            "name": name,
            "version": version,
            "state": state,
            "matched_rules": matched_rules,
            "evaluated_at": evaluated_at,
        }
        stmt = insert(Enterprise).values(**values)
        await self._session.execute(
            stmt.on_conflict_do_update(
                index_elements=[Enterprise.uscc],
                set_={k: stmt.excluded[k] for k in values if k != "uscc"},
            )
        )

    async def active_punishments(self, uscc: str) -> Sequence[Punishment]:
        rows = await self._session.execute(
            select(Punishment)
            .where(Punishment.uscc == uscc, Punishment.status == "active")
            .order_by(Punishment.triggered_at)
        )
        return rows.scalars().all()

    async def add_punishment(self, punishment: Punishment) -> None:
        self._session.add(punishment)
        await self._session.flush()
        rows = [
            {
                "punishment_id": punishment.punishment_id,
                "measure": measure["measure"],
                "scenario": scenario,
                "uscc": punishment.uscc,
                "rule_id": punishment.rule_id,
                "kind": punishment.kind,
                "title": measure["title"],
                "department": measure["department"],
                "legal_basis": measure["legal_basis"],
                "since": punishment.since,
                "until": punishment.until,
            }
            for measure in punishment.measures
            for scenario in measure["scenarios"]
        ]
        if rows:
            await self._session.execute(insert(ActiveMeasure).on_conflict_do_nothing(), rows)

    async def lift_punishment(
        self, punishment: Punishment, *, lifted_on: date, reason: str, lifted_at: datetime
    ) -> None:
        await self._session.execute(
            update(Punishment)
            .where(Punishment.punishment_id == punishment.punishment_id)
            .values(status="lifted", lifted_on=lifted_on, lift_reason=reason, lifted_at=lifted_at)
        )
        await self._session.execute(
            delete(ActiveMeasure).where(ActiveMeasure.punishment_id == punishment.punishment_id)
        )

    async def restrictions(
        self, usccs: Sequence[str], scenario: str, today: date
    ) -> list[RestrictionRow]:
        """Every known enterprise among ``usccs`` with the punishments that block
        ``scenario`` today (one row with null measure fields when none): one query."""
        measure = ActiveMeasure
        join = and_(
            measure.uscc == Enterprise.uscc,
            measure.scenario == scenario,
            measure.kind == literal("punishment"),
            or_(measure.until.is_(None), measure.until >= today),
        )
        rows = await self._session.execute(
            select(
                Enterprise.uscc,
                Enterprise.version,
                measure.rule_id,
                measure.measure,
                measure.title,
                measure.department,
                measure.legal_basis,
                measure.since,
                measure.until,
            )
            .select_from(Enterprise)
            .outerjoin(measure, join)
            .where(Enterprise.uscc.in_(list(dict.fromkeys(usccs))))
            .order_by(Enterprise.uscc, measure.since, measure.rule_id, measure.measure)
        )
        return [RestrictionRow(*row) for row in rows]
