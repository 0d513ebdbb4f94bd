"""All of publicity's SQL: the projection writes, the withdrawals and the
public queries."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import (
    ColumnElement,
    TextClause,
    and_,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from ecips_common.problems import ProblemError
from ecips_publicity.catalogue import PublicationCatalogue
from ecips_publicity.models import (
    CreditRepair,
    Enterprise,
    FormerName,
    JointMeasure,
    PublicItem,
)

_LIKE_ESCAPE = "\\"

# --- what the public may see -------------------------------------------------


def escape_like(text: str) -> str:
    """Make ``text`` match literally inside a LIKE pattern."""
    return (
        text.replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2)
        .replace("%", _LIKE_ESCAPE + "%")
        .replace("_", _LIKE_ESCAPE + "_")
    )


def withdrawal_reason(catalogue: PublicationCatalogue, today: date) -> ColumnElement[Any]:
    """Why an item is not public on ``today`` (null: it is). The single
    definition of the publication rules in SQL; the first reason wins."""
    dated = catalogue.dated_publication
    return case(
        (PublicItem.disclosure != "public", "not_public"),
        (PublicItem.status != "active", "revoked"),
        (
            and_(PublicItem.category.in_(dated.categories), PublicItem.occurred_on < dated.since),
            "before_publication_date",
        ),
        (
            and_(PublicItem.repaired_on.is_not(None), PublicItem.repaired_on <= today),
            "credit_repair",
        ),
        (
            and_(PublicItem.publish_until.is_not(None), PublicItem.publish_until <= today),
            "period_ended",
        ),
        else_=None,
    )


def published(catalogue: PublicationCatalogue, today: date) -> ColumnElement[bool]:
    """Items shown on ``today``: not marked withdrawn, and the rules checked
    again at query time, so that a period ends on its day even if the
    withdrawal job has not run yet."""
    return and_(
        PublicItem.withdrawn_reason.is_(None),
        withdrawal_reason(catalogue, today).is_(None),
    )


# --- projection ------------------------------------------------------------


class ProjectionRepository:
    """Writes of the read model; every write keeps the newest version."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def upsert_enterprises(
        self,
        rows: Sequence[dict[str, Any]],
        former_names: Mapping[str, Sequence[dict[str, Any]]],
    ) -> set[str]:
        """Store the snapshots newer than the stored ones (one per USCC, all
        with the same keys); returns the USCCs stored. Rows are written in
        USCC order, so two writers never lock the same rows in opposite orders."""
        if not rows:
            return set()
        ordered = sorted(rows, key=lambda row: str(row["uscc"]))
        stmt = pg_insert(Enterprise).values(ordered)
        updates: dict[str, Any] = {key: stmt.excluded[key] for key in ordered[0] if key != "uscc"}
        updates["updated_at"] = func.now()
        stored = set(
            (
                await self._session.execute(
                    stmt.on_conflict_do_update(
                        index_elements=[Enterprise.uscc],
                        set_=updates,
                        where=Enterprise.version < stmt.excluded.version,
                    ).returning(Enterprise.uscc)
                )
            ).scalars()
        )
        if not stored:
            return stored
        await self._session.execute(delete(FormerName).where(FormerName.uscc.in_(sorted(stored))))
        names = [
            {"uscc": uscc, "position": position, "name": n["name"], "until": n["until"]}
            for uscc in sorted(stored)
            for position, n in enumerate(former_names.get(uscc, ()))
        ]
        if names:
            await self._session.execute(insert(FormerName), names)
        return stored

    async def upsert_items(self, rows: Sequence[dict[str, Any]]) -> set[uuid.UUID]:
        """Store the items newer than the stored ones (one per record, all with
        the same keys), in record order; returns the record ids stored."""
        if not rows:
            return set()
        ordered = sorted(rows, key=lambda row: str(row["record_id"]))
        stmt = pg_insert(PublicItem).values(ordered)
        return set(
            (
                await self._session.execute(
                    stmt.on_conflict_do_update(
                        index_elements=[PublicItem.record_id],
                        set_={key: stmt.excluded[key] for key in ordered[0] if key != "record_id"},
                        where=PublicItem.version < stmt.excluded.version,
                    ).returning(PublicItem.record_id)
                )
            ).scalars()
        )

    async def upsert_repair(self, values: dict[str, Any]) -> bool:
        stmt = pg_insert(CreditRepair).values(**values)
        stored = (
            await self._session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[CreditRepair.record_id],
                    set_={key: stmt.excluded[key] for key in values if key != "record_id"},
                    where=CreditRepair.version < stmt.excluded.version,
                ).returning(CreditRepair.record_id)
            )
        ).first()
        return stored is not None

    async def refresh_items(
        self,
        usccs: Collection[str],
        catalogue: PublicationCatalogue,
        today: date,
        *,
        repairs: Collection[str] = (),
    ) -> None:
        """Recompute enterprises' withdrawal marks, and for those in ``repairs``
        their early ends (credit repairs), from what is stored, whatever order
        the events came in."""
        if not usccs:
            return
        minimum_days = catalogue.credit_repair.minimum_days
        if repairs and minimum_days:
            repair = CreditRepair.__table__.alias("repair")
            earliest_end = func.greatest(
                repair.c.effective_on,
                PublicItem.occurred_on
                + case(
                    *((PublicItem.category == key, days) for key, days in minimum_days.items()),
                    else_=0,
                ),
            )
            names_item = or_(
                repair.c.target_record_id == PublicItem.record_id,
                and_(
                    repair.c.target_record_id.is_(None),
                    repair.c.target_category == PublicItem.category,
                    repair.c.target_source_id == PublicItem.source_id,
                    or_(
                        repair.c.target_department.is_(None),
                        repair.c.target_department == PublicItem.department,
                    ),
                ),
            )
            repaired_on = (
                select(func.min(earliest_end))
                .where(repair.c.uscc == PublicItem.uscc, repair.c.status == "active", names_item)
                .scalar_subquery()
            )
            await self._session.execute(
                update(PublicItem)
                .where(PublicItem.uscc.in_(sorted(repairs)), PublicItem.category.in_(minimum_days))
                .values(repaired_on=repaired_on)
            )
        reason = withdrawal_reason(catalogue, today)
        await self._session.execute(
            update(PublicItem)
            .where(
                PublicItem.uscc.in_(sorted(usccs)),
                PublicItem.withdrawn_reason.is_distinct_from(reason),
            )
            .values(
                withdrawn_reason=reason,
                withdrawn_at=case((reason.is_(None), None), else_=func.now()),
            )
        )

    async def upsert_measure(self, values: dict[str, Any]) -> bool:
        """Triggers and lifts of one (enterprise, rule) apply in decision order,
        whatever order they arrive in. One evaluation that revises a rule lifts the
        old version and triggers the new one at the same instant (in that order):
        at equal times the higher rule version wins, then the trigger."""
        stmt = pg_insert(JointMeasure).values(**values)
        keys = ("uscc", "rule_id")
        stored_order = tuple_(
            JointMeasure.decided_at, JointMeasure.rule_version, JointMeasure.active
        )
        new_order = tuple_(
            stmt.excluded.decided_at, stmt.excluded.rule_version, stmt.excluded.active
        )
        stored = (
            await self._session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[JointMeasure.uscc, JointMeasure.rule_id],
                    set_={key: stmt.excluded[key] for key in values if key not in keys},
                    where=stored_order <= new_order,
                ).returning(JointMeasure.uscc)
            )
        ).first()
        return stored is not None


# --- withdrawals -------------------------------------------------------------

# pg_try_advisory_xact_lock key: one withdrawal sweep at a time across replicas.
WITHDRAWAL_LOCK_KEY = 0x5055424C  # "PUBL"


class WithdrawalRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def try_lock(self) -> bool:
        locked = await self._session.execute(
            select(func.pg_try_advisory_xact_lock(WITHDRAWAL_LOCK_KEY))
        )
        return bool(locked.scalar_one())

    async def withdraw_due(self, catalogue: PublicationCatalogue, today: date) -> dict[str, int]:
        """Mark the items whose period or early end has come (index on the due date)."""
        reason = withdrawal_reason(catalogue, today)
        rows = await self._session.execute(
            update(PublicItem)
            .where(
                PublicItem.withdrawn_reason.is_(None),
                func.least(PublicItem.publish_until, PublicItem.repaired_on) <= today,
            )
            .values(withdrawn_reason=reason, withdrawn_at=func.now())
            .returning(PublicItem.withdrawn_reason)
        )
        return _count_reasons(row[0] for row in rows)

    async def reconcile(self, catalogue: PublicationCatalogue, today: date) -> dict[str, int]:
        """Bring every mark in line with the rules (after a catalogue change)."""
        reason = withdrawal_reason(catalogue, today)
        rows = await self._session.execute(
            update(PublicItem)
            .where(PublicItem.withdrawn_reason.is_distinct_from(reason))
            .values(
                withdrawn_reason=reason,
                withdrawn_at=case((reason.is_(None), None), else_=func.now()),
            )
            .returning(PublicItem.withdrawn_reason)
        )
        return _count_reasons(row[0] or "republished" for row in rows)


def _count_reasons(reasons: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for reason in reasons:
        counts[str(reason)] = counts.get(str(reason), 0) + 1
    return counts


# --- the name search ---------------------------------------------------------

# Session settings for every search statement: plan each statement for its
# own pattern (a cached generic plan cannot know how many names '%x%'
# matches), no JIT compilation of a few-millisecond query, no parallel
# workers on a two-core host, and a ceiling on a runaway statement.
_SEARCH_SETTINGS = text(
    "SELECT set_config('plan_cache_mode', 'force_custom_plan', true),"
    " set_config('jit', 'off', true),"
    " set_config('max_parallel_workers_per_gather', '0', true),"
    " set_config('statement_timeout', :timeout, true)"
)
# Ranked mode is only used when few rows match: a bitmap of the matches is
# always right. Broad mode walks indexes in result order: stopping after a
# page is always right, since at least RESULT_CAP rows match.
_RANKED_SETTINGS = text("SELECT set_config('enable_seqscan', 'off', true)")
_BROAD_SETTINGS = text(
    "SELECT set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true)"
)
_LOWER_C = 'lower({0}) COLLATE "C"'
# Broad mode looks at this many names starting with the fragment (in name
# order) for the prefix matches that pass the filters; the others still come
# among the "contains" matches.
PREFIX_WINDOW = 500


@dataclass(frozen=True)
class SearchCriteria:
    """A validated search: a name fragment and/or filters."""

    text: str | None = None
    legal_representative: str | None = None
    statuses: tuple[str, ...] = ()
    district: str | None = None
    listed: tuple[str, ...] = ()


@dataclass(frozen=True)
class SearchStatements:
    """The SQL of one search, so that a benchmark can time the same statements
    without the service around them."""

    count: TextClause
    ranked: TextClause
    broad: TextClause
    params: dict[str, Any] = field(default_factory=dict)


class NameSearch:
    """Builds the statements of a search.

    Matching: a two-character fragment through the stored character pairs
    (``name_bigrams @> {xy}``), three or more through pg_trgm (``ILIKE
    '%xyz%'`` on the trigram index), exact and prefix through the
    C-collation btree on ``lower(name)``. Former names match too.

    First a capped count. Up to ``cap`` matches: every match is ranked, exact
    name first, then prefix, then the rest, current names before former ones,
    then by trigram similarity. Beyond it (a fragment like 重庆 matches nearly
    everything): exact matches, then prefix matches in name order (among the
    first ``PREFIX_WINDOW`` names with that prefix), then the other matches in
    the order of a hash of their code, each walked in index order and stopped
    after the page, and the total says "more than ``cap``". The hash order
    cannot correlate with the names (the code's division digits do: ordering
    by code puts a whole district last), so a walk over at least ``cap``
    matches among N rows reads about ``page end × N / cap`` rows at most.
    """

    def __init__(self, criteria: SearchCriteria, *, cap: int) -> None:
        self.criteria = criteria
        self.cap = cap

    def statements(self, *, offset: int, limit: int) -> SearchStatements:
        c = self.criteria
        params: dict[str, Any] = {
            "cap_plus_one": self.cap + 1,
            "offset": offset,
            "limit": limit,
            "depth": offset + limit,
            "prefix_window": PREFIX_WINDOW,
        }
        filters = ["e.registered"]
        if c.statuses:
            filters.append("e.status_code = ANY(CAST(:statuses AS text[]))")
            params["statuses"] = list(c.statuses)
        if c.district:
            filters.append("e.division_code = :district")
            params["district"] = c.district
        if c.listed:
            filters.append("(" + " OR ".join(f"e.{flag}" for flag in c.listed) + ")")
        if c.legal_representative:
            filters.append("e.legal_representative = :legal_representative")
            params["legal_representative"] = c.legal_representative
        where = " AND ".join(filters)
        if c.text is None:
            return self._browse(where, params)
        lowered = c.text.lower()
        params.update(q=c.text, lq=lowered, prefix=escape_like(lowered) + "%")
        if len(c.text) == 2:
            params["pair"] = [lowered]
            current = "e.name_bigrams @> CAST(:pair AS text[])"
            former = "e.former_names_bigrams @> CAST(:pair AS text[])"
        else:
            params["contains"] = f"%{escape_like(c.text)}%"
            current = "e.name ILIKE :contains"
            former = "e.former_names_text ILIKE :contains"
        lower_name, lower_former = _LOWER_C.format("e.name"), _LOWER_C.format("f.name")

        def rank(name: str) -> str:
            return (
                f"CASE WHEN {_LOWER_C.format(name)} = :lq THEN 0"
                f" WHEN {_LOWER_C.format(name)} LIKE :prefix THEN 1 ELSE 2 END"
            )

        count = text(
            "SELECT count(*) FROM (SELECT 1 FROM publicity.enterprises e"
            f" WHERE ({current} OR {former}) AND {where} LIMIT :cap_plus_one) AS capped"
        )
        ranked = _with_enterprises(
            f"""
            SELECT d.uscc, d.matched_name, d.match, d.rank, d.former, d.score FROM (
                SELECT DISTINCT ON (m.uscc) m.* FROM (
                    SELECT e.uscc, e.name AS matched_name, 'name' AS match,
                           {rank("e.name")} AS rank, 0 AS former,
                           similarity(e.name, :q) AS score
                    FROM publicity.enterprises e WHERE {current} AND {where}
                    UNION ALL
                    SELECT e.uscc, f.name, 'former_name', {rank("f.name")}, 1,
                           similarity(f.name, :q)
                    FROM publicity.enterprises e
                    JOIN publicity.former_names f ON f.uscc = e.uscc
                    WHERE {former} AND {where} AND strpos(lower(f.name), :lq) > 0
                ) AS m
                ORDER BY m.uscc, m.rank, m.former, m.score DESC
            ) AS d
            ORDER BY d.rank, d.former, d.score DESC, d.matched_name COLLATE "C", d.uscc
            LIMIT :limit OFFSET :offset
            """,
            'page.rank, page.former, page.score DESC, page.matched_name COLLATE "C", page.uscc',
        )
        broad = _with_enterprises(
            f"""
            SELECT d.uscc, d.matched_name, d.match, d.rank, d.sort_key FROM (
                SELECT DISTINCT ON (m.uscc) m.* FROM (
                    (SELECT e.uscc, e.name AS matched_name, 'name' AS match, 0 AS rank,
                            '' AS sort_key
                     FROM publicity.enterprises e
                     WHERE {lower_name} = :lq AND {where} LIMIT :depth)
                    UNION ALL
                    (SELECT e.uscc, f.name, 'former_name', 0, ''
                     FROM publicity.former_names f
                     JOIN publicity.enterprises e ON e.uscc = f.uscc
                     WHERE {lower_former} = :lq AND {where} LIMIT :depth)
                    UNION ALL
                    (SELECT e.uscc, e.name, 'name', 1, {lower_name}
                     FROM (SELECT * FROM publicity.enterprises e
                           WHERE {lower_name} LIKE :prefix
                           ORDER BY {lower_name}, e.uscc LIMIT :prefix_window) AS e
                     WHERE {where} ORDER BY {lower_name}, e.uscc LIMIT :depth)
                    UNION ALL
                    (SELECT e.uscc, e.name, 'name', 2, md5(e.uscc)
                     FROM publicity.enterprises e
                     WHERE {current} AND {where} ORDER BY md5(e.uscc) LIMIT :depth)
                ) AS m
                ORDER BY m.uscc, m.rank
            ) AS d
            ORDER BY d.rank, d.sort_key COLLATE "C", d.uscc
            LIMIT :limit OFFSET :offset
            """,
            'page.rank, page.sort_key COLLATE "C", page.uscc',
        )
        return SearchStatements(count, ranked, broad, params)

    def _browse(self, where: str, params: dict[str, Any]) -> SearchStatements:
        """No name: the filtered enterprises in name order."""
        lower_name = _LOWER_C.format("e.name")
        count = text(
            "SELECT count(*) FROM (SELECT 1 FROM publicity.enterprises e"
            f" WHERE {where} LIMIT :cap_plus_one) AS capped"
        )
        page = _with_enterprises(
            f"SELECT e.uscc, e.name AS matched_name, 'filter' AS match, {lower_name} AS sort_key"
            f" FROM publicity.enterprises e WHERE {where}"
            f" ORDER BY {lower_name}, e.uscc LIMIT :limit OFFSET :offset",
            'page.sort_key COLLATE "C", page.uscc',
        )
        return SearchStatements(count, page, page, params)


# What a search hit shows of an enterprise (the page query returns them itself).
_HIT_COLUMNS = (
    "x.uscc, x.name, x.legal_representative, x.status, x.status_code, x.established_on,"
    " x.enterprise_type, x.division_code, x.flags"
)


def _with_enterprises(page: str, order: str) -> TextClause:
    return text(
        f"SELECT {_HIT_COLUMNS}, page.matched_name, page.match FROM ({page}) AS page"
        f" JOIN publicity.enterprises x ON x.uscc = page.uscc ORDER BY {order}"
    )


@dataclass(frozen=True)
class SearchPage:
    rows: list[Any]
    """Rows with the hit columns, ``matched_name`` and ``match``."""
    total: int
    total_exact: bool


class SearchTooBroad(Exception):
    """More than the cap match and the page lies beyond the broad mode's depth."""

    def __init__(self, depth: int) -> None:
        super().__init__(depth)
        self.depth = depth


def search_timeout() -> ProblemError:
    return ProblemError(
        503,
        "search_timeout",
        "Search took too long",
        "the search was stopped; try a longer part of the name or a filter",
        headers={"Retry-After": "5"},
    )


# --- public reads ------------------------------------------------------------


class PublicQueryRepository:
    """Reads for the public API: only registered enterprises, only published items."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def registered(self, uscc: str) -> Enterprise | None:
        return (
            await self._session.execute(
                select(Enterprise).where(Enterprise.uscc == uscc, Enterprise.registered.is_(True))
            )
        ).scalar_one_or_none()

    async def by_registration_number(self, number: str) -> Enterprise | None:
        return (
            (
                await self._session.execute(
                    select(Enterprise)
                    .where(
                        Enterprise.registration_number == number,
                        Enterprise.registered.is_(True),
                    )
                    .order_by(Enterprise.uscc)
                    .limit(1)
                )
            )
            .scalars()
            .first()
        )

    async def search(
        self,
        search: NameSearch,
        *,
        offset: int,
        limit: int,
        broad_depth: int,
        timeout_ms: int,
    ) -> SearchPage:
        statements = search.statements(offset=offset, limit=limit)
        session = self._session
        try:
            await session.execute(_SEARCH_SETTINGS, {"timeout": str(timeout_ms)})
            matching = int(
                (await session.execute(statements.count, statements.params)).scalar_one()
            )
            exact = matching <= search.cap
            if not exact and offset >= broad_depth:
                raise SearchTooBroad(broad_depth)
            if exact:
                await session.execute(_RANKED_SETTINGS)
                statement = statements.ranked
            else:
                await session.execute(_BROAD_SETTINGS)
                statement = statements.broad
            rows = (await session.execute(statement, statements.params)).all()
        except DBAPIError as exc:
            if "canceling statement due to statement timeout" in str(exc.orig):
                raise search_timeout() from exc
            raise
        return SearchPage(rows=list(rows), total=min(matching, search.cap), total_exact=exact)

    async def active_measures(self, uscc: str, today: date) -> list[JointMeasure]:
        return list(
            (
                await self._session.execute(
                    select(JointMeasure)
                    .where(
                        JointMeasure.uscc == uscc,
                        JointMeasure.active.is_(True),
                        or_(JointMeasure.until.is_(None), JointMeasure.until >= today),
                    )
                    .order_by(JointMeasure.since, JointMeasure.rule_id)
                )
            ).scalars()
        )

    async def section_counts(
        self, uscc: str, catalogue: PublicationCatalogue, today: date
    ) -> dict[str, int]:
        rows = await self._session.execute(
            select(PublicItem.category, func.count())
            .where(PublicItem.uscc == uscc, published(catalogue, today))
            .group_by(PublicItem.category)
        )
        return {category: int(count) for category, count in rows}

    async def published_items(
        self,
        uscc: str,
        categories: Sequence[str],
        catalogue: PublicationCatalogue,
        today: date,
        *,
        limit: int | None = None,
        offset: int = 0,
    ) -> tuple[list[PublicItem], int]:
        """Newest first; the record id breaks ties so pages never overlap."""
        condition = and_(
            PublicItem.uscc == uscc,
            PublicItem.category.in_(list(categories)),
            published(catalogue, today),
        )
        query = (
            select(PublicItem)
            .where(condition)
            .order_by(PublicItem.occurred_on.desc(), PublicItem.record_id)
            .offset(offset)
        )
        if limit is not None:
            query = query.limit(limit)
        items = list((await self._session.execute(query)).scalars())
        if limit is None:
            return items, offset + len(items)
        total = (
            await self._session.execute(
                select(func.count()).select_from(PublicItem).where(condition)
            )
        ).scalar_one()
        return items, int(total)

    async def statistics(
        self, catalogue: PublicationCatalogue, today: date
    ) -> tuple[dict[str, int], dict[str, int]]:
        enterprises = (
            await self._session.execute(
                select(
                    func.count(),
                    func.count().filter(Enterprise.abnormal_operation),
                    func.count().filter(Enterprise.serious_illegal),
                ).where(Enterprise.registered.is_(True))
            )
        ).one()
        per_category = await self._session.execute(
            select(PublicItem.category, func.count())
            .where(published(catalogue, today))
            .group_by(PublicItem.category)
        )
        return (
            {
                "enterprises": int(enterprises[0]),
                "abnormal_operation": int(enterprises[1]),
                "serious_illegal": int(enterprises[2]),
            },
            {category: int(count) for category, count in per_category},
        )
