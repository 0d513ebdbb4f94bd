"""The ledger's snapshots and filings applied as a set, in one transaction,
end exactly where applying them one by one ends: the same registrations, the
same tasks and the same events told to the coordination topic."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest
from coordination_support import enterprise_changed, new_uscc, record_filed
from sqlalchemy import event, select

from ecips.runtime.postgres import (
    drop_database,
    ensure_database,
    to_asyncpg_dsn,
    to_sqlalchemy_url,
    with_database,
)
from ecips_common.consumer import EventProcessor
from ecips_common.contracts import EnterpriseChanged, RecordFiled
from ecips_common.db import Database, create_engine
from ecips_common.events import CloudEvent, source_uri
from ecips_common.migrations import upgrade_to_head_async
from ecips_coordination.catalogue import ApprovalCatalogue, Match, load_approval_catalogue
from ecips_coordination.consumers import make_handlers
from ecips_coordination.models import OUTBOX, Registration, Task
from ecips_coordination.service import Environment

NOW = datetime(2026, 6, 3, 2, 0, tzinfo=UTC)
FOOD = "许可项目：食品销售；餐饮服务。一般项目：日用百货销售"
FOOD_AND_CHEMICALS = "许可项目：食品销售；餐饮服务；危险化学品经营。一般项目：日用百货销售"
HARDWARE = "一般项目：五金产品零售；日用百货销售"
HOTEL = "许可项目：住宿服务；烟草制品零售"


class CountingCatalogue(ApprovalCatalogue):
    """The shipped catalogue, counting the scopes it is asked to match."""

    def __init__(self, shipped: ApprovalCatalogue) -> None:
        self.__dict__.update(vars(shipped))
        self.matched_scopes = 0

    def match(self, scope: str | None) -> list[Match]:
        self.matched_scopes += 1
        return super().match(scope)


@dataclass
class Consumer:
    database: Database
    processor: EventProcessor
    catalogue: CountingCatalogue
    statements: list[str]


@pytest.fixture
async def consumers(database_url: str) -> AsyncIterator[tuple[Consumer, Consumer]]:
    """Two coordination consumers, each on a new database of its own."""
    server = to_asyncpg_dsn(database_url)
    names = [f"ecips_coordination_runs_{secrets.token_hex(4)}_{n}" for n in range(2)]
    made: list[Consumer] = []
    try:
        for name in names:
            ensure_database(server, name)
            url = to_sqlalchemy_url(with_database(server, name))
            await upgrade_to_head_async("ecips_coordination", url, "coordination")
            database = Database(create_engine(url, application_name="ledger-runs"), OUTBOX)
            statements: list[str] = []

            @event.listens_for(database.engine.sync_engine, "before_cursor_execute")
            def record(_c: Any, _k: Any, sql: str, *_: Any, log: list[str] = statements) -> None:
                log.append(sql)

            catalogue = CountingCatalogue(load_approval_catalogue())
            env = Environment(approvals=catalogue, clock=lambda: NOW)
            processor = EventProcessor(
                service="coordination", database=database, handlers=make_handlers(env)
            )
            made.append(Consumer(database, processor, catalogue, statements))
        yield made[0], made[1]
    finally:
        for consumer in made:
            await consumer.database.dispose()
        for name in names:
            drop_database(server, name)


def ledger_event(event_type: str, data: dict[str, Any]) -> CloudEvent:
    return CloudEvent(
        id=str(uuid.uuid4()),
        source=source_uri("ledger"),
        type=event_type,
        subject=data["uscc"],
        time=NOW,
        sequence=1,
        data=data,
    )


def snapshot(uscc: str, version: int, scope: str | None, **fields: Any) -> CloudEvent:
    return ledger_event(
        EnterpriseChanged.event_type,
        enterprise_changed(uscc, version=version, scope=scope, **fields),
    )


def filing(uscc: str, category: str, occurred_on: date, **data: Any) -> CloudEvent:
    return ledger_event(
        RecordFiled.event_type,
        record_filed(
            uscc,
            category=category,
            source_id=f"{category}-{uscc[-6:]}-{occurred_on.isoformat()}",
            occurred_on=occurred_on,
            data=data,
        ),
    )


def _row(row: Any, leaving_out: tuple[str, ...] = ()) -> dict[str, Any]:
    return {k: v for k, v in row._mapping.items() if k not in leaving_out}


async def holdings(database: Database) -> dict[str, Any]:
    """Registrations, tasks (without the ids drawn for them) and the events told
    to the topic, in order (without task ids)."""
    registrations, tasks, outbox = (
        Registration.__table__,
        Task.__table__,
        OUTBOX.outbox,
    )
    async with database.read_only() as session:
        return {
            "registrations": [
                _row(r)
                for r in await session.execute(select(registrations).order_by(registrations.c.uscc))
            ],
            "tasks": [
                _row(t, ("task_id", "seq"))
                for t in await session.execute(select(tasks).order_by(tasks.c.idempotency_key))
            ],
            "outbox": [
                (event_type, subject, {k: v for k, v in data.items() if k != "task_id"})
                for event_type, subject, data in await session.execute(
                    select(outbox.c.event_type, outbox.c.subject, outbox.c.data).order_by(
                        outbox.c.seq
                    )
                )
            ],
        }


async def test_a_run_applied_as_a_set_ends_where_one_by_one_ends(
    consumers: tuple[Consumer, Consumer],
) -> None:
    founded, hotel, quiet = new_uscc(), new_uscc(), new_uscc()
    founding = filing(founded, "registration", date(2026, 3, 2), name="重庆渝信餐饮管理有限公司")
    founding_snapshot = snapshot(founded, 1, FOOD)
    run = [
        # A new registration: its filing, then its snapshot (tasks, trigger registration).
        founding,
        founding_snapshot,
        # A new enterprise met first through a filing coordination leaves alone.
        filing(hotel, "administrative_penalty", date(2026, 5, 1)),
        snapshot(hotel, 1, HARDWARE),
        # A scope change of the enterprise registered earlier in the run: its filing
        # is the reason and the day of the new task.
        filing(
            founded,
            "registration_change",
            date(2026, 6, 1),
            changes=[{"item": "business_scope", "after": FOOD_AND_CHEMICALS}],
        ),
        snapshot(founded, 3, FOOD_AND_CHEMICALS),
        # An older snapshot after the newer one: ignored.
        snapshot(founded, 2, FOOD),
        # Counts changed, nothing else.
        snapshot(founded, 4, FOOD_AND_CHEMICALS),
        filing(founded, "administrative_penalty", date(2026, 6, 2)),
        snapshot(hotel, 2, HARDWARE),
        # Deregistered with a scope that needs approvals, then active again with the
        # same scope: only the second opens tasks.
        snapshot(quiet, 1, HOTEL, status="注销"),
        snapshot(quiet, 2, HOTEL),
        snapshot(quiet, 3, HOTEL),
        snapshot(hotel, 3, HOTEL),
        # A redelivery inside the run.
        founding_snapshot,
    ]
    one_by_one, as_a_set = consumers

    outcomes = [await one_by_one.processor.process(e) for e in run]
    assert outcomes == ["applied"] * (len(run) - 1) + ["duplicate"]

    as_a_set.statements.clear()
    assert await as_a_set.processor.process_batch(run) == outcomes
    # The whole run locked and created its registrations together.
    registration_statements = [
        sql.split()[0]
        for sql in as_a_set.statements
        if "coordination.registrations" in sql and not sql.startswith("UPDATE")
    ]
    assert registration_statements == ["SELECT", "INSERT"]

    expected = await holdings(one_by_one.database)
    assert await holdings(as_a_set.database) == expected
    # Matched: the new scopes (founded 1 and 3, hotel 1 and 3, quiet 2) only.
    assert as_a_set.catalogue.matched_scopes == one_by_one.catalogue.matched_scopes == 5

    registrations = {r["uscc"]: r for r in expected["registrations"]}
    assert registrations[founded]["ledger_version"] == 4
    assert registrations[founded]["filing"]["category"] == "registration_change"
    assert registrations[quiet]["notified"] and registrations[hotel]["notified"]
    tasks = {(t["uscc"], t["measure"]): t for t in expected["tasks"]}
    assert tasks[(founded, "food_business")]["trigger"] == "registration"
    chemicals = tasks[(founded, "hazardous_chemicals_trade")]
    assert chemicals["trigger"] == "scope_change"
    assert chemicals["effective_on"] == date(2026, 6, 1)
    assert chemicals["source_event_id"] == run[5].id
    assert {t["trigger"] for (uscc, _), t in tasks.items() if uscc == quiet} == {"registration"}
    assert {t["trigger"] for (uscc, _), t in tasks.items() if uscc == hotel} == {"scope_change"}
    assert len(expected["outbox"]) == len(expected["tasks"])


async def test_snapshots_changing_only_counts_and_other_filings_cost_a_lock_and_an_update(
    consumers: tuple[Consumer, Consumer],
) -> None:
    consumer, _ = consumers
    usccs = [new_uscc() for _ in range(3)]
    await consumer.processor.process_batch([snapshot(uscc, 1, FOOD) for uscc in usccs])
    consumer.statements.clear()
    consumer.catalogue.matched_scopes = 0

    run = [
        event
        for version in (2, 3)
        for uscc in usccs
        for event in (
            filing(uscc, "administrative_penalty", date(2026, 5, version)),
            snapshot(uscc, version, FOOD),
        )
    ]
    assert await consumer.processor.process_batch(run) == ["applied"] * len(run)
    # The inbox claim, the rows locked, their versions written.
    assert [sql.split()[0] for sql in consumer.statements] == ["INSERT", "SELECT", "UPDATE"]
    assert consumer.catalogue.matched_scopes == 0
    registrations = (await holdings(consumer.database))["registrations"]
    assert {r["uscc"]: r["ledger_version"] for r in registrations} == dict.fromkeys(usccs, 3)
