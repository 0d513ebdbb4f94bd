"""All of publicity's SQL: the projection writes and the public queries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from ecips_publicity.catalogue import DatedPublication
from ecips_publicity.models import Enterprise, FormerName, JointMeasure, PublicItem

_LIKE_ESCAPE = "\\"


def escape_like(text: str) -> str:
    """Make ``text`` match literally inside an ILIKE pattern."""
    return (
        text.replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2)
        .replace("%", _LIKE_ESCAPE + "%")
        .replace("_", _LIKE_ESCAPE + "_")
    )


def visible_items(today: date, dated: DatedPublication) -> ColumnElement[bool]:
    """What the public may see of a record, decided at query time so that a
    publicity period ends on its day without any event."""
    return and_(
        PublicItem.disclosure == "public",
        PublicItem.status == "active",
        or_(PublicItem.publish_until.is_(None), PublicItem.publish_until > today),
        or_(
            PublicItem.category.not_in(dated.categories),
            PublicItem.occurred_on >= dated.since,
        ),
    )


class ProjectionRepository:
    """Writes of the read model; every write keeps the newest version."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def upsert_enterprise(
        self, values: dict[str, Any], former_names: Sequence[dict[str, Any]]
    ) -> bool:
        """Store the snapshot if it is newer than the stored one; True if stored."""
        stmt = pg_insert(Enterprise).values(**values)
        updates: dict[str, Any] = {key: stmt.excluded[key] for key in values if key != "uscc"}
        updates["updated_at"] = func.now()
        stored = (
            await self._session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[Enterprise.uscc],
                    set_=updates,
                    where=Enterprise.version < stmt.excluded.version,
                ).returning(Enterprise.uscc)
            )
        ).first()
        if stored is None:
            return False
        uscc = values["uscc"]
        await self._session.execute(delete(FormerName).where(FormerName.uscc == uscc))
        if former_names:
            await self._session.execute(
                insert(FormerName),
                [
                    {"uscc": uscc, "position": position, "name": n["name"], "until": n["until"]}
                    for position, n in enumerate(former_names)
                ],
            )
        return True

    async def upsert_item(self, values: dict[str, Any]) -> bool:
        stmt = pg_insert(PublicItem).values(**values)
        stored = (
            await self._session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[PublicItem.record_id],
                    set_={key: stmt.excluded[key] for key in values if key != "record_id"},
                    where=PublicItem.version < stmt.excluded.version,
                ).returning(PublicItem.record_id)
            )
        ).first()
        return stored is not None

    async def upsert_measure(self, values: dict[str, Any]) -> bool:
        """Triggers and lifts of one (enterprise, rule) apply in decision order."""
        stmt = pg_insert(JointMeasure).values(**values)
        keys = ("uscc", "rule_id")
        stored = (
            await self._session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[JointMeasure.uscc, JointMeasure.rule_id],
                    set_={key: stmt.excluded[key] for key in values if key not in keys},
                    where=JointMeasure.decided_at <= stmt.excluded.decided_at,
                ).returning(JointMeasure.uscc)
            )
        ).first()
        return stored is not None


class PublicQueryRepository:
    """Reads for the public API: only registered enterprises, only visible items."""

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

    async def search_names(
        self, text: str, *, limit: int, offset: int
    ) -> tuple[list[tuple[Enterprise, str]], int]:
        """Enterprises whose current or a former name contains ``text``: exact
        name first, then prefix, then contains, then by trigram similarity.

        An enterprise is ranked by its current name when that matches, else by
        its best-matching former name. Both branches filter through the
        trigram indexes; only the page's rows are sorted in full (top-N).
        """
        escaped = escape_like(text)
        contains = f"%{escaped}%"
        query = literal(text)

        def ranked(
            name: InstrumentedAttribute[str],
        ) -> tuple[ColumnElement[int], ColumnElement[float]]:
            rank = case(
                (func.lower(name) == func.lower(query), 0),
                (name.ilike(f"{escaped}%", escape=_LIKE_ESCAPE), 1),
                else_=2,
            )
            return rank, func.similarity(name, query)

        current_rank, current_score = ranked(Enterprise.name)
        by_current = select(
            Enterprise.uscc.label("uscc"),
            Enterprise.name.label("matched_name"),
            current_rank.label("rank"),
            current_score.label("score"),
        ).where(
            Enterprise.registered.is_(True),
            Enterprise.name.ilike(contains, escape=_LIKE_ESCAPE),
        )
        former_rank, former_score = ranked(FormerName.name)
        by_former = (
            select(
                FormerName.uscc.label("uscc"),
                FormerName.name.label("matched_name"),
                former_rank.label("rank"),
                former_score.label("score"),
            )
            .join(Enterprise, Enterprise.uscc == FormerName.uscc)
            .where(
                Enterprise.registered.is_(True),
                FormerName.name.ilike(contains, escape=_LIKE_ESCAPE),
                Enterprise.name.not_ilike(contains, escape=_LIKE_ESCAPE),
            )
            .ext(distinct_on(FormerName.uscc))
            .order_by(FormerName.uscc, former_rank, former_score.desc())
        )
        matches = union_all(by_current, by_former).subquery("matches")
        total = (
            await self._session.execute(select(func.count()).select_from(matches))
        ).scalar_one()
        page = (
            select(matches)
            .order_by(
                matches.c.rank,
                matches.c.score.desc(),
                matches.c.matched_name,
                matches.c.uscc,
            )
            .limit(limit)
            .offset(offset)
            .subquery("page")
        )
        rows = (
            await self._session.execute(
                select(Enterprise, page.c.matched_name)
                .join(page, page.c.uscc == Enterprise.uscc)
                .order_by(page.c.rank, page.c.score.desc(), page.c.matched_name, page.c.uscc)
            )
        ).all()
        hits = [(row[0], row[1]) for row in rows]
        return hits, int(total)

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
        self, uscc: str, today: date, dated: DatedPublication
    ) -> dict[str, int]:
        rows = await self._session.execute(
            select(PublicItem.category, func.count())
            .where(PublicItem.uscc == uscc, visible_items(today, dated))
            .group_by(PublicItem.category)
        )
        return {category: int(count) for category, count in rows}

    async def visible_items(
        self,
        uscc: str,
        category: str,
        today: date,
        dated: DatedPublication,
        *,
        limit: int,
        offset: int,
    ) -> tuple[list[PublicItem], int]:
        condition = and_(
            PublicItem.uscc == uscc,
            PublicItem.category == category,
            visible_items(today, dated),
        )
        total = (
            await self._session.execute(
                select(func.count()).select_from(PublicItem).where(condition)
            )
        ).scalar_one()
        items = (
            await self._session.execute(
                select(PublicItem)
                .where(condition)
                .order_by(PublicItem.occurred_on.desc(), PublicItem.record_id)
                .limit(limit)
                .offset(offset)
            )
        ).scalars()
        return list(items), int(total)
