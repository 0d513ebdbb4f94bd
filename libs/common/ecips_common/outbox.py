"""Reading the outbox: the relay that publishes it to Kafka and the change feed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from prometheus_client import Counter, Gauge
from sqlalchemy import Row, func, select, update

from ecips_common.db import Database, asyncpg_dsn
from ecips_common.events import CloudEvent, source_uri
from ecips_common.outbox_table import OutboxTables

logger = logging.getLogger("ecips.outbox")

EVENTS_PUBLISHED = Counter(
    "ecips_events_published_total", "Events published from the outbox", ["service", "topic"]
)
OUTBOX_LAG = Gauge(
    "ecips_outbox_last_published_seq", "Highest outbox sequence published", ["service"]
)


def row_to_event(service: str, row: Row[Any]) -> CloudEvent:
    return CloudEvent(
        id=str(row.event_id),
        source=source_uri(service),
        type=row.event_type,
        subject=row.subject,
        time=row.created_at,
        sequence=row.seq,
        data=row.data,
    )


async def read_changes(
    database: Database, service: str, *, after: int, limit: int
) -> list[CloudEvent]:
    """The change feed: events in commit order after a cursor."""
    outbox = database.tables.outbox
    async with database.read_only() as session:
        rows = (
            await session.execute(
                select(outbox).where(outbox.c.seq > after).order_by(outbox.c.seq).limit(limit)
            )
        ).all()
    return [row_to_event(service, row) for row in rows]


async def ensure_topics(
    bootstrap_servers: str, topics: Mapping[str, int], *, timeout_seconds: float = 10.0
) -> None:
    """Create topics that do not exist yet (the embedded broker forgets them on restart)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout_seconds * 1000)
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, parts, 1) for name, parts in topics.items() if name not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
            logger.info("created topics", extra={"topics": [t.name for t in missing]})
    finally:
        await admin.close()


class OutboxRelay:
    """Publishes unpublished outbox rows to Kafka, in sequence order.

    Rows are claimed with ``FOR UPDATE SKIP LOCKED`` so several replicas can
    relay at once; a row is marked published only after the broker acked it,
    so a crash in between republishes it (consumers deduplicate by event id).
    """

    def __init__(
        self,
        *,
        service: str,
        database: Database,
        bootstrap_servers: str,
        topics: Mapping[str, int],
        poll_interval: float = 1.0,
        batch_size: int = 500,
        create_topics: bool = True,
    ) -> None:
        self._service = service
        self._db = database
        self._tables: OutboxTables = database.tables
        self._bootstrap = bootstrap_servers
        self._topics = dict(topics)
        self._poll_interval = poll_interval
        self._batch_size = batch_size
        self._create_topics = create_topics
        self._wakeup = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None
        self._listener: asyncpg.Connection | None = None

    async def _start_producer(self) -> AIOKafkaProducer:
        if self._create_topics:
            await ensure_topics(self._bootstrap, self._topics)
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            acks="all",
            enable_idempotence=False,
            linger_ms=2,
            request_timeout_ms=15000,
            value_serializer=lambda v: json.dumps(v, ensure_ascii=False).encode(),
            key_serializer=lambda k: k.encode(),
        )
        await producer.start()
        return producer

    async def _listen(self) -> None:
        dsn = asyncpg_dsn(self._db.engine.url.render_as_string(hide_password=False))
        try:
            conn = await asyncpg.connect(dsn)
            await conn.add_listener(self._tables.channel, lambda *_: self._wakeup.set())
            self._listener = conn
        except (OSError, asyncpg.PostgresError) as exc:
            logger.warning("outbox LISTEN unavailable, polling only", extra={"error": str(exc)})

    async def publish_batch(self) -> int:
        """Publish one batch; returns how many rows it published."""
        assert self._producer is not None
        outbox = self._tables.outbox
        async with self._db.sessions() as session, session.begin():
            rows = (
                await session.execute(
                    select(outbox)
                    .where(outbox.c.published_at.is_(None))
                    .order_by(outbox.c.seq)
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            sends = [
                await self._producer.send(
                    row.topic,
                    value=row_to_event(self._service, row).model_dump(mode="json"),
                    key=row.partition_key,
                )
                for row in rows
            ]
            await asyncio.gather(*sends)
            await session.execute(
                update(outbox)
                .where(outbox.c.seq.in_([r.seq for r in rows]))
                .values(published_at=func.now())
            )
        for row in rows:
            EVENTS_PUBLISHED.labels(self._service, row.topic).inc()
        OUTBOX_LAG.labels(self._service).set(rows[-1].seq)
        return len(rows)

    async def run(self) -> None:
        backoff = 0.5
        await self._listen()
        while True:
            try:
                if self._producer is None:
                    self._producer = await self._start_producer()
                    backoff = 0.5
                published = await self.publish_batch()
                if published < self._batch_size:
                    self._wakeup.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wakeup.wait(), self._poll_interval)
            except asyncio.CancelledError:
                raise
            except (KafkaError, OSError) as exc:
                logger.warning(
                    "outbox relay cannot publish, retrying",
                    extra={"error": repr(exc), "retry_in": backoff},
                )
                await self._reset_producer()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            except Exception:
                logger.exception("outbox relay failed, retrying")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _reset_producer(self) -> None:
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await self._producer.stop()
            self._producer = None

    async def close(self) -> None:
        await self._reset_producer()
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()

    @property
    def producer(self) -> AIOKafkaProducer | None:
        return self._producer
