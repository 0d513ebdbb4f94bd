"""Consuming events exactly once in effect: the inbox, the Kafka consumer and
the change-feed follower that repairs what the broker lost."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy import insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from ecips_common.db import Database, UnitOfWork
from ecips_common.events import CloudEvent
from ecips_common.problems import is_infrastructure_outage

logger = logging.getLogger("ecips.consumer")

EventHandler = Callable[[UnitOfWork, CloudEvent], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class BatchHandler:
    """Applies consecutive events together, so a service can work on a set
    (one statement per table) instead of event by event. It gets the events in
    delivery order, already claimed in the inbox, and must leave the same
    state as applying them one at a time. One handler may serve several event
    types: their interleaved run reaches it whole."""

    apply: Callable[[UnitOfWork, Sequence[CloudEvent]], Awaitable[None]]


Handler = EventHandler | BatchHandler


EVENTS_CONSUMED = Counter(
    "ecips_events_consumed_total", "Events consumed", ["service", "type", "outcome"]
)


@dataclass(frozen=True, slots=True)
class Upstream:
    """A producing service this service follows: its topic and change feed."""

    name: str
    topic: str
    feed_url: str


class EventProcessor:
    """Applies one event at most once: the inbox row and the derived state
    commit in the same transaction, and a failing event ends in the
    dead-letter table after a few attempts instead of blocking the stream."""

    def __init__(
        self,
        *,
        service: str,
        database: Database,
        handlers: Mapping[str, Handler],
        max_attempts: int = 5,
    ) -> None:
        self._service = service
        self._db = database
        self._handlers = dict(handlers)
        self._max_attempts = max_attempts

    async def process(self, event: CloudEvent) -> str:
        """Returns the outcome: applied, ignored, duplicate or dead_letter."""
        last_error: Exception | None = None
        for attempt in range(1, self._max_attempts + 1):
            try:
                outcome = await self._apply(event)
                EVENTS_CONSUMED.labels(self._service, event.type, outcome).inc()
                return outcome
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_infrastructure_outage(exc):
                    raise
                last_error = exc
                logger.warning(
                    "event handling failed",
                    extra={
                        "event_id": event.id,
                        "event_type": event.type,
                        "attempt": attempt,
                        "error": repr(exc),
                    },
                )
                await asyncio.sleep(min(0.1 * 2**attempt, 2.0))
        await self._dead_letter(event, last_error, self._max_attempts)
        EVENTS_CONSUMED.labels(self._service, event.type, "dead_letter").inc()
        return "dead_letter"

    async def process_batch(self, events: Sequence[CloudEvent]) -> list[str]:
        """Apply consecutive events of one partition in a single transaction
        (one commit instead of many); if any of them fails, the transaction
        rolls back and each event is retried on its own."""
        if len(events) <= 1:
            return [await self.process(e) for e in events]
        try:
            async with self._db.unit_of_work() as uow:
                outcomes = await self._claim_and_handle(uow, events)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if is_infrastructure_outage(exc):
                raise
            logger.info(
                "batch failed, applying its events one by one",
                extra={"events": len(events), "error": repr(exc)},
            )
            return [await self.process(e) for e in events]
        for event, outcome in zip(events, outcomes, strict=True):
            EVENTS_CONSUMED.labels(self._service, event.type, outcome).inc()
        return outcomes

    async def _apply(self, event: CloudEvent) -> str:
        async with self._db.unit_of_work() as uow:
            return (await self._claim_and_handle(uow, [event]))[0]

    async def _claim_and_handle(self, uow: UnitOfWork, events: Sequence[CloudEvent]) -> list[str]:
        """Claim the events in the inbox (one statement), then hand the new
        ones to their handlers in order; runs of one type with a
        :class:`BatchHandler` go to it together."""
        inbox = self._db.tables.inbox
        first: dict[str, int] = {}
        rows: list[dict[str, object]] = []
        for index, event in enumerate(events):
            if event.id in first:
                continue
            first[event.id] = index
            rows.append(
                {
                    "event_id": event.id,
                    "source": event.source,
                    "event_type": event.type,
                    "sequence": event.sequence,
                    "outcome": "applied" if event.type in self._handlers else "ignored",
                }
            )
        claimed = set(
            (
                await uow.session.execute(
                    pg_insert(inbox)
                    .values(rows)
                    .on_conflict_do_nothing(index_elements=["event_id"])
                    .returning(inbox.c.event_id)
                )
            ).scalars()
        )
        outcomes: list[str] = []
        run: list[CloudEvent] = []
        run_handler: BatchHandler | None = None
        for index, event in enumerate(events):
            if first[event.id] != index or event.id not in claimed:
                outcomes.append("duplicate")
                continue
            handler = self._handlers.get(event.type)
            if handler is None:
                outcomes.append("ignored")
                continue
            outcomes.append("applied")
            if isinstance(handler, BatchHandler):
                if run_handler is not None and handler is not run_handler:
                    await run_handler.apply(uow, run)
                    run = []
                run_handler = handler
                run.append(event)
                continue
            if run_handler is not None:
                await run_handler.apply(uow, run)
                run, run_handler = [], None
            await handler(uow, event)
        if run_handler is not None:
            await run_handler.apply(uow, run)
        return outcomes

    async def _dead_letter(self, event: CloudEvent, error: Exception | None, attempts: int) -> None:
        tables = self._db.tables
        async with self._db.unit_of_work() as uow:
            await uow.session.execute(
                pg_insert(tables.inbox)
                .values(
                    event_id=event.id,
                    source=event.source,
                    event_type=event.type,
                    sequence=event.sequence,
                    outcome="dead_letter",
                )
                .on_conflict_do_nothing(index_elements=["event_id"])
            )
            await uow.session.execute(
                pg_insert(tables.dead_letters)
                .values(
                    event_id=event.id,
                    source=event.source,
                    event_type=event.type,
                    event=event.model_dump(mode="json"),
                    error=repr(error),
                    attempts=attempts,
                )
                .on_conflict_do_nothing(index_elements=["event_id"])
            )
        logger.error(
            "event moved to dead letters", extra={"event_id": event.id, "event_type": event.type}
        )


class KafkaEventConsumer:
    """Reads the upstream topics as one consumer group and commits offsets
    only after the events' transactions committed."""

    def __init__(
        self,
        *,
        service: str,
        processor: EventProcessor,
        bootstrap_servers: str,
        topics: Sequence[str],
    ) -> None:
        self._service = service
        self._processor = processor
        self._bootstrap = bootstrap_servers
        self._topics = list(topics)
        self._consumer: AIOKafkaConsumer | None = None
        self.connected = False
        self.transaction_size = 100

    async def _start(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            *self._topics,
            bootstrap_servers=self._bootstrap,
            group_id=self._service,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            metadata_max_age_ms=5000,
            max_poll_records=500,
            # The embedded broker holds a group join for about half the session
            # timeout; a shorter one makes a (re)start join in ~3 s, not ~5 s.
            session_timeout_ms=6000,
            heartbeat_interval_ms=1500,
            # A member that vanished mid-join (a process stopped while starting)
            # holds up the group's next rebalance for this long, not 5 minutes.
            rebalance_timeout_ms=10000,
            max_poll_interval_ms=60000,
            fetch_max_wait_ms=50,
        )
        await consumer.start()
        return consumer

    async def run(self) -> None:
        backoff = 0.5
        while True:
            try:
                if self._consumer is None:
                    self._consumer = await self._start()
                    self.connected = True
                    backoff = 0.5
                batches = await self._consumer.getmany(timeout_ms=1000, max_records=500)
                if not batches:
                    continue
                # Partitions are independent (one enterprise's events share a
                # partition), so they are applied concurrently, each in order.
                await asyncio.gather(
                    *(self._apply_partition(messages) for messages in batches.values())
                )
                await self._consumer.commit(
                    {tp: messages[-1].offset + 1 for tp, messages in batches.items()}
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Broker or database trouble: nothing was committed for the
                # batch in hand, so reconnect and read it again.
                logger.warning(
                    "consumer interrupted, reconnecting",
                    extra={"error": repr(exc), "retry_in": backoff},
                )
                await self._reset()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _apply_partition(self, messages: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        events = [e for e in (_decode(m.value) for m in messages) if e is not None]
        for start in range(0, len(events), self.transaction_size):
            await self._processor.process_batch(events[start : start + self.transaction_size])

    async def _reset(self) -> None:
        self.connected = False
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await self._consumer.stop()
            self._consumer = None

    async def close(self) -> None:
        await self._reset()

    @staticmethod
    def topic_partition(topic: str, partition: int) -> TopicPartition:
        return TopicPartition(topic, partition)


def _decode(raw: bytes | None) -> CloudEvent | None:
    if raw is None:
        return None
    try:
        return CloudEvent.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as exc:
        # Not ours to apply; it cannot be replayed meaningfully either.
        logger.error("undecodable message skipped", extra={"error": str(exc)[:500]})
        return None


class FeedFollower:
    """Walks an upstream's change feed behind the broker and applies whatever
    the broker did not deliver within a grace period (lost on a broker
    restart, or never consumed). Events already in the inbox are skipped."""

    def __init__(
        self,
        *,
        upstream: Upstream,
        processor: EventProcessor,
        database: Database,
        token: str | None,
        interval: float = 5.0,
        grace: float = 10.0,
        page_size: int = 500,
    ) -> None:
        self._upstream = upstream
        self._processor = processor
        self._db = database
        self._token = token
        self._interval = interval
        self._grace = timedelta(seconds=grace)
        self._page_size = page_size
        self.transaction_size = 100

    async def _cursor(self) -> int:
        table = self._db.tables.feed_cursors
        async with self._db.read_only() as session:
            value = (
                await session.execute(
                    select(table.c.position).where(table.c.source == self._upstream.name)
                )
            ).scalar_one_or_none()
        return int(value or 0)

    async def _save_cursor(self, position: int) -> None:
        table = self._db.tables.feed_cursors
        async with self._db.unit_of_work() as uow:
            stmt = pg_insert(table).values(source=self._upstream.name, position=position)
            await uow.session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["source"],
                    set_={
                        "position": stmt.excluded.position,
                        "updated_at": stmt.excluded.updated_at,
                    },
                )
            )

    async def _already_seen(self, ids: list[str]) -> set[str]:
        inbox = self._db.tables.inbox
        async with self._db.read_only() as session:
            rows = await session.execute(select(inbox.c.event_id).where(inbox.c.event_id.in_(ids)))
        return {r[0] for r in rows}

    async def catch_up(self, client: httpx.AsyncClient) -> int:
        """One pass over the feed; returns how many events it applied itself."""
        applied = 0
        cursor = await self._cursor()
        start = cursor
        while True:
            headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
            response = await client.get(
                self._upstream.feed_url,
                params={"after": cursor, "limit": self._page_size},
                headers=headers,
            )
            response.raise_for_status()
            events = [CloudEvent.model_validate(e) for e in response.json()["items"]]
            if not events:
                break
            seen = await self._already_seen([e.id for e in events])
            horizon = datetime.now(UTC) - self._grace
            stop = False
            missed: list[CloudEvent] = []
            for event in events:
                if event.id not in seen:
                    if event.time > horizon:
                        stop = True  # the broker may still deliver it
                        break
                    missed.append(event)
                cursor = event.sequence
            # In feed (commit) order, a transaction per batch as the broker's
            # consumer would; events it applies meanwhile come back "duplicate".
            for at in range(0, len(missed), self.transaction_size):
                outcomes = await self._processor.process_batch(
                    missed[at : at + self.transaction_size]
                )
                applied += sum(outcome != "duplicate" for outcome in outcomes)
            if stop or len(events) < self._page_size:
                break
        if cursor != start:
            await self._save_cursor(cursor)
        if applied:
            logger.warning(
                "applied events the broker had not delivered",
                extra={"upstream": self._upstream.name, "count": applied},
            )
        return applied

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            while True:
                try:
                    await self.catch_up(client)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    logger.warning(
                        "change feed unavailable",
                        extra={"upstream": self._upstream.name, "error": repr(exc)},
                    )
                await asyncio.sleep(self._interval)


__all__ = [
    "BatchHandler",
    "EventHandler",
    "EventProcessor",
    "FeedFollower",
    "Handler",
    "KafkaEventConsumer",
    "Upstream",
    "insert",
]
