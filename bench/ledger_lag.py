"""Lag from ingest's acceptance of a record to the ledger's change feed, under
a steady load.

Starts its own embedded PostgreSQL and broker and runs ingest and the ledger
as separate processes (as `ecips up` does), holds the ledger's streaming
change feed (`/v1/changes/stream`) open, submits records to ingest at a fixed
rate (open loop: a registration per new enterprise, then penalties for the
registered ones) and times, per record, from ingest's `202` to the record's
`ecips.record.filed` event on the stream.

    .venv/bin/python bench/ledger_lag.py --quick      # < 60 s
    .venv/bin/python bench/ledger_lag.py              # 40 records/s for 60 s

The raw limit, measured in the same run on the same servers: one commit plus
NOTIFY→LISTEN wake-up in Postgres, and one produce→consume hop through the
broker. The path from 202 to the feed needs at least two of the first (ingest's
outbox to its relay; the ledger's outbox to the stream) and one of the second,
so the ratio printed is p50 lag / (2 × notify p50 + broker p50).
Figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from ecips.runtime.broker import EmbeddedBroker
from ecips.runtime.ports import free_port
from ecips.runtime.postgres import EmbeddedPostgres
from ecips.stack import ServiceProcess
from ecips_common.auth import generate_signing_key, issue_token
from ecips_common.contracts import TOPIC_PARTITIONS
from ecips_common.identifiers import USCC_ALPHABET, make_uscc

sys.path.insert(0, str(Path(__file__).parent))

from common import percentile, write_results

SAMR = "CQ-SAMR"
_ids = random.SystemRandom()


def figures(values: Sequence[float]) -> dict[str, float]:
    return {
        "samples": len(values),
        "p50_ms": round(percentile(values, 50), 1),
        "p90_ms": round(percentile(values, 90), 1),
        "p99_ms": round(percentile(values, 99), 1),
        "max_ms": round(max(values), 1) if values else float("nan"),
    }


def summary(values: Sequence[float]) -> str:
    return (
        f"p50 {percentile(values, 50):7.1f} ms   p90 {percentile(values, 90):7.1f} ms   "
        f"p99 {percentile(values, 99):7.1f} ms   max {max(values):7.1f} ms   (n={len(values)})"
    )


# --- the system under test ---------------------------------------------------


@dataclass
class System:
    base: Path
    postgres: EmbeddedPostgres
    broker: EmbeddedBroker
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    private_key: bytes = b""

    @property
    def ingest(self) -> str:
        return self.services["ingest"].url

    @property
    def ledger(self) -> str:
        return self.services["ledger"].url

    def token(self, department: str, *scopes: str) -> str:
        return issue_token(self.private_key, department=department, scopes=scopes, ttl_seconds=3600)


def start_system(base: Path) -> System:
    postgres = EmbeddedPostgres(base / "postgres", free_port())
    postgres.start()
    broker = EmbeddedBroker(free_port(), log_path=base / "broker.log")
    broker.start(TOPIC_PARTITIONS)
    system = System(base, postgres, broker)
    private, public = generate_signing_key()
    system.private_key = private
    public_file = base / "signing-key.pub.pem"
    public_file.write_bytes(public)
    ports = {"ingest": free_port(), "ledger": free_port()}
    env = {
        **os.environ,
        "DATABASE_URL": postgres.url,
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "ECIPS_JWT_PUBLIC_KEY_FILE": str(public_file),
        "ECIPS_SERVICE_TOKEN": system.token("SYSTEM", "changes:read", "ledger:read"),
        "ECIPS_LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        **{f"ECIPS_{name.upper()}_URL": f"http://127.0.0.1:{port}" for name, port in ports.items()},
    }
    for name, port in ports.items():
        service = ServiceProcess(name, port, env, base / f"{name}.log")
        service.start()
        system.services[name] = service
    deadline = time.monotonic() + 120
    with httpx.Client(timeout=2) as client:
        for service in system.services.values():
            while True:
                assert service.process is not None
                if service.process.poll() is not None:
                    raise RuntimeError(f"{service.name} exited; see {service.log_path}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{service.url}/readyz").status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{service.name} not ready; see {service.log_path}")
                time.sleep(0.2)
    return system


def stop_system(system: System) -> None:
    for service in system.services.values():
        service.stop()
    system.broker.stop()
    system.postgres.stop()


# --- raw limits --------------------------------------------------------------


async def notify_hop(dsn: str, samples: int) -> list[float]:
    """Commit a row plus NOTIFY on one connection; time until another hears it."""
    listener = await asyncpg.connect(dsn)
    writer = await asyncpg.connect(dsn)
    heard: asyncio.Queue[float] = asyncio.Queue()
    await listener.add_listener("bench_raw", lambda *_: heard.put_nowait(time.perf_counter()))
    await writer.execute("CREATE TEMP TABLE raw_hop (n int)")
    delays = []
    try:
        for n in range(samples):
            started = time.perf_counter()
            async with writer.transaction():
                await writer.execute("INSERT INTO raw_hop VALUES ($1)", n)
                await writer.execute("NOTIFY bench_raw")
            delays.append((await asyncio.wait_for(heard.get(), 5) - started) * 1000)
            await asyncio.sleep(0.005)
    finally:
        await listener.close()
        await writer.close()
    return delays


async def broker_hop(bootstrap: str, samples: int) -> list[float]:
    """Produce (acks=all) and consume with the services' consumer settings."""
    topic = "bench-raw-hop"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await producer.start()
    await producer.send_and_wait(topic, b"warm-up")  # creates the topic
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, fetch_max_wait_ms=50, enable_auto_commit=False
    )
    await consumer.start()
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    await consumer.seek_to_end(partition)
    delays = []
    try:
        for n in range(samples):
            started = time.perf_counter()
            await producer.send_and_wait(topic, str(n).encode(), partition=0)
            while True:
                batch = await consumer.getmany(partition, timeout_ms=5000)
                if any(m.value == str(n).encode() for m in batch.get(partition, [])):
                    break
            delays.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.005)
    finally:
        await consumer.stop()
        await producer.stop()
    return delays


# --- the load ------------------------------------------------------------------


def registration(uscc: str, name: str) -> dict[str, Any]:
    return {
        "category": "registration",
        "source_id": f"BENCH-REG-{uscc}",
        "uscc": uscc,
        "enterprise_name": name,
        "occurred_on": "2025-02-14",
        "data": {
            "name": name,
            "legal_representative": "李四",
            "enterprise_type": "有限责任公司",
            "established_on": "2025-02-14",
            "registered_capital": {"value": "2000000", "currency": "CNY"},
            "address": "重庆市渝中区上清寺路9号",
            "business_scope": "一般项目：建筑材料销售",
            "registration_authority": "重庆市渝中区市场监督管理局",
        },
    }


def penalty(uscc: str, name: str, n: int) -> dict[str, Any]:
    number = f"渝市监罚〔2025〕{uscc[-6:]}-{n}号"
    return {
        "category": "administrative_penalty",
        "source_id": number,
        "uscc": uscc,
        "enterprise_name": name,
        "occurred_on": "2025-08-01",
        "data": {
            "decision_number": number,
            "authority": "重庆市市场监督管理局",
            "violation_type": "产品质量",
            "facts": "销售不合格建筑材料",
            "penalty_kinds": ["罚款"],
            "content": "罚款人民币叁万元",
            "fine": {"value": "30000", "currency": "CNY"},
            "decided_on": "2025-08-01",
        },
    }


@dataclass
class Timing:
    sent: float
    accepted: float | None = None
    on_feed: float | None = None


class Run:
    def __init__(self, system: System) -> None:
        self.system = system
        self.timings: dict[str, Timing] = {}
        self.arrived: dict[str, float] = {}  # record_id -> when it came off the stream
        self.errors: list[str] = []
        self.registered: list[tuple[str, str]] = []
        self.reconnects: list[str] = []
        self.duplicates = 0

    async def follow(self, client: httpx.AsyncClient, after: int, ready: asyncio.Event) -> None:
        """Hold the stream open; after a disconnect, resume from the last event seen."""
        headers = {"Authorization": f"Bearer {self.system.token('CQ-NATIONAL', 'changes:read')}"}
        cursor = after
        while True:
            try:
                async with client.stream(
                    "GET",
                    f"{self.system.ledger}/v1/changes/stream",
                    params={"after": cursor},
                    headers=headers,
                    timeout=httpx.Timeout(10, read=None),
                ) as response:
                    response.raise_for_status()
                    ready.set()
                    async for line in response.aiter_lines():
                        now = time.perf_counter()
                        event = json.loads(line)
                        if "specversion" not in event:
                            continue  # a heartbeat
                        cursor = event["sequence"]
                        if event["type"] == "ecips.record.filed":
                            self.saw(event["data"]["record_id"], now)
            except httpx.HTTPError as exc:
                self.reconnects.append(repr(exc))
                await asyncio.sleep(0.1)

    def saw(self, record_id: str, now: float) -> None:
        if record_id in self.arrived:
            self.duplicates += 1
            return
        self.arrived[record_id] = now
        timing = self.timings.get(record_id)
        if timing is not None:
            timing.on_feed = now

    async def submit(self, client: httpx.AsyncClient, body: dict[str, Any]) -> None:
        headers = {"Authorization": f"Bearer {self.system.token(SAMR, 'records:write')}"}
        sent = time.perf_counter()
        response = await client.post(f"{self.system.ingest}/v1/records", json=body, headers=headers)
        accepted = time.perf_counter()
        if response.status_code != 202:
            self.errors.append(f"{response.status_code} {response.text[:200]}")
            return
        record_id = response.json()["record_id"]
        timing = Timing(sent, accepted, self.arrived.get(record_id))
        self.timings[record_id] = timing
        if body["category"] == "registration":
            self.registered.append((body["uscc"], body["enterprise_name"]))

    def next_body(self, n: int) -> dict[str, Any]:
        # One new enterprise in three; otherwise a penalty for a registered one.
        if n % 3 == 0 or not self.registered:
            uscc = make_uscc(org_body="".join(_ids.choices(USCC_ALPHABET, k=8)), division="500103")
            return registration(uscc, f"重庆测延{n:05d}建材有限公司")
        uscc, name = _ids.choice(self.registered)
        return penalty(uscc, name, n)


def cpu_seconds(system: System) -> dict[str, float]:
    """CPU time used so far by each part of the system (Postgres: all its processes)."""
    used: dict[str, float] = {}
    parts: dict[str, int | None] = {
        name: service.process.pid if service.process else None
        for name, service in system.services.items()
    }
    parts["postgres"] = system.postgres.pid
    parts["broker"] = system.broker.pid
    for name, pid in parts.items():
        if pid is None:
            continue
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            tree = [process, *process.children(recursive=True)]
            used[name] = sum(sum(p.cpu_times()[:2]) for p in tree if p.is_running())
    return used


async def poll_until(condition: Callable[[], bool], *, seconds: float) -> None:
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        if condition():
            return
        await asyncio.sleep(0.05)


async def feed_head(client: httpx.AsyncClient, system: System) -> int:
    headers = {"Authorization": f"Bearer {system.token('CQ-NATIONAL', 'changes:read')}"}
    cursor = 0
    while True:
        page = (
            await client.get(
                f"{system.ledger}/v1/changes",
                params={"after": cursor, "limit": 1000},
                headers=headers,
            )
        ).json()
        if not page["items"]:
            return cursor
        cursor = page["next_cursor"]


async def measure(system: System, *, rate: float, seconds: float, raw_samples: int) -> int:
    notify = await notify_hop(system.postgres.dsn, raw_samples)
    broker = await broker_hop(system.broker.bootstrap_servers, raw_samples)
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        run = Run(system)
        ready = asyncio.Event()
        follower = asyncio.create_task(follow_forever(run, client, system, ready))
        await asyncio.wait_for(ready.wait(), 30)
        # Warm up: the ledger's consumer has joined its group once a record came through.
        await run.submit(client, run.next_body(0))
        await poll_until(lambda: bool(run.arrived), seconds=60)
        run.timings.clear()

        total = int(rate * seconds)
        cpu_before = cpu_seconds(system)
        start = time.perf_counter()
        tasks = []
        for n in range(1, total + 1):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(run.submit(client, run.next_body(n))))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
        await poll_until(
            lambda: all(t.on_feed is not None for t in run.timings.values()), seconds=30
        )
        cpu_after = cpu_seconds(system)
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower

    done = [t for t in run.timings.values() if t.accepted is not None and t.on_feed is not None]
    missing = len(run.timings) - len(done)
    lag = [(t.on_feed - t.accepted) * 1000 for t in done if t.on_feed and t.accepted]
    from_sent = [(t.on_feed - t.sent) * 1000 for t in done if t.on_feed]
    accept = [(t.accepted - t.sent) * 1000 for t in run.timings.values() if t.accepted]
    floor = 2 * statistics.median(notify) + statistics.median(broker)
    print()
    load1, _, _ = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average (1 min) {load1:.1f} at the end")
    print(
        f"load: {len(run.timings)} records accepted in {elapsed:.1f} s "
        f"({len(run.timings) / elapsed:.1f}/s, target {rate:g}/s), "
        f"{len(run.errors)} rejected, {missing} not on the feed after 30 s"
    )
    print(
        f"stream: {len(run.reconnects)} reconnects (resumed from the last sequence), "
        f"{run.duplicates} events received twice"
    )
    for error in run.errors[:3]:
        print(f"  rejected: {error}")
    spent = {name: cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after}
    print(
        "CPU used during the load: "
        + ", ".join(f"{name} {value:.1f} s" for name, value in spent.items())
        + f" (of {elapsed * (os.cpu_count() or 1):.0f} CPU-s on the machine)"
    )
    print(f"ingest POST → 202               {summary(accept)}")
    print(f"202 → ledger change stream      {summary(lag)}")
    print(f"POST sent → ledger change stream {summary(from_sent)}")
    print()
    print("raw limits, same run:")
    print(f"  Postgres commit+NOTIFY → LISTEN {summary(notify)}")
    print(f"  broker produce → consume        {summary(broker)}")
    print(
        f"  floor (2 × notify p50 + broker p50) {floor:.1f} ms; "
        f"lag p50 / floor = {statistics.median(lag) / floor:.1f}×"
    )
    path = write_results(
        "ledger_lag",
        {
            "rate_per_second": rate,
            "seconds": round(elapsed, 1),
            "accepted": len(run.timings),
            "rejected": len(run.errors),
            "not_on_feed": missing,
            "duplicates": run.duplicates,
            "cpu_seconds": {name: round(value, 1) for name, value in spent.items()},
            "post_to_202": figures(accept),
            "accepted_to_change_stream": figures(lag),
            "raw_notify": figures(notify),
            "raw_broker": figures(broker),
        },
    )
    print(f"results: {path}")
    return 0 if not missing and not run.errors and not run.duplicates else 1


async def follow_forever(
    run: Run, client: httpx.AsyncClient, system: System, ready: asyncio.Event
) -> None:
    after = await feed_head(client, system)
    await run.follow(client, after, ready)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (< 60 s in all)")
    parser.add_argument("--rate", type=float, help="records per second (default 40; quick 20)")
    parser.add_argument("--seconds", type=float, help="load duration (default 60; quick 10)")
    parser.add_argument("--keep", action="store_true", help="keep the data directory and logs")
    args = parser.parse_args()
    rate = args.rate or (20.0 if args.quick else 40.0)
    seconds = args.seconds or (10.0 if args.quick else 60.0)
    raw_samples = 100 if args.quick else 300
    base = Path(tempfile.mkdtemp(prefix="ecips-ledger-lag-"))
    base.chmod(0o711)  # the embedded Postgres may run as another user
    print(f"starting Postgres, the broker, ingest and the ledger (logs in {base}) …", flush=True)
    started = time.perf_counter()
    system = start_system(base)
    print(f"up in {time.perf_counter() - started:.1f} s; {rate:g} records/s for {seconds:g} s")
    try:
        return asyncio.run(measure(system, rate=rate, seconds=seconds, raw_samples=raw_samples))
    finally:
        stop_system(system)
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
