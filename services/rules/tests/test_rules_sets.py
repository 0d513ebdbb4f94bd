"""Applying a run of ledger snapshots as sets leaves exactly what applying them
one by one leaves: the enterprises, the punishments and their measures, the
events in order, and each snapshot's outcome."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from rules_testkit import apply, fresh_database, migrated_database, new_uscc, snapshot
from sqlalchemy import select

from ecips_common.db import Database
from ecips_rules.catalogue import load_catalogue
from ecips_rules.models import ActiveMeasure, Enterprise, Punishment
from ecips_rules.registry import CatalogueRegistry
from ecips_rules.service import EvaluationOutcome, EvaluationService
from ecips_rules.settings import CATALOGUE_FILE

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Chongqing


@pytest.fixture
def other_database_url(database_url: str) -> Iterator[str]:
    """A second empty database, to apply the same snapshots another way."""
    with fresh_database(database_url) as url:
        yield url


async def opened(url: str) -> AsyncIterator[Database]:
    database = await migrated_database(url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def one_by_one(rules_database_url: str) -> AsyncIterator[Database]:
    async for database in opened(rules_database_url):
        yield database


@pytest.fixture
async def as_sets(other_database_url: str) -> AsyncIterator[Database]:
    async for database in opened(other_database_url):
        yield database


def listed(flag: str, since: str) -> dict[str, Any]:
    return {flag: True, f"{flag}_since": since, f"{flag}_reason": "测试"}


def without_id(row: Any) -> dict[str, Any]:
    """A table row without its punishment id (drawn at random on each side)."""
    return {
        column.key: getattr(row, column.key)
        for column in row.__table__.columns
        if column.key != "punishment_id"
    }


async def held_state(database: Database) -> dict[str, list[Any]]:
    """Every row the evaluation writes, in a stable order, and the events in
    the order they went out."""
    outbox = database.tables.outbox
    async with database.read_only() as session:
        enterprises = (await session.execute(select(Enterprise))).scalars().all()
        punishments = (await session.execute(select(Punishment))).scalars().all()
        measures = (await session.execute(select(ActiveMeasure))).scalars().all()
        events = (
            await session.execute(
                select(
                    outbox.c.topic,
                    outbox.c.event_type,
                    outbox.c.subject,
                    outbox.c.partition_key,
                    outbox.c.data,
                ).order_by(outbox.c.seq)
            )
        ).all()
    return {
        "enterprises": sorted((without_id(e) for e in enterprises), key=repr),
        "punishments": sorted((without_id(p) for p in punishments), key=repr),
        "active_measures": sorted((without_id(m) for m in measures), key=repr),
        "events": [tuple(e) for e in events],
    }


async def applied_alone(
    database: Database, registry: CatalogueRegistry, data: dict[str, Any]
) -> EvaluationOutcome:
    async with database.unit_of_work() as uow:
        return await EvaluationService(uow, registry, now=NOW).apply(data)


async def test_a_mixed_run_applied_as_sets_ends_as_applied_one_by_one(
    one_by_one: Database, as_sets: Database
) -> None:
    registry = CatalogueRegistry(load_catalogue(CATALOGUE_FILE))
    clean, listing, repeated, delisted, older, stale = (new_uscc() for _ in range(6))
    serious = {"flags": listed("serious_illegal", "2025-04-01")}
    tax = {"flags": listed("major_tax_violation", "2026-01-05")}
    held_before = [
        snapshot(delisted, 1, **serious),
        snapshot(older, 3),
        snapshot(stale, 3, **tax),
    ]
    run = [
        snapshot(clean, 1),
        snapshot(repeated, 1, record_counts={"registration": 1, "tax_arrears": 1}),
        snapshot(delisted, 2),  # a removal: lifts
        snapshot(older, 5, **tax),
        snapshot(listing, 1, **serious),  # a listing: triggers
        snapshot(repeated, 2, **serious),  # decided on what version 1 stored
        snapshot(older, 4, **serious),  # older than the one before it: ignored
        snapshot(stale, 2),  # older than the one held: ignored
        snapshot(repeated, 3),  # lifts what version 2 triggered
        snapshot(repeated, 3, **tax),  # the same version again: ignored
        snapshot(clean, 2, record_counts={"registration": 1, "commendation": 1}),
    ]
    for database in (one_by_one, as_sets):
        for data in held_before:
            await apply(database, registry, data, NOW)

    singly = [await applied_alone(one_by_one, registry, data) for data in run]
    async with as_sets.unit_of_work() as uow:
        together = await EvaluationService(uow, registry, now=NOW).apply_many(run)

    assert together == singly
    assert [outcome.applied for outcome in together] == [
        True, True, True, True, True, True, False, False, True, False, True,
    ]  # fmt: skip
    # The run covers triggering and lifting, not only bookkeeping.
    assert together[2].lifted == ("serious_illegal_dishonest",)
    assert together[4].triggered == ("serious_illegal_dishonest",)
    assert together[5].triggered == ("serious_illegal_dishonest",)
    assert together[8].lifted == ("serious_illegal_dishonest",)
    expected = await held_state(one_by_one)
    assert len(expected["events"]) >= 5
    assert await held_state(as_sets) == expected


async def test_an_empty_run_changes_nothing(one_by_one: Database) -> None:
    registry = CatalogueRegistry(load_catalogue(CATALOGUE_FILE))
    async with one_by_one.unit_of_work() as uow:
        assert await EvaluationService(uow, registry, now=NOW).apply_many([]) == []
        assert uow.pending == []
