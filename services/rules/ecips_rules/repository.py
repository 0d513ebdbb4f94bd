"""All of the rules service's SQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

import asyncpg
from sqlalchemy import CursorResult, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ecips_rules.evaluation import HeldPunishment
from ecips_rules.models import (
    ActiveMeasure,
    CatalogueCurrent,
    CatalogueJob,
    CatalogueVersion,
    Enterprise,
    JobChange,
    Punishment,
)

# Advisory-lock class for "one enterprise is being evaluated" (two-key form,
# so it cannot collide with the outbox's single-key lock).
_ENTERPRISE_LOCK_CLASS = 5005

# What a credit check reads: every active measure of the given enterprises,
# plus one row with null measure fields for a known enterprise without any.
# The benchmark times this very statement with asyncpg alone.
CHECK_SQL = """
SELECT e.uscc, m.scenario, m.kind, m.rule_id, m.rule_title, m.measure, m.title,
       m.department, m.legal_basis, m.since, m.until
  FROM rules.enterprises e
  LEFT JOIN rules.active_measures m ON m.uscc = e.uscc
 WHERE e.uscc = ANY($1::text[])
"""


async def check_rows(pool: asyncpg.Pool, usccs: Sequence[str]) -> list[asyncpg.Record]:
    """:data:`CHECK_SQL` through asyncpg alone, on the checks' own pool: the
    hottest query of the service gains nothing from the ORM session (and its
    pool's ping before every checkout)."""
    return cast(list[asyncpg.Record], await pool.fetch(CHECK_SQL, list(usccs)))


@dataclass(frozen=True, slots=True)
class StoredEnterprise:
    uscc: str
    name: str
    version: int
    state: dict[str, Any]
    rule_state: dict[str, Any]
    evaluated_at: datetime | None
    evaluated_catalogue: int | None
    next_evaluation_on: date | None


@dataclass(frozen=True, slots=True)
class EvaluatedEnterprise:
    """An enterprise row after an evaluation (new snapshot or the same one)."""

    uscc: str
    name: str
    version: int
    state: dict[str, Any]
    rule_state: dict[str, Any]
    evaluated_at: datetime
    evaluated_catalogue: int
    next_evaluation_on: date | None


@dataclass(frozen=True, slots=True)
class LiftRow:
    punishment_id: uuid.UUID
    lifted_on: date
    reason: str


_ENTERPRISE_COLUMNS = (
    Enterprise.uscc,
    Enterprise.name,
    Enterprise.version,
    Enterprise.state,
    Enterprise.rule_state,
    Enterprise.evaluated_at,
    Enterprise.evaluated_catalogue,
    Enterprise.next_evaluation_on,
)


def _stored(row: Any) -> StoredEnterprise:
    return StoredEnterprise(*row)


class RulesRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # --- evaluation ---------------------------------------------------------

    async def lock_enterprises(self, usccs: Iterable[str]) -> None:
        """Serialise evaluations of these enterprises until the transaction
        ends (consumer, feed follower, scheduler and enactment may race); in
        sorted order so two batches cannot deadlock."""
        ordered = sorted(set(usccs))
        if not ordered:
            return
        await self._session.execute(
            text(
                "SELECT pg_advisory_xact_lock(:lock_class, hashtext(u)) "
                "FROM unnest(CAST(:usccs AS text[])) WITH ORDINALITY AS t(u, n) ORDER BY n"
            ),
            {"lock_class": _ENTERPRISE_LOCK_CLASS, "usccs": ordered},
        )

    async def enterprises(self, usccs: Sequence[str]) -> dict[str, StoredEnterprise]:
        rows = await self._session.execute(
            select(*_ENTERPRISE_COLUMNS).where(Enterprise.uscc.in_(list(set(usccs))))
        )
        return {row.uscc: _stored(row) for row in rows}

    async def enterprise_keys(self, after: str, limit: int) -> list[str]:
        """USCCs in order after ``after`` (keyset paging)."""
        rows = await self._session.execute(
            select(Enterprise.uscc)
            .where(Enterprise.uscc > after)
            .order_by(Enterprise.uscc)
            .limit(limit)
        )
        return list(rows.scalars())

    async def due_enterprises(self, today: date, limit: int) -> list[str]:
        rows = await self._session.execute(
            select(Enterprise.uscc)
            .where(Enterprise.next_evaluation_on <= today)
            .order_by(Enterprise.next_evaluation_on, Enterprise.uscc)
            .limit(limit)
        )
        return list(rows.scalars())

    async def count_enterprises(self) -> int:
        return int(
            (await self._session.execute(select(func.count()).select_from(Enterprise))).scalar_one()
        )

    async def active_punishments(self, usccs: Sequence[str]) -> dict[str, list[HeldPunishment]]:
        rows = await self._session.execute(
            select(
                Punishment.uscc,
                Punishment.punishment_id,
                Punishment.rule_id,
                Punishment.rule_version,
                Punishment.kind,
                Punishment.measures,
                Punishment.since,
                Punishment.until,
            )
            .where(Punishment.uscc.in_(list(set(usccs))), Punishment.status == "active")
            .order_by(Punishment.uscc, Punishment.triggered_at)
        )
        found: dict[str, list[HeldPunishment]] = {}
        for row in rows:
            found.setdefault(row.uscc, []).append(HeldPunishment(*row[1:]))
        return found

    async def save_enterprises(self, rows: Sequence[EvaluatedEnterprise]) -> None:
        """Insert or update the evaluated enterprises, one statement."""
        if not rows:
            return
        await self._session.execute(
            text(
                """
                INSERT INTO rules.enterprises AS e
                    (uscc, name, version, state, rule_state, evaluated_at,
                     evaluated_catalogue, next_evaluation_on)
                SELECT * FROM unnest(
                    CAST(:usccs AS text[]), CAST(:names AS text[]), CAST(:versions AS int[]),
                    CAST(:states AS jsonb[]), CAST(:rule_states AS jsonb[]),
                    CAST(:evaluated_at AS timestamptz[]), CAST(:catalogues AS int[]),
                    CAST(:next_on AS date[]))
                ON CONFLICT (uscc) DO UPDATE SET
                    name = excluded.name, version = excluded.version, state = excluded.state,
                    rule_state = excluded.rule_state, evaluated_at = excluded.evaluated_at,
                    evaluated_catalogue = excluded.evaluated_catalogue,
                    next_evaluation_on = excluded.next_evaluation_on
                """
            ),
            {
                "usccs": [r.uscc for r in rows],
                "names": [r.name for r in rows],
                "versions": [r.version for r in rows],
                "states": [json.dumps(r.state, ensure_ascii=False) for r in rows],
                "rule_states": [json.dumps(r.rule_state) for r in rows],
                "evaluated_at": [r.evaluated_at for r in rows],
                "catalogues": [r.evaluated_catalogue for r in rows],
                "next_on": [r.next_evaluation_on for r in rows],
            },
        )

    async def update_evaluations(self, rows: Sequence[EvaluatedEnterprise]) -> None:
        """Store a re-evaluation of unchanged snapshots (the state is not rewritten)."""
        if not rows:
            return
        await self._session.execute(
            text(
                """
                UPDATE rules.enterprises e SET
                    rule_state = r.rule_state, evaluated_at = r.evaluated_at,
                    evaluated_catalogue = r.catalogue, next_evaluation_on = r.next_on
                  FROM unnest(CAST(:usccs AS text[]), CAST(:rule_states AS jsonb[]),
                              CAST(:evaluated_at AS timestamptz[]), CAST(:catalogues AS int[]),
                              CAST(:next_on AS date[]))
                       AS r(uscc, rule_state, evaluated_at, catalogue, next_on)
                 WHERE e.uscc = r.uscc
                """
            ),
            {
                "usccs": [r.uscc for r in rows],
                "rule_states": [json.dumps(r.rule_state) for r in rows],
                "evaluated_at": [r.evaluated_at for r in rows],
                "catalogues": [r.evaluated_catalogue for r in rows],
                "next_on": [r.next_evaluation_on for r in rows],
            },
        )

    async def add_punishments(self, punishments: Sequence[Mapping[str, Any]]) -> None:
        """New active punishments (rows of the punishments table) and their
        measures flattened per scenario: two statements whatever the number
        (arrays unnested by the server, not one row of parameters each)."""
        if not punishments:
            return
        await self._session.execute(
            text(
                """
                INSERT INTO rules.punishments
                    (punishment_id, uscc, rule_id, rule_version, rule_title, kind, legal_basis,
                     measures, since, until, status, catalogue_version, triggered_at)
                SELECT p.*, 'active', :catalogue_version, :triggered_at
                  FROM unnest(CAST(:ids AS uuid[]), CAST(:usccs AS text[]),
                              CAST(:rule_ids AS text[]), CAST(:versions AS int[]),
                              CAST(:titles AS text[]), CAST(:kinds AS text[]),
                              CAST(:bases AS text[]), CAST(:measures AS jsonb[]),
                              CAST(:since AS date[]), CAST(:until AS date[])) AS p
                """
            ),
            {
                "ids": [p["punishment_id"] for p in punishments],
                "usccs": [p["uscc"] for p in punishments],
                "rule_ids": [p["rule_id"] for p in punishments],
                "versions": [p["rule_version"] for p in punishments],
                "titles": [p["rule_title"] for p in punishments],
                "kinds": [p["kind"] for p in punishments],
                "bases": [p["legal_basis"] for p in punishments],
                "measures": [json.dumps(p["measures"], ensure_ascii=False) for p in punishments],
                "since": [p["since"] for p in punishments],
                "until": [p["until"] for p in punishments],
                "catalogue_version": punishments[0]["catalogue_version"],
                "triggered_at": punishments[0]["triggered_at"],
            },
        )
        rows = [
            (p, measure, scenario)
            for p in punishments
            for measure in p["measures"]
            for scenario in measure["scenarios"]
        ]
        if not rows:
            return
        await self._session.execute(
            text(
                """
                INSERT INTO rules.active_measures
                    (punishment_id, measure, scenario, uscc, rule_id, rule_title, kind, title,
                     department, legal_basis, since, until)
                SELECT * FROM unnest(
                    CAST(:ids AS uuid[]), CAST(:measures AS text[]), CAST(:scenarios AS text[]),
                    CAST(:usccs AS text[]), CAST(:rule_ids AS text[]), CAST(:rule_titles AS text[]),
                    CAST(:kinds AS text[]), CAST(:titles AS text[]),
                    CAST(:departments AS text[]), CAST(:bases AS text[]),
                    CAST(:since AS date[]), CAST(:until AS date[]))
                ON CONFLICT DO NOTHING
                """
            ),
            {
                "ids": [p["punishment_id"] for p, _, _ in rows],
                "measures": [m["measure"] for _, m, _ in rows],
                "scenarios": [scenario for _, _, scenario in rows],
                "usccs": [p["uscc"] for p, _, _ in rows],
                "rule_ids": [p["rule_id"] for p, _, _ in rows],
                "rule_titles": [p["rule_title"] for p, _, _ in rows],
                "kinds": [p["kind"] for p, _, _ in rows],
                "titles": [m["title"] for _, m, _ in rows],
                "departments": [m["department"] for _, m, _ in rows],
                "bases": [m["legal_basis"] for _, m, _ in rows],
                "since": [p["since"] for p, _, _ in rows],
                "until": [p["until"] for p, _, _ in rows],
            },
        )

    async def lift_punishments(self, lifts: Sequence[LiftRow], lifted_at: datetime) -> None:
        if not lifts:
            return
        await self._session.execute(
            text(
                """
                UPDATE rules.punishments p SET status = 'lifted', lifted_on = l.lifted_on,
                       lift_reason = l.reason, lifted_at = :lifted_at
                  FROM unnest(CAST(:ids AS uuid[]), CAST(:days AS date[]),
                              CAST(:reasons AS text[])) AS l(id, lifted_on, reason)
                 WHERE p.punishment_id = l.id
                """
            ),
            {
                "ids": [lift.punishment_id for lift in lifts],
                "days": [lift.lifted_on for lift in lifts],
                "reasons": [lift.reason for lift in lifts],
                "lifted_at": lifted_at,
            },
        )
        await self._session.execute(
            delete(ActiveMeasure).where(
                ActiveMeasure.punishment_id.in_([lift.punishment_id for lift in lifts])
            )
        )

    # --- credit checks ------------------------------------------------------

    async def check_rows(self, usccs: Sequence[str]) -> list[asyncpg.Record]:
        """:data:`CHECK_SQL` on the session's connection (see :func:`check_rows`)."""
        connection = await self._session.connection()
        raw = await connection.get_raw_connection()
        driver = cast(asyncpg.Connection, raw.driver_connection)
        return cast(list[asyncpg.Record], await driver.fetch(CHECK_SQL, list(usccs)))

    # --- catalogue versions -------------------------------------------------

    async def current_catalogue(self, *, lock: str | None = None) -> int | None:
        """The enacted catalogue number; ``lock``: "share" while evaluating,
        "update" while switching."""
        query = select(CatalogueCurrent.number).where(CatalogueCurrent.id == 1)
        if lock == "share":
            query = query.with_for_update(read=True)
        elif lock == "update":
            query = query.with_for_update()
        return (await self._session.execute(query)).scalar_one_or_none()

    async def set_current_catalogue(self, number: int, at: datetime) -> None:
        stmt = insert(CatalogueCurrent).values(id=1, number=number, changed_at=at)
        await self._session.execute(
            stmt.on_conflict_do_update(
                index_elements=[CatalogueCurrent.id],
                set_={"number": stmt.excluded.number, "changed_at": stmt.excluded.changed_at},
            )
        )

    async def lock_versions(self) -> None:
        """Serialise writers of new version numbers."""
        await self._session.execute(
            text("SELECT pg_advisory_xact_lock(:lock_class, 0)"),
            {"lock_class": _ENTERPRISE_LOCK_CLASS + 1},
        )

    async def add_version(self, version: CatalogueVersion) -> bool:
        """False when that number exists already (a concurrent seed)."""
        result = await self._session.execute(
            insert(CatalogueVersion)
            .values({c.key: getattr(version, c.key) for c in CatalogueVersion.__table__.columns})
            .on_conflict_do_nothing(index_elements=[CatalogueVersion.number])
        )
        return cast(CursorResult[Any], result).rowcount == 1

    async def next_version_number(self) -> int:
        highest = (
            await self._session.execute(select(func.max(CatalogueVersion.number)))
        ).scalar_one_or_none()
        return int(highest or 0) + 1

    async def version(self, number: int) -> CatalogueVersion | None:
        return await self._session.get(CatalogueVersion, number, populate_existing=True)

    async def versions(self) -> Sequence[CatalogueVersion]:
        rows = await self._session.execute(
            select(CatalogueVersion).order_by(CatalogueVersion.number.desc())
        )
        return rows.scalars().all()

    async def mark_enacted(self, number: int, *, at: datetime, by: str) -> None:
        await self._session.execute(
            update(CatalogueVersion)
            .where(CatalogueVersion.status == "enacted", CatalogueVersion.number != number)
            .values(status="superseded")
        )
        await self._session.execute(
            update(CatalogueVersion)
            .where(CatalogueVersion.number == number)
            .values(status="enacted", enacted_at=at, enacted_by=by)
        )

    # --- jobs ---------------------------------------------------------------

    async def add_job(self, job: CatalogueJob) -> None:
        self._session.add(job)
        await self._session.flush()

    async def job(self, job_id: uuid.UUID) -> CatalogueJob | None:
        return await self._session.get(CatalogueJob, job_id, populate_existing=True)

    async def jobs_of(self, number: int) -> Sequence[CatalogueJob]:
        rows = await self._session.execute(
            select(CatalogueJob)
            .where(CatalogueJob.catalogue_number == number)
            .order_by(CatalogueJob.started_at)
        )
        return rows.scalars().all()

    async def running_jobs(self, kind: str | None = None) -> Sequence[CatalogueJob]:
        query = select(CatalogueJob).where(CatalogueJob.status == "running")
        if kind is not None:
            query = query.where(CatalogueJob.kind == kind)
        return (await self._session.execute(query)).scalars().all()

    async def claim_stale_jobs(self, older_than: datetime, now: datetime) -> Sequence[CatalogueJob]:
        """Running jobs without a heartbeat since ``older_than``, claimed (their
        heartbeat renewed) in this transaction; rows another process is
        claiming are skipped."""
        rows = await self._session.execute(
            select(CatalogueJob)
            .where(
                CatalogueJob.status == "running",
                or_(CatalogueJob.heartbeat_at.is_(None), CatalogueJob.heartbeat_at < older_than),
            )
            .with_for_update(skip_locked=True)
        )
        jobs = rows.scalars().all()
        if jobs:
            await self._session.execute(
                update(CatalogueJob)
                .where(CatalogueJob.job_id.in_([j.job_id for j in jobs]))
                .values(heartbeat_at=now)
            )
        return jobs

    async def update_job(self, job_id: uuid.UUID, **values: Any) -> None:
        await self._session.execute(
            update(CatalogueJob).where(CatalogueJob.job_id == job_id).values(**values)
        )

    async def add_job_changes(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        columns = (
            "job_id", "position", "uscc", "rule_id", "rule_version", "kind", "action",
            "reason", "since", "until",
        )  # fmt: skip
        types = ("uuid", "int", "text", "text", "int", "text", "text", "text", "date", "date")
        arrays = ", ".join(f"CAST(:{c} AS {t}[])" for c, t in zip(columns, types, strict=True))
        await self._session.execute(
            text(
                f"INSERT INTO rules.job_changes ({', '.join(columns)}) "
                f"SELECT * FROM unnest({arrays})"
            ),
            {c: [r[c] for r in rows] for c in columns},
        )

    async def last_job_position(self, job_id: uuid.UUID) -> int:
        found = await self._session.execute(
            select(func.max(JobChange.position)).where(JobChange.job_id == job_id)
        )
        return int(found.scalar_one_or_none() or 0)

    async def job_changes(self, job_id: uuid.UUID, after: int, limit: int) -> Sequence[JobChange]:
        rows = await self._session.execute(
            select(JobChange)
            .where(JobChange.job_id == job_id, JobChange.position > after)
            .order_by(JobChange.position)
            .limit(limit)
        )
        return rows.scalars().all()

    async def same_changes(self, first: uuid.UUID, second: uuid.UUID) -> bool:
        """Whether two jobs found exactly the same differences."""
        differing = await self._session.execute(
            text(
                """
                SELECT count(*) FROM (
                    (SELECT uscc, rule_id, rule_version, kind, action, reason, since, until
                       FROM rules.job_changes WHERE job_id = :a
                     EXCEPT ALL
                     SELECT uscc, rule_id, rule_version, kind, action, reason, since, until
                       FROM rules.job_changes WHERE job_id = :b)
                    UNION ALL
                    (SELECT uscc, rule_id, rule_version, kind, action, reason, since, until
                       FROM rules.job_changes WHERE job_id = :b
                     EXCEPT ALL
                     SELECT uscc, rule_id, rule_version, kind, action, reason, since, until
                       FROM rules.job_changes WHERE job_id = :a)
                ) AS d
                """
            ),
            {"a": first, "b": second},
        )
        return int(differing.scalar_one()) == 0

    # --- the check cache's event follower ----------------------------------

    async def last_event_sequence(self) -> int:
        outbox = text("SELECT coalesce(max(seq), 0) FROM rules.outbox")
        return int((await self._session.execute(outbox)).scalar_one())

    async def event_subjects_after(self, after: int, limit: int) -> list[tuple[int, str]]:
        rows = await self._session.execute(
            text("SELECT seq, subject FROM rules.outbox WHERE seq > :after ORDER BY seq LIMIT :n"),
            {"after": after, "n": limit},
        )
        return [(int(seq), str(subject)) for seq, subject in rows]
