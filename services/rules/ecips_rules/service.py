"""Evaluating the catalogue on enterprise changes, and answering credit checks."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from ecips_common.contracts import (
    EnterpriseChanged,
    MeasureRef,
    PunishmentLifted,
    PunishmentTriggered,
)
from ecips_common.db import UnitOfWork
from ecips_rules.catalogue import Catalogue, CompiledRule
from ecips_rules.expressions import ExpressionError
from ecips_rules.models import Punishment
from ecips_rules.repository import RulesRepository
from ecips_rules.schemas import CheckResult, Restriction
from ecips_rules.variables import china_today, date_field

logger = logging.getLogger("ecips.rules")

# Why a punishment ended (PunishmentLifted.reason).
CONDITION_ENDED = "condition_no_longer_holds"
DURATION_ELAPSED = "duration_elapsed"
RULE_REVISED = "rule_revised"
RULE_WITHDRAWN = "rule_withdrawn"


@dataclass(frozen=True, slots=True)
class EvaluationOutcome:
    applied: bool
    triggered: tuple[str, ...] = ()
    lifted: tuple[str, ...] = ()


class EvaluationService:
    """Applies one enterprise snapshot: stores it if it is newer than the one
    held, evaluates every rule, and turns the difference with the active
    punishments into events, all in the caller's transaction."""

    def __init__(self, uow: UnitOfWork, catalogue: Catalogue) -> None:
        self._uow = uow
        self._catalogue = catalogue
        self._repo = RulesRepository(uow.session)

    async def apply(
        self, snapshot: EnterpriseChanged, *, now: datetime | None = None
    ) -> EvaluationOutcome:
        now = now or datetime.now(UTC)
        today = china_today(now)
        await self._repo.lock_enterprise(snapshot.uscc)
        stored = await self._repo.get_enterprise(snapshot.uscc)
        if stored is not None and stored.version >= snapshot.version:
            logger.info(
                "older enterprise snapshot ignored",
                extra={"uscc": snapshot.uscc, "version": snapshot.version, "held": stored.version},
            )
            return EvaluationOutcome(applied=False)
        previously_matched = set(stored.matched_rules) if stored is not None else set()
        active = {p.rule_id: p for p in await self._repo.active_punishments(snapshot.uscc)}
        matched: list[str] = []
        triggered: list[str] = []
        lifted: list[str] = []

        for rule_id, compiled in self._catalogue.rules.items():
            current = active.pop(rule_id, None)
            try:
                holds = compiled.holds(snapshot, today)
            except ExpressionError as exc:
                # Keep whatever was decided before rather than lift or trigger on an error.
                logger.error(
                    "rule could not be evaluated",
                    extra={"rule_id": rule_id, "uscc": snapshot.uscc, "error": str(exc)},
                )
                if rule_id in previously_matched:
                    matched.append(rule_id)
                continue
            if holds:
                matched.append(rule_id)
            rule = compiled.rule
            if rule.duration.type == "fixed":
                if current is not None and current.until is not None and current.until < today:
                    await self._lift(snapshot, current, DURATION_ELAPSED, today, now)
                    lifted.append(rule_id)
                    current = None
                # A fixed-duration rule starts when its condition starts to hold.
                starts = current is None and holds and rule_id not in previously_matched
                if starts and await self._trigger(snapshot, compiled, today, now, since=None):
                    triggered.append(rule_id)
            elif holds and current is None:
                await self._trigger(snapshot, compiled, today, now, since=None)
                triggered.append(rule_id)
            elif not holds and current is not None:
                await self._lift(snapshot, current, CONDITION_ENDED, today, now)
                lifted.append(rule_id)
            elif holds and current is not None and current.rule_version != rule.version:
                await self._lift(snapshot, current, RULE_REVISED, today, now)
                await self._trigger(snapshot, compiled, today, now, since=current.since)
                lifted.append(rule_id)
                triggered.append(rule_id)

        for orphan in active.values():
            await self._lift(snapshot, orphan, RULE_WITHDRAWN, today, now)
            lifted.append(orphan.rule_id)

        await self._repo.save_enterprise(
            uscc=snapshot.uscc,
            name=snapshot.name,
            version=snapshot.version,
            state=snapshot.model_dump(mode="json"),
            matched_rules=matched,
            evaluated_at=now,
        )
        return EvaluationOutcome(True, tuple(triggered), tuple(lifted))

    async def _trigger(
        self,
        snapshot: EnterpriseChanged,
        compiled: CompiledRule,
        today: date,
        now: datetime,
        *,
        since: date | None,
    ) -> bool:
        rule = compiled.rule
        if since is None:
            started = date_field(snapshot, rule.since_from) if rule.since_from else None
            since = min(started, today) if started is not None else today
        until = None
        if rule.duration.days is not None:
            until = since + timedelta(days=rule.duration.days - 1)
            if until < today:
                return False  # already served in full before we saw it
        measures = rule.measure_refs()
        await self._repo.add_punishment(
            Punishment(
                punishment_id=uuid.uuid4(),
                uscc=snapshot.uscc,
                rule_id=rule.id,
                rule_version=rule.version,
                rule_title=rule.title,
                kind=rule.kind,
                legal_basis=rule.legal_basis,
                measures=[m.model_dump(mode="json") for m in measures],
                since=since,
                until=until,
                status="active",
                catalogue_version=self._catalogue.version,
                triggered_at=now,
            )
        )
        self._uow.emit(
            PunishmentTriggered(
                uscc=snapshot.uscc,
                enterprise_name=snapshot.name,
                rule_id=rule.id,
                rule_version=rule.version,
                rule_title=rule.title,
                kind=rule.kind,
                measures=measures,
                legal_basis=rule.legal_basis,
                since=since,
                until=until,
                catalogue_version=self._catalogue.version,
                decided_at=now,
            ),
            subject=snapshot.uscc,
        )
        return True

    async def _lift(
        self,
        snapshot: EnterpriseChanged,
        punishment: Punishment,
        reason: str,
        today: date,
        now: datetime,
    ) -> None:
        await self._repo.lift_punishment(punishment, lifted_on=today, reason=reason, lifted_at=now)
        kind = "incentive" if punishment.kind == "incentive" else "punishment"
        self._uow.emit(
            PunishmentLifted(
                uscc=snapshot.uscc,
                enterprise_name=snapshot.name,
                rule_id=punishment.rule_id,
                rule_version=punishment.rule_version,
                kind=kind,
                measures=[MeasureRef.model_validate(m) for m in punishment.measures],
                reason=reason,
                lifted_on=today,
                catalogue_version=self._catalogue.version,
                decided_at=now,
            ),
            subject=snapshot.uscc,
        )


class CheckService:
    """Credit checks: may these enterprises take part in a scenario?"""

    def __init__(self, session: AsyncSession, catalogue: Catalogue) -> None:
        self._repo = RulesRepository(session)
        self._catalogue = catalogue

    async def check(
        self, usccs: Sequence[str], scenario: str, *, now: datetime | None = None
    ) -> list[CheckResult]:
        now = now or datetime.now(UTC)
        rows = await self._repo.restrictions(usccs, scenario, china_today(now))
        known: set[str] = set()
        found: dict[str, list[Restriction]] = {}
        for row in rows:
            known.add(row.uscc)
            restrictions = found.setdefault(row.uscc, [])
            if row.rule_id is None or row.measure is None:
                continue
            restrictions.append(
                Restriction(
                    rule_id=row.rule_id,
                    measure=row.measure,
                    title=row.title or "",
                    department=row.department or "",
                    legal_basis=row.legal_basis or "",
                    since=row.since,
                    until=row.until,
                )
            )
        return [
            CheckResult(
                uscc=uscc,
                scenario=scenario,
                allowed=not found.get(uscc),
                known=uscc in known,
                restrictions=found.get(uscc, []),
                as_of=now,
                catalogue_version=self._catalogue.version,
            )
            for uscc in usccs
        ]
