"""Webhook delivery throughput: deliveries/s through the delivery table and
worker (lease, sign, POST, settle, per-enterprise order), against the raw
limit measured in the same run — the same HTTP client POSTing the same bodies
to the same receiver with the same concurrency, no database.

    .venv/bin/python services/coordination/bench/webhook_delivery.py --quick
    .venv/bin/python services/coordination/bench/webhook_delivery.py            # 20,000
    ... --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres   # a server

Without --database-url an embedded PostgreSQL is started in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select, text

from ecips.runtime.ports import free_port
from ecips.runtime.postgres import (
    EmbeddedPostgres,
    drop_database,
    ensure_database,
    to_asyncpg_dsn,
    to_sqlalchemy_url,
    with_database,
)
from ecips_common.db import Database, create_engine
from ecips_common.migrations import upgrade_to_head
from ecips_coordination.models import OUTBOX, Delivery, Subscription
from ecips_coordination.webhooks import DeliveryWorker, RetryPolicy, delivery_row, new_secret


class Receiver:
    """A minimal HTTP/1.1 server answering 204 to every POST."""

    def __init__(self) -> None:
        self.port = free_port()
        self.count = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                self.count += 1
                writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def payload(n: int, uscc: str) -> dict[str, Any]:
    return {
        "type": "ecips.task.changed",
        "time": datetime.now(UTC).isoformat(),
        "subject": uscc,
        "data": {"status": "open", "task": {"task_id": str(uuid.uuid4()), "n": n,
                 "measure_title": "限制参与政府采购", "legal_basis": "国发〔2016〕33号"}},
    }  # fmt: skip


async def raw_rate(url: str, bodies: list[dict[str, Any]], concurrency: int) -> float:
    async with httpx.AsyncClient(timeout=10) as http:
        started = time.perf_counter()
        for start in range(0, len(bodies), concurrency):
            chunk = bodies[start : start + concurrency]
            await asyncio.gather(*(http.post(url, json=b) for b in chunk))
        return len(bodies) / (time.perf_counter() - started)


async def table_rate(
    database: Database, url: str, count: int, enterprises: int, batch: int
) -> tuple[float, int]:
    async with database.unit_of_work() as uow:
        subscription = Subscription(
            subscription_id=uuid.uuid4(),
            department="CQ-FIN",
            url=url,
            secret=new_secret(),
            types=[],
            created_at=datetime.now(UTC),
            created_by="bench",
        )
        uow.session.add(subscription)
        await uow.session.flush()
        now = datetime.now(UTC)
        usccs = [f"91500103BENCH{i:05d}"[:18] for i in range(enterprises)]
        rows = [
            delivery_row(
                subscription=subscription,
                uscc=usccs[n % enterprises],
                task_id=uuid.uuid4(),
                event_type="ecips.task.changed",
                payload=payload(n, usccs[n % enterprises]),
                now=now,
            )
            for n in range(count)
        ]
        for start in range(0, count, 5000):
            await uow.session.execute(Delivery.__table__.insert(), rows[start : start + 5000])
    async with httpx.AsyncClient(timeout=10) as http:
        worker = DeliveryWorker(database, http, policy=RetryPolicy(), batch_size=batch)
        started = time.perf_counter()
        while await worker.tick():
            pass
        elapsed = time.perf_counter() - started
    async with database.read_only() as session:
        delivered = (
            await session.execute(select(func.count()).where(Delivery.status == "delivered"))
        ).scalar_one()
    return count / elapsed, int(delivered)


async def run(database_url: str, count: int, enterprises: int, batch: int) -> None:
    await asyncio.to_thread(upgrade_to_head, "ecips_coordination", database_url, "coordination")
    database = Database(create_engine(database_url, application_name="bench"), OUTBOX)
    receiver = Receiver()
    await receiver.start()
    url = f"http://127.0.0.1:{receiver.port}/hooks"
    try:
        async with database.unit_of_work() as uow:
            await uow.session.execute(text("TRUNCATE coordination.deliveries CASCADE"))
        bodies = [payload(n, "91500103BENCH00000") for n in range(count)]
        raw = await raw_rate(url, bodies, batch)
        rate, delivered = await table_rate(database, url, count, enterprises, batch)
        print(
            f"{count:,} deliveries over {enterprises:,} enterprises, {batch} in flight: "
            f"{rate:,.0f} deliveries/s through the table ({delivered:,} delivered); "
            f"raw POST {raw:,.0f}/s; ratio {rate / raw:.2f}"
        )
    finally:
        await receiver.stop()
        await database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2,000 deliveries")
    parser.add_argument("--count", type=int, default=None)
    parser.add_argument("--enterprises", type=int, default=500)
    parser.add_argument("--batch", type=int, default=50, help="deliveries in flight")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    count = args.count or (2_000 if args.quick else 20_000)
    if args.database_url:
        name = f"bench_webhooks_{uuid.uuid4().hex[:8]}"
        dsn = to_asyncpg_dsn(args.database_url)
        ensure_database(dsn, name)
        try:
            asyncio.run(
                run(
                    to_sqlalchemy_url(with_database(dsn, name)), count, args.enterprises, args.batch
                )
            )
        finally:
            drop_database(dsn, name)
        return
    base = Path(tempfile.mkdtemp(prefix="ecips-bench-pg-"))
    base.chmod(0o711)
    server = EmbeddedPostgres(base / "data", free_port())
    try:
        server.start()
        asyncio.run(run(to_sqlalchemy_url(server.dsn), count, args.enterprises, args.batch))
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
