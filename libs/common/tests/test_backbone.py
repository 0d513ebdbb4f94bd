"""The event backbone against real Postgres and the real broker: the outbox
written in the business transaction, the relay, the inbox that applies each
event once, dead letters, and the change-feed follower that repairs what
the broker never delivered."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import FastAPI, Query
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from ecips_common.consumer import (
    BatchHandler,
    EventProcessor,
    FeedFollower,
    KafkaEventConsumer,
    Upstream,
)
from ecips_common.db import Database, UnitOfWork, create_engine
from ecips_common.events import CloudEvent, EventPayload
from ecips_common.outbox import OutboxRelay, read_changes
from ecips_common.outbox_table import define_outbox_tables

SUFFIX = uuid.uuid4().hex[:8]
SCHEMA = f"backbone_{SUFFIX}"
metadata = MetaData(schema=SCHEMA)
counters = Table(
    "counters",
    metadata,
    Column("name", String(50), primary_key=True),
    Column("value", Integer, nullable=False),
)
TABLES = define_outbox_tables(metadata)


class Pinged(EventPayload):
    event_type = "test.pinged"
    topic = f"pings-{SUFFIX}"

    name: str


@pytest.fixture(scope="module")
async def database(database_url: str) -> AsyncIterator[Database]:
    engine = create_async_engine(database_url)
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"'))
        await conn.run_sync(metadata.create_all)
    await engine.dispose()
    db = Database(create_engine(database_url, application_name="backbone-test"), TABLES)
    yield db
    await db.dispose()


async def bump(uow: UnitOfWork, event: CloudEvent) -> None:
    name = Pinged.from_event(event).name
    await uow.session.execute(
        text(
            f'INSERT INTO "{SCHEMA}".counters (name, value) VALUES (:n, 1) '
            "ON CONFLICT (name) DO UPDATE SET value = counters.value + 1"
        ),
        {"n": name},
    )


async def counter(db: Database, name: str) -> int:
    async with db.read_only() as session:
        value = (
            await session.execute(select(counters.c.value).where(counters.c.name == name))
        ).scalar()
    return int(value or 0)


async def test_events_are_written_with_the_transaction_or_not_at_all(database: Database) -> None:
    before = await read_changes(database, "test", after=0, limit=1000)
    async with database.unit_of_work() as uow:
        uow.emit(Pinged(name="committed"), subject="91500000000000000X")
    with pytest.raises(RuntimeError):
        async with database.unit_of_work() as uow:
            uow.emit(Pinged(name="rolled-back"), subject="91500000000000000X")
            raise RuntimeError("business rule failed")
    after = await read_changes(database, "test", after=0, limit=1000)
    new = after[len(before) :]
    assert [e.data["name"] for e in new] == ["committed"]
    event = new[0]
    assert event.type == "test.pinged"
    assert event.subject == "91500000000000000X"
    assert event.source == "/ecips/test"
    assert event.sequence > (before[-1].sequence if before else 0)


async def test_relay_publishes_in_order_and_marks_rows_sent(
    database: Database, kafka_bootstrap: str
) -> None:
    names = [f"relay-{i}" for i in range(20)]
    for name in names:
        async with database.unit_of_work() as uow:
            uow.emit(Pinged(name=name), subject="K1")  # one key: one partition, in order
    relay = OutboxRelay(
        service="test",
        database=database,
        bootstrap_servers=kafka_bootstrap,
        topics={Pinged.topic: 3},
        poll_interval=0.1,
    )
    task = asyncio.create_task(relay.run())
    consumer = AIOKafkaConsumer(
        Pinged.topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        seen: list[CloudEvent] = []
        async with asyncio.timeout(20):
            while len([e for e in seen if e.data["name"] in names]) < len(names):
                for messages in (await consumer.getmany(timeout_ms=300)).values():
                    seen += [CloudEvent.model_validate(json.loads(m.value)) for m in messages]
        ours = [e for e in seen if e.data["name"] in names]
        assert [e.data["name"] for e in ours] == names
        assert [e.sequence for e in ours] == sorted(e.sequence for e in ours)
        async with database.read_only() as session:
            unsent = (
                await session.execute(
                    select(func.count())
                    .select_from(TABLES.outbox)
                    .where(TABLES.outbox.c.published_at.is_(None))
                )
            ).scalar_one()
        assert unsent == 0
    finally:
        task.cancel()
        await consumer.stop()
        await relay.close()


def ping(name: str, sequence: int = 1, age: timedelta = timedelta()) -> CloudEvent:
    return CloudEvent(
        id=str(uuid.uuid4()),
        source="/ecips/test",
        type=Pinged.event_type,
        subject="K",
        time=datetime.now(UTC) - age,
        sequence=sequence,
        data={"name": name},
    )


async def test_redelivered_events_apply_once(database: Database, kafka_bootstrap: str) -> None:
    processor = EventProcessor(
        service="test", database=database, handlers={Pinged.event_type: bump}
    )
    consumer = KafkaEventConsumer(
        service=f"group-{SUFFIX}",
        processor=processor,
        bootstrap_servers=kafka_bootstrap,
        topics=[Pinged.topic],
    )
    event = ping(f"dup-{SUFFIX}")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    for _ in range(3):
        await producer.send_and_wait(
            Pinged.topic, json.dumps(event.model_dump(mode="json")).encode(), key=b"K"
        )
    await producer.stop()
    task = asyncio.create_task(consumer.run())
    try:
        async with asyncio.timeout(20):
            while await counter(database, event.data["name"]) == 0:
                await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # let the duplicates through too
        assert await counter(database, event.data["name"]) == 1
    finally:
        task.cancel()
        await consumer.close()
    assert await processor.process(event) == "duplicate"


async def test_failing_event_goes_to_dead_letters(database: Database) -> None:
    async def broken(uow: UnitOfWork, event: CloudEvent) -> None:
        await bump(uow, event)
        raise ValueError("cannot apply")

    processor = EventProcessor(
        service="test", database=database, handlers={Pinged.event_type: broken}, max_attempts=2
    )
    event = ping(f"poison-{SUFFIX}")
    assert await processor.process(event) == "dead_letter"
    assert await counter(database, event.data["name"]) == 0  # the failed attempts rolled back
    async with database.read_only() as session:
        row = (
            await session.execute(
                select(TABLES.dead_letters).where(TABLES.dead_letters.c.event_id == event.id)
            )
        ).one()
    assert "cannot apply" in row.error
    assert row.attempts == 2
    assert await processor.process(event) == "duplicate"  # never retried forever


async def test_feed_follower_applies_what_the_broker_lost(database: Database) -> None:
    """Events only in the upstream's change feed (the broker lost them) are
    applied once they are older than the grace period; newer ones are left
    for the broker."""
    old = [ping(f"lost-{SUFFIX}-{i}", sequence=i + 1, age=timedelta(minutes=5)) for i in range(3)]
    fresh = ping(f"fresh-{SUFFIX}", sequence=4)
    feed = FastAPI()

    @feed.get("/v1/changes")
    async def changes(
        after: Annotated[int, Query()] = 0, limit: Annotated[int, Query()] = 100
    ) -> dict[str, object]:
        items = [e for e in [*old, fresh] if e.sequence > after][:limit]
        return {
            "items": [e.model_dump(mode="json") for e in items],
            "next_cursor": items[-1].sequence if items else after,
        }

    processor = EventProcessor(
        service="test", database=database, handlers={Pinged.event_type: bump}
    )
    # The broker did deliver the second one already.
    assert await processor.process(old[1]) == "applied"
    follower = FeedFollower(
        upstream=Upstream(
            name=f"upstream-{SUFFIX}", topic=Pinged.topic, feed_url="http://upstream/v1/changes"
        ),
        processor=processor,
        database=database,
        token=None,
        grace=60,
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=feed)) as client:
        assert await follower.catch_up(client) == 2
        assert await follower.catch_up(client) == 0  # resumes from its cursor
    for event in old:
        assert await counter(database, event.data["name"]) == 1
    assert await counter(database, fresh.data["name"]) == 0


async def test_a_poison_event_in_a_batch_does_not_hold_back_the_others(database: Database) -> None:
    async def picky(uow: UnitOfWork, event: CloudEvent) -> None:
        if Pinged.from_event(event).name.startswith("poison"):
            raise ValueError("cannot apply")
        await bump(uow, event)

    processor = EventProcessor(
        service="test", database=database, handlers={Pinged.event_type: picky}, max_attempts=1
    )
    good1, poison, good2 = ping(f"b1-{SUFFIX}"), ping(f"poison-b-{SUFFIX}"), ping(f"b2-{SUFFIX}")
    assert await processor.process_batch([good1, poison, good2, good1]) == [
        "applied",
        "dead_letter",
        "applied",
        "duplicate",
    ]
    assert await counter(database, good1.data["name"]) == 1
    assert await counter(database, good2.data["name"]) == 1
    assert await processor.process_batch([good1, good2]) == ["duplicate", "duplicate"]


class Ponged(EventPayload):
    event_type = "test.ponged"
    topic = f"pongs-{SUFFIX}"

    name: str


async def test_batch_handlers_get_runs_of_their_type_in_delivery_order(
    database: Database,
) -> None:
    """Consecutive new events of a batch-handled type arrive together; a
    single-event handler in between splits the run, so the order of effects is
    the delivery order; duplicates (within the batch or already in the inbox)
    and unknown types reach no handler."""
    calls: list[tuple[str, list[str]]] = []

    async def pings(uow: UnitOfWork, events: Sequence[CloudEvent]) -> None:
        calls.append(("pings", [Pinged.from_event(e).name for e in events]))
        for event in events:
            await bump(uow, event)

    async def pong(uow: UnitOfWork, event: CloudEvent) -> None:
        calls.append(("pong", [event.data["name"]]))

    processor = EventProcessor(
        service="test",
        database=database,
        handlers={Pinged.event_type: BatchHandler(pings), Ponged.event_type: pong},
    )
    a, b, c, d = (ping(f"run-{n}-{SUFFIX}") for n in "abcd")
    seen_before = ping(f"run-seen-{SUFFIX}")
    assert await processor.process(seen_before) == "applied"
    pong_event = a.model_copy(
        update={"id": str(uuid.uuid4()), "type": Ponged.event_type, "data": {"name": "p"}}
    )
    unknown = a.model_copy(update={"id": str(uuid.uuid4()), "type": "test.unknown"})
    outcomes = await processor.process_batch([a, b, seen_before, unknown, b, pong_event, c, d, a])
    assert outcomes == [
        "applied",
        "applied",
        "duplicate",
        "ignored",
        "duplicate",
        "applied",
        "applied",
        "applied",
        "duplicate",
    ]
    assert calls == [
        ("pings", [f"run-seen-{SUFFIX}"]),
        ("pings", [f"run-a-{SUFFIX}", f"run-b-{SUFFIX}"]),
        ("pong", ["p"]),
        ("pings", [f"run-c-{SUFFIX}", f"run-d-{SUFFIX}"]),
    ]
    for event in (a, b, c, d, seen_before):
        assert await counter(database, event.data["name"]) == 1


async def test_a_failing_batch_handler_falls_back_to_one_event_at_a_time(
    database: Database,
) -> None:
    async def pings(uow: UnitOfWork, events: Sequence[CloudEvent]) -> None:
        for event in events:
            if Pinged.from_event(event).name.startswith("poison"):
                raise ValueError("cannot apply")
            await bump(uow, event)

    processor = EventProcessor(
        service="test",
        database=database,
        handlers={Pinged.event_type: BatchHandler(pings)},
        max_attempts=1,
    )
    good, poison = ping(f"bh-good-{SUFFIX}"), ping(f"poison-bh-{SUFFIX}")
    assert await processor.process_batch([good, poison]) == ["applied", "dead_letter"]
    assert await counter(database, good.data["name"]) == 1
