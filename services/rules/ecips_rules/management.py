"""Managing the catalogue safely: new versions (every one kept), a dry run of
a version over every enterprise, and its enactment, which re-evaluates every
enterprise, emits the differences and checks them against the dry run."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from ecips_common.db import Database
from ecips_common.problems import FieldError, InvalidInput, NotFound, ProblemError
from ecips_rules.catalogue import Catalogue, CatalogueError, Rule, parse_catalogue
from ecips_rules.evaluation import Decision, HeldPunishment
from ecips_rules.models import CatalogueJob, CatalogueVersion
from ecips_rules.registry import CatalogueRegistry
from ecips_rules.repository import RulesRepository, StoredEnterprise
from ecips_rules.schemas import NewCatalogueVersion, RuleDifference
from ecips_rules.service import Change, EvaluationService, changes_of, decide_stored
from ecips_rules.variables import china_today

logger = logging.getLogger("ecips.rules")

EXAMPLES = 10
# A running job not heard of for this long was interrupted.
STALE_AFTER = timedelta(minutes=2)


@dataclass
class Tally:
    """What a job found: enterprises newly restricted or released (and
    incentives granted or withdrawn), per-rule counts, and a few examples."""

    buckets: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("newly_restricted", "released", "incentive_granted", "incentive_withdrawn"), 0
        )
    )
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    by_rule: dict[str, dict[str, int]] = field(default_factory=dict)
    changed_enterprises: int = 0
    changes: int = 0

    def add(
        self,
        enterprise: StoredEnterprise,
        active: Sequence[HeldPunishment],
        decision: Decision,
    ) -> None:
        if not decision.changes:
            return
        self.changed_enterprises += 1
        self.changes += len(decision.triggers) + len(decision.lifts)
        for lift in decision.lifts:
            counts = self.by_rule.setdefault(lift.punishment.rule_id, {})
            counts["lifted"] = counts.get("lifted", 0) + 1
        for trigger in decision.triggers:
            counts = self.by_rule.setdefault(trigger.rule.id, {})
            counts["triggered"] = counts.get("triggered", 0) + 1
        lifted = {lift.punishment.punishment_id for lift in decision.lifts}
        for kind, gained_bucket, lost_bucket in (
            ("punishment", "newly_restricted", "released"),
            ("incentive", "incentive_granted", "incentive_withdrawn"),
        ):
            before = {
                s for p in active if p.kind == kind for m in p.measures for s in m["scenarios"]
            }
            after = {
                s
                for p in active
                if p.kind == kind and p.punishment_id not in lifted
                for m in p.measures
                for s in m["scenarios"]
            } | {
                s
                for t in decision.triggers
                if t.rule.kind == kind
                for m in t.rule.measures
                for s in m.scenarios
            }
            for bucket, scenarios in (
                (gained_bucket, after - before),
                (lost_bucket, before - after),
            ):
                if not scenarios:
                    continue
                self.buckets[bucket] += 1
                examples = self.examples.setdefault(bucket, [])
                if len(examples) < EXAMPLES:
                    examples.append(
                        {
                            "uscc": enterprise.uscc,
                            "name": enterprise.name,
                            "scenarios": sorted(scenarios),
                            "triggered": sorted(t.rule.id for t in decision.triggers),
                            "lifted": sorted(x.punishment.rule_id for x in decision.lifts),
                        }
                    )

    def summary(self) -> dict[str, Any]:
        return {
            **self.buckets,
            "changed_enterprises": self.changed_enterprises,
            "changes": self.changes,
            "by_rule": self.by_rule,
            "examples": self.examples,
        }


def rule_differences(catalogue: Catalogue, base: Catalogue | None) -> list[RuleDifference]:
    old = {r.rule.id: r.rule for r in base.rules.values()} if base else {}
    out: list[RuleDifference] = []
    for compiled in catalogue.rules.values():
        rule = compiled.rule
        before = old.pop(rule.id, None)
        if before is None:
            change = "added"
        elif before.content() == rule.content():
            change = "unchanged"
        else:
            change = "revised"
        out.append(
            RuleDifference(
                rule_id=rule.id,
                change=change,
                from_version=before.version if before else None,
                to_version=rule.version,
            )
        )
    out += [
        RuleDifference(rule_id=r.id, change="withdrawn", from_version=r.version, to_version=None)
        for r in old.values()
    ]
    return out


def _invalid(problems: Sequence[tuple[str, str, str]]) -> InvalidInput:
    return InvalidInput([FieldError(field=f, code=c, message=m) for f, c, m in problems])


def build_document(
    body: NewCatalogueVersion, base: Catalogue
) -> tuple[dict[str, Any], dict[int, str]]:
    """The new version's document, and where each of its rules came from in
    the request (to name the field of a problem)."""
    if body.catalogue is not None:
        document = body.catalogue.model_dump()
        return document, {i: f"catalogue.rules[{i}]" for i in range(len(document["rules"]))}
    changes = body.changes
    assert changes is not None
    current = base.document()
    scenarios = {s["key"]: s for s in current["scenarios"]}
    for s in changes.scenarios:
        scenarios[str(s.get("key"))] = s
    departments = {d["code"]: d for d in current["departments"]}
    for d in changes.departments:
        departments[str(d.get("code"))] = d
    rules: list[dict[str, Any]] = [copy.deepcopy(r) for r in current["rules"]]
    origins: dict[int, str] = {}
    problems = [
        (f"changes.withdraw[{i}]", "unknown_rule", f"rule {rule_id!r} is not in the catalogue")
        for i, rule_id in enumerate(changes.withdraw)
        if rule_id not in base.rules
    ]
    # A rule is matched by its id, so each upserted rule must name one.
    problems += [
        (f"changes.upsert[{j}].id", "required", "each rule needs a string id")
        for j, new in enumerate(changes.upsert)
        if not isinstance(new.get("id"), str) or not new.get("id")
    ]
    if problems:
        raise _invalid(problems)
    rules = [r for r in rules if r["id"] not in set(changes.withdraw)]
    for j, new in enumerate(changes.upsert):
        position = next((i for i, r in enumerate(rules) if r.get("id") == new["id"]), None)
        if position is None:
            rules.append(new)
            position = len(rules) - 1
        else:
            rules[position] = new
        origins[position] = f"changes.upsert[{j}]"
    document = {
        "scenarios": list(scenarios.values()),
        "departments": list(departments.values()),
        "rules": rules,
    }
    return document, origins


def assign_rule_versions(document: dict[str, Any], base: Catalogue) -> None:
    """A rule whose meaning changed gets the next version number (unless the
    author gave a higher one); an unchanged rule keeps its number."""
    for raw in document["rules"]:
        if not isinstance(raw, dict):
            continue
        given = raw.get("version")
        given_number = given if isinstance(given, int) and given >= 1 else None
        try:
            rule = Rule.model_validate({**raw, "version": given_number or 1})
        except ValidationError:
            continue  # reported by the full validation
        old = base.rules.get(rule.id)
        if old is None:
            raw["version"] = given_number or 1
        elif old.rule.content() == rule.content():
            raw["version"] = old.rule.version
        else:
            raw["version"] = max(given_number or 0, old.rule.version + 1)


def _remap(field_path: str, origins: Mapping[int, str], prefix: str) -> str:
    """``rules[3].condition`` -> ``changes.upsert[0].condition``."""
    if field_path.startswith("rules["):
        index = int(field_path[6 : field_path.index("]")])
        if index in origins:
            return origins[index] + field_path[field_path.index("]") + 1 :]
    return f"{prefix}.{field_path}" if prefix else field_path


class CatalogueManager:
    def __init__(
        self,
        database: Database,
        registry: CatalogueRegistry,
        *,
        clock: Callable[[], datetime],
        chunk_size: int = 1000,
        parallel: int = 2,
    ) -> None:
        self._db = database
        self._registry = registry
        self._clock = clock
        self._chunk = chunk_size
        self._parallel = parallel
        self._positions: dict[uuid.UUID, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # --- versions -----------------------------------------------------------

    async def create_version(self, body: NewCatalogueVersion, author: str) -> CatalogueVersion:
        now = self._clock()
        async with self._db.unit_of_work() as uow:
            repo = RulesRepository(uow.session)
            await repo.lock_versions()
            base = await self._registry.in_force(uow.session)
            document, origins = build_document(body, base)
            assign_rule_versions(document, base)
            number = await repo.next_version_number()
            prefix = "catalogue" if body.catalogue is not None else "changes"
            try:
                catalogue = parse_catalogue(
                    document, number=number, source=f"catalogue version {number}"
                )
            except CatalogueError as exc:
                raise _invalid(
                    [(_remap(p.field, origins, prefix), p.code, p.message) for p in exc.problems]
                ) from exc
            if catalogue.document() == base.document():
                raise ProblemError(
                    409,
                    "no_change",
                    "Nothing changes",
                    "The proposed catalogue equals the one in force.",
                )
            version = CatalogueVersion(
                number=number,
                document=catalogue.document(),
                note=body.note,
                status="draft",
                based_on=base.number,
                created_at=now,
                created_by=author,
                enacted_at=None,
                enacted_by=None,
            )
            await repo.add_version(version)
        self._registry.remember(catalogue)
        return version

    async def version(self, number: int) -> tuple[CatalogueVersion, Catalogue, Catalogue | None]:
        async with self._db.read_only() as session:
            version = await RulesRepository(session).version(number)
            if version is None:
                raise NotFound("catalogue_version", f"There is no catalogue version {number}.")
            catalogue = await self._registry.get(session, number)
            base = (
                await self._registry.get(session, version.based_on)
                if version.based_on is not None
                else None
            )
        return version, catalogue, base

    # --- jobs ---------------------------------------------------------------

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start_dry_run(self, number: int, requested_by: str) -> CatalogueJob:
        version, catalogue, _ = await self.version(number)
        job = await self._new_job("dry_run", version.number, requested_by, None)
        self._spawn(self._guarded(job.job_id, self.run_dry_run(job.job_id, catalogue)))
        return job

    async def start_enactment(self, number: int, requested_by: str) -> CatalogueJob:
        """Put a dry-run draft in force and re-evaluate everyone. The version in
        force may be enacted again when its last enactment failed (the rest of
        the enterprises are then evaluated; re-evaluating is idempotent)."""
        version, catalogue, _ = await self.version(number)
        async with self._db.unit_of_work() as uow:
            repo = RulesRepository(uow.session)
            await repo.lock_versions()
            jobs = await repo.jobs_of(number)
            enactments = [j for j in jobs if j.kind == "enactment"]
            retry = (
                version.status == "enacted"
                and await repo.current_catalogue() == number
                and bool(enactments)
                and enactments[-1].status == "failed"
            )
            if version.status != "draft" and not retry:
                raise ProblemError(
                    409,
                    "not_a_draft",
                    "Only a draft can be enacted",
                    f"Catalogue version {number} is {version.status}.",
                )
            if await repo.running_jobs("enactment"):
                raise ProblemError(
                    409,
                    "enactment_running",
                    "An enactment is running",
                    "Wait until the running enactment has finished.",
                )
            dry_runs = [j for j in jobs if j.kind == "dry_run" and j.status == "done"]
            if not dry_runs:
                raise ProblemError(
                    409,
                    "dry_run_required",
                    "Dry run first",
                    f"Run POST /v1/catalogue/versions/{number}/dry-runs and read its result "
                    "before enacting the version.",
                )
            now = self._clock()
            job = CatalogueJob(
                job_id=uuid.uuid4(),
                kind="enactment",
                catalogue_number=number,
                status="running",
                as_of=china_today(now),
                requested_by=requested_by,
                started_at=now,
                heartbeat_at=now,
                evaluated=0,
                summary={},
                dry_run_job_id=dry_runs[-1].job_id,
            )
            await repo.add_job(job)
            if not retry:
                # The switch: from this commit on every evaluation uses the new version.
                await repo.current_catalogue(lock="update")
                await repo.mark_enacted(number, at=now, by=requested_by)
                await repo.set_current_catalogue(number, now)
        self._registry.remember(catalogue)
        await self._registry.refresh(self._db)
        self._spawn(self._guarded(job.job_id, self.run_enactment(job.job_id, catalogue)))
        return job

    async def _new_job(
        self, kind: str, number: int, requested_by: str, dry_run: uuid.UUID | None
    ) -> CatalogueJob:
        now = self._clock()
        job = CatalogueJob(
            job_id=uuid.uuid4(),
            kind=kind,
            catalogue_number=number,
            status="running",
            as_of=china_today(now),
            requested_by=requested_by,
            started_at=now,
            heartbeat_at=now,
            evaluated=0,
            summary={},
            dry_run_job_id=dry_run,
        )
        async with self._db.unit_of_work() as uow:
            await RulesRepository(uow.session).add_job(job)
        return job

    async def _guarded(self, job_id: uuid.UUID, work: Any) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("catalogue job failed", extra={"job_id": str(job_id)})
            async with self._db.unit_of_work() as uow:
                await RulesRepository(uow.session).update_job(
                    job_id, status="failed", error=repr(exc)[:2000], finished_at=self._clock()
                )

    async def _sweep(self, job_id: uuid.UUID, chunk: Callable[[list[str]], Awaitable[None]]) -> int:
        """Hand every enterprise, in USCC chunks, to ``chunk``; up to
        ``parallel`` chunks at once (one evaluates while another waits on the
        database). Returns how many enterprises were handed out."""
        queue: asyncio.Queue[list[str] | None] = asyncio.Queue(maxsize=self._parallel)
        evaluated = 0

        async def produce() -> None:
            after = ""
            while True:
                async with self._db.read_only() as session:
                    keys = await RulesRepository(session).enterprise_keys(after, self._chunk)
                if not keys:
                    break
                await queue.put(keys)
                after = keys[-1]
            for _ in range(self._parallel):
                await queue.put(None)

        async def work() -> None:
            nonlocal evaluated
            while (keys := await queue.get()) is not None:
                await chunk(keys)
                evaluated += len(keys)
                async with self._db.unit_of_work() as uow:
                    await RulesRepository(uow.session).update_job(
                        job_id, evaluated=evaluated, heartbeat_at=self._clock()
                    )

        async with asyncio.TaskGroup() as group:
            group.create_task(produce())
            for _ in range(self._parallel):
                group.create_task(work())
        return evaluated

    def _numbered(self, job_id: uuid.UUID, changes: Sequence[Change]) -> list[dict[str, Any]]:
        rows = []
        for change in changes:
            self._positions[job_id] = position = self._positions.get(job_id, 0) + 1
            rows.append(change.row(job_id, position))
        return rows

    async def run_dry_run(self, job_id: uuid.UUID, catalogue: Catalogue) -> Tally:
        """Evaluate ``catalogue`` over every enterprise without changing anything."""
        today = china_today(self._clock())
        tally = Tally()

        async def chunk(keys: list[str]) -> None:
            async with self._db.read_only() as session:
                repo = RulesRepository(session)
                stored = await repo.enterprises(keys)
                active = await repo.active_punishments(keys)
            changes: list[Change] = []
            for uscc in sorted(stored):
                held = active.get(uscc, [])
                decision = decide_stored(catalogue, stored[uscc], held, today)
                tally.add(stored[uscc], held, decision)
                changes += changes_of(uscc, decision)
            async with self._db.unit_of_work() as uow:
                await RulesRepository(uow.session).add_job_changes(self._numbered(job_id, changes))

        evaluated = await self._sweep(job_id, chunk)
        self._positions.pop(job_id, None)
        async with self._db.unit_of_work() as uow:
            await RulesRepository(uow.session).update_job(
                job_id,
                status="done",
                evaluated=evaluated,
                summary=tally.summary(),
                finished_at=self._clock(),
            )
        return tally

    async def run_enactment(self, job_id: uuid.UUID, catalogue: Catalogue) -> Tally:
        """Re-evaluate every enterprise under the enacted ``catalogue``, chunk by
        chunk (each its own transaction, enterprises locked), recording and
        emitting every difference."""
        tally = Tally()
        async with self._db.read_only() as session:
            self._positions[job_id] = await RulesRepository(session).last_job_position(job_id)

        async def chunk(keys: list[str]) -> None:
            async with self._db.unit_of_work() as uow:
                in_force = await self._registry.in_force(uow.session)
                if in_force.number != catalogue.number:
                    raise RuntimeError(
                        f"catalogue {in_force.number} was enacted while enacting "
                        f"{catalogue.number}; this enactment stops"
                    )
                service = EvaluationService(uow, self._registry, now=self._clock())
                result = await service.reevaluate(keys, catalogue=catalogue)
                for enterprise, held, decision in result.decisions:
                    tally.add(enterprise, held, decision)
                await RulesRepository(uow.session).add_job_changes(
                    self._numbered(job_id, result.changes)
                )

        evaluated = await self._sweep(job_id, chunk)
        self._positions.pop(job_id, None)
        async with self._db.unit_of_work() as uow:
            repo = RulesRepository(uow.session)
            job = await repo.job(job_id)
            matches = None
            if job is not None and job.dry_run_job_id is not None:
                matches = await repo.same_changes(job.dry_run_job_id, job_id)
            await repo.update_job(
                job_id,
                status="done",
                evaluated=evaluated,
                summary=tally.summary(),
                matches_dry_run=matches,
                finished_at=self._clock(),
            )
        logger.info(
            "catalogue enacted",
            extra={"number": catalogue.number, "evaluated": evaluated, "matches": matches},
        )
        return tally

    async def resume(self) -> None:
        """Take over jobs whose process stopped (no heartbeat for
        ``STALE_AFTER``): an enactment runs again from the start (re-evaluating
        is idempotent), a dry run is marked failed. Runs at start and with
        every scheduler pass; a claim is atomic, so one process takes a job."""
        now = self._clock()
        async with self._db.unit_of_work() as uow:
            repo = RulesRepository(uow.session)
            stale = await repo.claim_stale_jobs(now - STALE_AFTER, now)
            for job in stale:
                if job.kind == "dry_run":
                    await repo.update_job(
                        job.job_id,
                        status="failed",
                        error="interrupted (its process stopped); run it again",
                        finished_at=now,
                    )
        for job in stale:
            if job.kind != "enactment":
                continue
            async with self._db.read_only() as session:
                catalogue = await self._registry.get(session, job.catalogue_number)
            logger.warning("resuming an interrupted enactment", extra={"job": str(job.job_id)})
            self._spawn(self._guarded(job.job_id, self.run_enactment(job.job_id, catalogue)))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
