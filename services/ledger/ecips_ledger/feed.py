"""The change feed held open (NDJSON or server-sent events) and the bulk
snapshot a new consumer starts from.

Why the stream never skips nor repeats an event: outbox writers are
serialised until commit (``ecips_common.db.UnitOfWork``), so sequence order
is commit order and "every event after N" is a stable question. The stream
asks it again whenever the outbox's NOTIFY arrives (or a short poll fires),
and a consumer resumes with the sequence of the last event it processed.

Why the snapshot is consistent with its cursor: enterprise state and the
events describing it commit together, and the snapshot reads both the
enterprises and the highest outbox sequence in one REPEATABLE READ
transaction; it holds exactly the effects of the events up to that cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg
from prometheus_client import Counter, Gauge
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from ecips_common.app import ServiceState
from ecips_common.contracts import EnterpriseChanged, RecordFiled
from ecips_common.db import Database, asyncpg_dsn
from ecips_common.events import CloudEvent
from ecips_common.outbox import read_changes
from ecips_ledger.repository import LedgerRepository
from ecips_ledger.service import filed_event_of, snapshot_of

logger = logging.getLogger("ecips.ledger.feed")

StreamFormat = Literal["ndjson", "sse"]
NDJSON_MEDIA_TYPE = "application/x-ndjson"
SSE_MEDIA_TYPE = "text/event-stream"
SNAPSHOT_MEDIA_TYPE = "application/gzip"
SNAPSHOT_CURSOR_HEADER = "X-Snapshot-Cursor"
_SIGNAL_KEY = "ledger.change_signal"

OPEN_STREAMS = Gauge("ecips_ledger_open_change_streams", "Change streams being served")
STREAMED_EVENTS = Counter("ecips_ledger_streamed_events_total", "Events sent on change streams")
_LISTENER_HEALTH_SECONDS = 10.0


class ChangeSignal:
    """Wakes every open stream when the outbox may have grown.

    A waiter takes a ``marker()`` *before* reading the outbox and waits on it
    afterwards, so a notification that lands in between is never lost.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.listening = False

    def marker(self) -> asyncio.Event:
        return self._event

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    @staticmethod
    async def wait(marker: asyncio.Event, seconds: float) -> bool:
        """True if woken, False if ``seconds`` passed first."""
        if seconds <= 0:
            return marker.is_set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(marker.wait(), seconds)
        return marker.is_set()


def change_signal(state: ServiceState) -> ChangeSignal:
    signal: ChangeSignal = state.extras.setdefault(_SIGNAL_KEY, ChangeSignal())
    return signal


async def listen_for_outbox_commits(state: ServiceState) -> None:
    """Background job: LISTEN on the outbox channel and wake the streams.

    Reconnects with backoff; while it is down, streams fall back to polling.
    """
    signal = change_signal(state)
    dsn = asyncpg_dsn(state.settings.database_url)
    channel = state.database.tables.channel
    backoff = 0.5
    while True:
        conn: asyncpg.Connection | None = None
        try:
            conn = await asyncpg.connect(dsn)
            closed = asyncio.Event()
            conn.add_termination_listener(lambda _, closed=closed: closed.set())
            await conn.add_listener(channel, lambda *_: signal.notify())
            signal.listening = True
            signal.notify()  # whatever committed while nobody listened
            backoff = 0.5
            while not closed.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(closed.wait(), _LISTENER_HEALTH_SECONDS)
                if not closed.is_set():
                    await conn.execute("SELECT 1")  # notices a silently dead connection
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning(
                "outbox LISTEN lost, streams poll until it is back",
                extra={"error": repr(exc), "retry_in": backoff},
            )
        finally:
            signal.listening = False
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close(timeout=2)
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, 10.0)


# --- the stream ----------------------------------------------------------


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def ndjson_event(event: CloudEvent) -> bytes:
    return (_json(event.model_dump(mode="json")) + "\n").encode()


def ndjson_heartbeat(cursor: int) -> bytes:
    # No "specversion": a reader tells heartbeats from events by that.
    return (_json({"heartbeat": True, "next_cursor": cursor}) + "\n").encode()


def sse_event(event: CloudEvent) -> bytes:
    payload = _json(event.model_dump(mode="json"))
    return f"id: {event.sequence}\nevent: {event.type}\ndata: {payload}\n\n".encode()


def sse_heartbeat(cursor: int) -> bytes:
    return f": heartbeat {cursor}\n\n".encode()


@dataclass(frozen=True)
class StreamOptions:
    after: int
    follow: bool
    batch_size: int
    poll_interval: float
    heartbeat_interval: float


async def change_stream(
    database: Database,
    signal: ChangeSignal,
    *,
    service: str,
    options: StreamOptions,
    encode: Callable[[CloudEvent], bytes],
    heartbeat: Callable[[int], bytes],
) -> AsyncIterator[bytes]:
    """Every event after ``options.after`` in sequence order; then, if
    following, every new one as it commits, with heartbeats while idle."""
    loop = asyncio.get_running_loop()
    cursor = options.after
    last_write = loop.time()
    OPEN_STREAMS.inc()
    try:
        while True:
            marker = signal.marker()
            try:
                events = await read_changes(
                    database, service, after=cursor, limit=options.batch_size
                )
            except (SQLAlchemyError, OSError, TimeoutError) as exc:
                if not options.follow:
                    raise  # ending now would look like "caught up"
                # A database hiccup: keep the stream (and its heartbeats) and try again.
                logger.warning("change stream cannot read the outbox", extra={"error": repr(exc)})
                events = []
            if events:
                cursor = events[-1].sequence
                last_write = loop.time()
                yield b"".join(encode(e) for e in events)
                STREAMED_EVENTS.inc(len(events))
                if len(events) == options.batch_size:
                    continue  # more may be waiting right now
            if not options.follow:
                return
            idle = loop.time() - last_write
            if idle >= options.heartbeat_interval:
                yield heartbeat(cursor)
                last_write = loop.time()
                idle = 0.0
            await signal.wait(marker, min(options.poll_interval, options.heartbeat_interval - idle))
    finally:
        OPEN_STREAMS.dec()


# --- the snapshot --------------------------------------------------------

_GZIP_WBITS = 31  # zlib's gzip container
_FLUSH_BYTES = 256 * 1024


class SnapshotExport:
    """One REPEATABLE READ, read-only transaction: the cursor first, then every
    enterprise (and, if asked, every filed record), as gzip-compressed NDJSON."""

    def __init__(self, database: Database, *, include_records: bool, fetch_size: int) -> None:
        self._database = database
        self._include_records = include_records
        self._fetch_size = fetch_size
        self._connection: AsyncConnection | None = None
        self._session: AsyncSession | None = None
        self.cursor = 0
        self.enterprises = 0
        self.taken_at = datetime.now(UTC)

    async def open(self) -> None:
        connection = await self._database.engine.connect()
        self._connection = connection
        try:
            await connection.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            await connection.begin()
            self._session = AsyncSession(bind=connection, expire_on_commit=False)
            repo = LedgerRepository(self._session)
            # The first statement fixes the transaction's snapshot.
            self.cursor = await repo.last_outbox_seq(self._database.tables.outbox)
            self.enterprises = await repo.enterprise_count()
            self.taken_at = datetime.now(UTC)
        except BaseException:
            await self.close()
            raise

    @property
    def filename(self) -> str:
        return f"ledger-snapshot-{self.cursor}.ndjson.gz"

    async def body(self) -> AsyncIterator[bytes]:
        assert self._session is not None
        repo = LedgerRepository(self._session)
        compressor = zlib.compressobj(6, zlib.DEFLATED, _GZIP_WBITS)
        pending: list[str] = []
        size = 0

        def add(value: Any) -> bool:
            nonlocal size
            line = _json(value) + "\n"
            pending.append(line)
            size += len(line)
            return size >= _FLUSH_BYTES

        def drain() -> bytes:
            nonlocal size
            chunk = compressor.compress("".join(pending).encode())
            pending.clear()
            size = 0
            return chunk

        includes = ["enterprises", "records"] if self._include_records else ["enterprises"]
        add(
            {
                "snapshot": {
                    "service": "ledger",
                    "cursor": self.cursor,
                    "taken_at": self.taken_at.isoformat(),
                    "enterprises": self.enterprises,
                    "includes": includes,
                    "resume_with": f"/v1/changes/stream?after={self.cursor}",
                }
            }
        )
        enterprises = records = 0
        async for enterprise in repo.all_enterprises(self._fetch_size):
            enterprises += 1
            line: dict[str, Any] = {
                "type": EnterpriseChanged.event_type,
                "subject": enterprise.uscc,
                "data": snapshot_of(enterprise).model_dump(mode="json"),
            }
            if add(line) and (chunk := drain()):
                yield chunk
        if self._include_records:
            async for record in repo.all_filed_records(self._fetch_size):
                records += 1
                line = {
                    "type": RecordFiled.event_type,
                    "subject": record.uscc,
                    "data": filed_event_of(record).model_dump(mode="json"),
                }
                if add(line) and (chunk := drain()):
                    yield chunk
        # A trailer: a reader that does not find it got a truncated file.
        add({"end": {"cursor": self.cursor, "enterprises": enterprises, "records": records}})
        yield drain() + compressor.flush()

    async def close(self) -> None:
        if self._session is not None:
            with contextlib.suppress(Exception):
                await self._session.close()
            self._session = None
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
            self._connection = None


class SnapshotResponse(StreamingResponse):
    """Releases the snapshot's connection however the response ends
    (complete, client gone, or never started)."""

    def __init__(self, export: SnapshotExport) -> None:
        super().__init__(
            export.body(),
            media_type=SNAPSHOT_MEDIA_TYPE,
            headers={
                SNAPSHOT_CURSOR_HEADER: str(export.cursor),
                "Content-Disposition": f'attachment; filename="{export.filename}"',
                "Cache-Control": "no-store",
            },
        )
        self._export = export

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._export.close()
