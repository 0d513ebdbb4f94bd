"""Evaluating the catalogue on enterprise changes (and again when time or the
catalogue says so), and answering credit checks."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from prometheus_client import Counter
from pydantic import BaseModel

from ecips_common.contracts import MeasureRef, PunishmentLifted, PunishmentTriggered
from ecips_common.db import UnitOfWork
from ecips_rules.cache import CheckCache, MeasureRow
from ecips_rules.catalogue import Catalogue
from ecips_rules.evaluation import RULE_REVISED, Decision, HeldPunishment, Lift, Trigger, decide
from ecips_rules.registry import CatalogueRegistry
from ecips_rules.repository import (
    EvaluatedEnterprise,
    LiftRow,
    RulesRepository,
    StoredEnterprise,
)
from ecips_rules.schemas import Benefit, CheckResult, Restriction
from ecips_rules.variables import LedgerSnapshot, china_today

logger = logging.getLogger("ecips.rules")

RULES_EVALUATED = Counter(
    "ecips_rules_conditions_total",
    "Rule conditions per enterprise evaluation: evaluated, or skipped as none of "
    "their inputs changed",
    ["outcome"],
)


@dataclass(frozen=True, slots=True)
class EvaluationOutcome:
    applied: bool
    triggered: tuple[str, ...] = ()
    lifted: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Change:
    """One difference an evaluation makes (what a job records)."""

    uscc: str
    rule_id: str
    rule_version: int
    kind: str
    action: str  # triggered | lifted
    reason: str | None
    since: date | None
    until: date | None

    def row(self, job_id: uuid.UUID, position: int) -> dict[str, Any]:
        return {
            "job_id": job_id,
            "position": position,
            "uscc": self.uscc,
            "rule_id": self.rule_id,
            "rule_version": self.rule_version,
            "kind": self.kind,
            "action": self.action,
            "reason": self.reason,
            "since": self.since,
            "until": self.until,
        }


@dataclass(slots=True)
class Reevaluation:
    changes: list[Change] = field(default_factory=list)
    # (as read, its active punishments, the decision), in USCC order
    decisions: list[tuple[StoredEnterprise, list[HeldPunishment], Decision]] = field(
        default_factory=list
    )


def continued_measures(lift: Lift, triggers: Sequence[Trigger]) -> list[MeasureRef]:
    """The lifted version's measures that the rule's new version, triggered in
    the same decision, keeps: departments must not release them."""
    kept = {
        (ref.department, ref.measure)
        for trigger in triggers
        if trigger.rule.id == lift.punishment.rule_id
        for ref in trigger.rule.measure_refs()
    }
    old = [MeasureRef.model_validate(m) for m in lift.punishment.measures]
    return [ref for ref in old if (ref.department, ref.measure) in kept]


def changes_of(uscc: str, decision: Decision) -> list[Change]:
    """The decision's differences, lifts first (the order events go out in)."""
    out = [
        Change(
            uscc,
            lift.punishment.rule_id,
            lift.punishment.rule_version,
            lift.punishment.kind,
            "lifted",
            lift.reason,
            lift.punishment.since,
            lift.punishment.until,
        )
        for lift in decision.lifts
    ]
    out += [
        Change(uscc, t.rule.id, t.rule.version, t.rule.kind, "triggered", None, t.since, t.until)
        for t in decision.triggers
    ]
    return out


def decide_stored(
    catalogue: Catalogue,
    enterprise: StoredEnterprise,
    active: Sequence[HeldPunishment],
    today: date,
    *,
    state: Mapping[str, Any] | None = None,
) -> Decision:
    """Decide for a stored enterprise (with a new snapshot when given)."""
    return decide(
        catalogue,
        state=state if state is not None else enterprise.state,
        today=today,
        active=active,
        rule_state=enterprise.rule_state,
        previous_state=enterprise.state,
        previous_on=china_today(enterprise.evaluated_at) if enterprise.evaluated_at else None,
        previous_catalogue=enterprise.evaluated_catalogue,
    )


@dataclass(frozen=True, slots=True)
class ReceivedSnapshot:
    parsed: LedgerSnapshot
    # As received: fields the ledger adds before the contract names them are kept.
    data: dict[str, Any]


def received(snapshot: Mapping[str, Any] | BaseModel) -> ReceivedSnapshot:
    data = snapshot.model_dump(mode="json") if isinstance(snapshot, BaseModel) else dict(snapshot)
    return ReceivedSnapshot(LedgerSnapshot.model_validate(data), data)


def runs_of_distinct_enterprises(
    snapshots: Sequence[ReceivedSnapshot],
) -> list[list[ReceivedSnapshot]]:
    """Consecutive runs in delivery order, each holding an enterprise at most
    once: a snapshot of one already in the run starts the next run."""
    runs: list[list[ReceivedSnapshot]] = []
    in_run: set[str] = set()
    for snapshot in snapshots:
        if not runs or snapshot.parsed.uscc in in_run:
            runs.append([])
            in_run = set()
        runs[-1].append(snapshot)
        in_run.add(snapshot.parsed.uscc)
    return runs


def outcome_of(decision: Decision | None) -> EvaluationOutcome:
    """A snapshot's outcome: its decision, or None when it was not newer."""
    if decision is None:
        return EvaluationOutcome(applied=False)
    return EvaluationOutcome(
        True,
        tuple(t.rule.id for t in decision.triggers),
        tuple(lift.punishment.rule_id for lift in decision.lifts),
    )


class EvaluationService:
    """Applies decisions in the caller's transaction: punishments, the
    enterprise's bookkeeping, and the events, through the outbox."""

    def __init__(self, uow: UnitOfWork, registry: CatalogueRegistry, *, now: datetime) -> None:
        self._uow = uow
        self._registry = registry
        self._repo = RulesRepository(uow.session)
        self._now = now
        self._today = china_today(now)

    async def apply(self, snapshot: Mapping[str, Any] | BaseModel) -> EvaluationOutcome:
        """A new ledger snapshot: stored if newer than the one held, then evaluated."""
        (outcome,) = await self.apply_many([snapshot])
        return outcome

    async def apply_many(
        self, snapshots: Sequence[Mapping[str, Any] | BaseModel]
    ) -> list[EvaluationOutcome]:
        """New ledger snapshots in delivery order, applied set by set: the
        same state, events and outcomes as applying them one at a time.

        A set holds an enterprise at most once; its next snapshot goes to the
        next set, so it is decided on what the earlier one stored."""
        arrived = [received(snapshot) for snapshot in snapshots]
        if not arrived:
            return []
        # Read under a share lock: no enactment can switch it until the
        # transaction ends, so once serves every set.
        catalogue = await self._registry.in_force(self._uow.session)
        outcomes: list[EvaluationOutcome] = []
        for distinct in runs_of_distinct_enterprises(arrived):
            outcomes += await self._apply_distinct(catalogue, distinct)
        return outcomes

    async def _apply_distinct(
        self, catalogue: Catalogue, snapshots: Sequence[ReceivedSnapshot]
    ) -> list[EvaluationOutcome]:
        """Snapshots of distinct enterprises: one statement per step for them all."""
        usccs = [s.parsed.uscc for s in snapshots]
        await self._repo.lock_enterprises(usccs)
        stored = await self._repo.enterprises(usccs)
        newer: list[ReceivedSnapshot] = []
        for snapshot in snapshots:
            held = stored.get(snapshot.parsed.uscc)
            if held is not None and held.version >= snapshot.parsed.version:
                logger.info(
                    "older enterprise snapshot ignored",
                    extra={
                        "uscc": snapshot.parsed.uscc,
                        "version": snapshot.parsed.version,
                        "held": held.version,
                    },
                )
            else:
                newer.append(snapshot)
        if not newer:
            return [EvaluationOutcome(applied=False)] * len(snapshots)
        active = await self._repo.active_punishments([s.parsed.uscc for s in newer])
        items: list[tuple[EvaluatedEnterprise, Decision]] = []
        decided: dict[str, Decision] = {}
        for snapshot in newer:
            parsed = snapshot.parsed
            enterprise = stored.get(parsed.uscc) or StoredEnterprise(
                parsed.uscc, parsed.name, 0, {}, {}, None, None, None
            )
            decision = decide_stored(
                catalogue,
                enterprise,
                active.get(parsed.uscc, []),
                self._today,
                state=snapshot.data,
            )
            decided[parsed.uscc] = decision
            evaluated = EvaluatedEnterprise(
                uscc=parsed.uscc,
                name=parsed.name,
                version=parsed.version,
                state=snapshot.data,
                rule_state=decision.rule_state,
                evaluated_at=self._now,
                evaluated_catalogue=catalogue.number,
                next_evaluation_on=decision.next_evaluation_on,
            )
            items.append((evaluated, decision))
        await self.write(catalogue, items, new_snapshot=True)
        # Each enterprise appears once here, so an ignored one has no decision.
        return [outcome_of(decided.get(s.parsed.uscc)) for s in snapshots]

    async def reevaluate(
        self, usccs: Sequence[str], *, catalogue: Catalogue | None = None
    ) -> Reevaluation:
        """Evaluate stored enterprises again (time passed, or the catalogue
        changed); writes only those whose decision or bookkeeping changed."""
        if catalogue is None:
            catalogue = await self._registry.in_force(self._uow.session)
        await self._repo.lock_enterprises(usccs)
        stored = await self._repo.enterprises(usccs)
        active = await self._repo.active_punishments(list(stored))
        result = Reevaluation()
        items: list[tuple[EvaluatedEnterprise, Decision]] = []
        for uscc in sorted(stored):
            enterprise = stored[uscc]
            held = active.get(uscc, [])
            decision = decide_stored(catalogue, enterprise, held, self._today)
            result.decisions.append((enterprise, held, decision))
            items.append((self._evaluated(enterprise, decision, catalogue), decision))
        result.changes = await self.write(catalogue, items, unchanged=stored)
        return result

    def _evaluated(
        self, enterprise: StoredEnterprise, decision: Decision, catalogue: Catalogue
    ) -> EvaluatedEnterprise:
        return EvaluatedEnterprise(
            uscc=enterprise.uscc,
            name=enterprise.name,
            version=enterprise.version,
            state=enterprise.state,
            rule_state=decision.rule_state,
            evaluated_at=self._now,
            evaluated_catalogue=catalogue.number,
            next_evaluation_on=decision.next_evaluation_on,
        )

    async def write(
        self,
        catalogue: Catalogue,
        items: Sequence[tuple[EvaluatedEnterprise, Decision]],
        *,
        unchanged: Mapping[str, StoredEnterprise] | None = None,
        new_snapshot: bool = False,
    ) -> list[Change]:
        """Store decisions: lifts before triggers (a revised rule is lifted and
        issued again), the enterprises, and one event per difference.

        With ``unchanged`` (the rows as read), an enterprise whose decision
        changes nothing keeps its row untouched: its next evaluation then
        simply evaluates every rule."""
        lifts: list[LiftRow] = []
        added: list[dict[str, Any]] = []
        rows: list[EvaluatedEnterprise] = []
        changes: list[Change] = []
        evaluated = skipped = 0
        refs: dict[tuple[str, int], list[MeasureRef]] = {}
        for enterprise, decision in items:
            evaluated += decision.evaluated
            skipped += decision.skipped
            before = unchanged.get(enterprise.uscc) if unchanged is not None else None
            if (
                before is not None
                and not decision.changes
                and before.rule_state == decision.rule_state
                and before.next_evaluation_on == decision.next_evaluation_on
            ):
                continue
            rows.append(enterprise)
            changes += changes_of(enterprise.uscc, decision)
            for lift in decision.lifts:
                lifts.append(LiftRow(lift.punishment.punishment_id, self._today, lift.reason))
                continued = (
                    continued_measures(lift, decision.triggers)
                    if lift.reason == RULE_REVISED
                    else []
                )
                self._uow.emit(
                    PunishmentLifted(
                        uscc=enterprise.uscc,
                        enterprise_name=enterprise.name,
                        rule_id=lift.punishment.rule_id,
                        rule_version=lift.punishment.rule_version,
                        kind="incentive" if lift.punishment.kind == "incentive" else "punishment",
                        measures=[MeasureRef.model_validate(m) for m in lift.punishment.measures],
                        reason=lift.reason,
                        lifted_on=self._today,
                        catalogue_version=catalogue.version,
                        decided_at=self._now,
                        continued_measures=continued,
                    ),
                    subject=enterprise.uscc,
                )
            for trigger in decision.triggers:
                rule = trigger.rule
                measures = refs.get((rule.id, rule.version)) or refs.setdefault(
                    (rule.id, rule.version), rule.measure_refs()
                )
                added.append(
                    {
                        "punishment_id": uuid.uuid4(),
                        "uscc": enterprise.uscc,
                        "rule_id": rule.id,
                        "rule_version": rule.version,
                        "rule_title": rule.title,
                        "kind": rule.kind,
                        "legal_basis": rule.legal_basis,
                        "measures": [m.model_dump(mode="json") for m in measures],
                        "since": trigger.since,
                        "until": trigger.until,
                        "status": "active",
                        "catalogue_version": catalogue.version,
                        "triggered_at": self._now,
                        "lifted_on": None,
                        "lift_reason": None,
                        "lifted_at": None,
                    }
                )
                self._uow.emit(
                    PunishmentTriggered(
                        uscc=enterprise.uscc,
                        enterprise_name=enterprise.name,
                        rule_id=rule.id,
                        rule_version=rule.version,
                        rule_title=rule.title,
                        kind=rule.kind,
                        measures=measures,
                        legal_basis=rule.legal_basis,
                        since=trigger.since,
                        until=trigger.until,
                        catalogue_version=catalogue.version,
                        decided_at=self._now,
                    ),
                    subject=enterprise.uscc,
                )
        RULES_EVALUATED.labels("evaluated").inc(evaluated)
        RULES_EVALUATED.labels("skipped").inc(skipped)
        await self._repo.lift_punishments(lifts, self._now)
        await self._repo.add_punishments(added)
        if new_snapshot:
            await self._repo.save_enterprises(rows)
        else:
            await self._repo.update_evaluations(rows)
        return changes


RowFetcher = Callable[[Sequence[str]], Awaitable[Sequence[Mapping[str, Any]]]]


class CheckService:
    """Credit checks: may these enterprises take part in a scenario?

    ``fetch`` reads :data:`~ecips_rules.repository.CHECK_SQL` rows (the app
    uses its own asyncpg pool; ``RulesRepository(session).check_rows`` works
    too)."""

    def __init__(
        self, fetch: RowFetcher, catalogue: Catalogue, cache: CheckCache | None = None
    ) -> None:
        self._fetch = fetch
        self._catalogue = catalogue
        self._cache = cache

    async def measures(self, usccs: Sequence[str]) -> dict[str, tuple[MeasureRow, ...]]:
        """Every active measure of the known enterprises among ``usccs``."""
        wanted = list(dict.fromkeys(usccs))
        found: dict[str, tuple[MeasureRow, ...]] = {}
        missing = wanted
        if self._cache is not None:
            missing = []
            for uscc in wanted:
                cached = self._cache.get(uscc)
                if cached is None:
                    missing.append(uscc)
                else:
                    found[uscc] = cached
        if missing:
            generation = self._cache.generation if self._cache is not None else 0
            fetched: dict[str, list[MeasureRow]] = {}
            for record in await self._fetch(missing):
                rows = fetched.setdefault(record["uscc"], [])
                if record["measure"] is not None:
                    rows.append(MeasureRow.from_record(record))
            loaded = {uscc: tuple(rows) for uscc, rows in fetched.items()}
            if self._cache is not None:
                self._cache.put_many(loaded, generation)
            found.update(loaded)
        return found

    async def check(
        self, usccs: Sequence[str], scenario: str, *, now: datetime | None = None
    ) -> list[CheckResult]:
        now = now or datetime.now(UTC)
        today = china_today(now)
        measures = await self.measures(usccs)
        incentive = self._catalogue.scenarios[scenario].kind == "incentive"
        departments = self._catalogue.departments
        results: list[CheckResult] = []
        for uscc in usccs:
            rows = measures.get(uscc)
            restrictions: list[Restriction] = []
            benefits: list[Benefit] = []
            for row in rows or ():
                if row.scenario != scenario or (row.until is not None and row.until < today):
                    continue
                department = departments.get(row.department)
                fields: dict[str, Any] = {
                    "rule_id": row.rule_id,
                    "rule_title": row.rule_title,
                    "measure": row.measure,
                    "title": row.title,
                    "department": row.department,
                    "department_name": department.name if department else None,
                    "legal_basis": row.legal_basis,
                    "since": row.since,
                    "until": row.until,
                }
                if row.kind == "incentive":
                    benefits.append(Benefit(**fields))
                else:
                    restrictions.append(Restriction(**fields))
            restrictions.sort(key=lambda r: (r.since, r.rule_id, r.measure))
            benefits.sort(key=lambda r: (r.since, r.rule_id, r.measure))
            allowed = not restrictions and (bool(benefits) or not incentive)
            results.append(
                CheckResult(
                    uscc=uscc,
                    scenario=scenario,
                    scenario_kind="incentive" if incentive else "restriction",
                    allowed=allowed,
                    known=rows is not None,
                    restrictions=restrictions,
                    benefits=benefits,
                    as_of=now,
                    catalogue_version=self._catalogue.version,
                )
            )
        return results
