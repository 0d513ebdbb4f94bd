"""End-to-end ingestion and freshness on the whole system (`ecips up`: the five
services, the embedded PostgreSQL and broker, all on this machine).

1. Throughput: the demo records, one NDJSON batch file per department, from
   submission until the ledger has filed them and the public read model has
   applied every ledger event — beside the raw limit: PostgreSQL COPY of the
   same rows into one table, measured in the same run on the same server.
2. Freshness at a steady rate: R records/s as ten small batch files a second
   (a tenth new enterprises, the rest annual reports of registered ones); for
   a sample of new enterprises, the delay from the batch's 202 to the public
   search finding it; and for serious-illegal listings sent one by one, the
   delay to the credit check refusing.

    .venv/bin/python bench/pipeline.py --quick     # 5,000 records, 10 s at 200/s
    .venv/bin/python bench/pipeline.py             # 20,000 records, 60 s at 200/s
    .venv/bin/python bench/pipeline.py --records 200000   # the sustained run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).parent))

from common import RESULTS_DIR, percentile, write_results

from ecips.demo import DemoGenerator, Enterprise, department_files, generate
from ecips.runtime.ports import free_port
from ecips.stack import SERVICES, issue_data_dir_token
from ecips.system import RunningSystem

RELAXED = {
    f"ECIPS_{s}_RATE_LIMIT_{k}": v
    for s in ("PUBLICITY", "RULES")
    for k, v in (("PER_SECOND", "100000"), ("BURST", "100000"))
}


async def raw_copy_rate(dsn: str, lines: list[str]) -> float:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DROP TABLE IF EXISTS public.bench_raw_copy")
        await conn.execute("CREATE TABLE public.bench_raw_copy (body jsonb NOT NULL)")
        started = time.perf_counter()
        await conn.copy_records_to_table(
            "bench_raw_copy", records=[(line,) for line in lines], schema_name="public"
        )
        elapsed = time.perf_counter() - started
        await conn.execute("DROP TABLE public.bench_raw_copy")
        return len(lines) / elapsed
    finally:
        await conn.close()


async def caught_up(conn: asyncpg.Connection, accepted: int) -> bool:
    row = await conn.fetchrow(
        """SELECT (SELECT count(*) FROM ingest.records) AS ingested,
                  (SELECT count(*) FROM ingest.outbox) AS ingest_events,
                  (SELECT count(*) FROM ledger.inbox WHERE source = '/ecips/ingest')
                      AS ledger_applied,
                  (SELECT count(*) FROM ledger.outbox) AS ledger_events,
                  (SELECT count(*) FROM publicity.inbox WHERE source = '/ecips/ledger')
                      AS public_applied"""
    )
    assert row is not None
    return bool(
        row["ingested"] >= accepted
        and row["ledger_applied"] >= row["ingest_events"]
        and row["public_applied"] >= row["ledger_events"]
    )


async def wait_until_public(system: RunningSystem, records: int) -> None:
    """Until ingest holds ``records`` more records than now and every service caught up."""
    dsn = f"postgresql://postgres@127.0.0.1:{system.ports['postgres']}/ecips"
    conn = await asyncpg.connect(dsn)
    try:
        target = int(await conn.fetchval("SELECT count(*) FROM ingest.records")) + records
        while not await caught_up(conn, target):
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def throughput(system: RunningSystem, work: Path, records: int) -> dict[str, Any]:
    """Every department's records as one NDJSON batch file each (the way a
    department sends a day's records), until the public read model has them."""
    generate(work, enterprises=max(records // 2, 10), max_records=records, seed=2026)
    files = department_files(work)
    all_lines = [line for f in files for line in f.read_text(encoding="utf-8").splitlines()]
    dsn = f"postgresql://postgres@127.0.0.1:{system.ports['postgres']}/ecips"
    raw = await raw_copy_rate(dsn, all_lines)
    started = time.perf_counter()
    batches: list[tuple[str, str]] = []
    async with httpx.AsyncClient(base_url=system.url("ingest"), timeout=600) as http:
        for path in files:
            token = issue_data_dir_token(
                system.data_dir, department=path.stem, scopes=["records:write"], ttl_seconds=7200
            )
            headers = {"Authorization": f"Bearer {token}"}
            with path.open("rb") as body:
                response = await http.post(
                    "/v1/batches",
                    files={"file": (path.name, body, "application/x-ndjson")},
                    data={"format": "ndjson"},
                    headers=headers,
                )
            if response.status_code != 202:
                raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
            batches.append((response.json()["batch_id"], token))
        submitted_in = time.perf_counter() - started
        accepted = rejected = 0
        conn = await asyncpg.connect(dsn)
        try:
            while True:
                accepted = rejected = 0
                finished = True
                for batch_id, token in batches:
                    status = (
                        await http.get(
                            f"/v1/batches/{batch_id}",
                            headers={"Authorization": f"Bearer {token}"},
                        )
                    ).json()
                    accepted += status["accepted"]
                    rejected += status["rejected"]
                    finished = finished and status["status"] in ("done", "failed")
                if finished and await caught_up(conn, accepted):
                    break
                rate = accepted / (time.perf_counter() - started)
                print(
                    f"\r  ingest accepted {accepted:,}/{len(all_lines):,} ({rate:,.0f}/s)",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
                await asyncio.sleep(0.5)
        finally:
            await conn.close()
    elapsed = time.perf_counter() - started
    print(file=sys.stderr)
    return {
        "records": accepted,
        "rejected": rejected,
        "batches": len(batches),
        "submitted_seconds": round(submitted_in, 2),
        "public_seconds": round(elapsed, 2),
        "records_per_second": round(accepted / elapsed, 1),
        "raw_copy_rows_per_second": round(raw, 1),
        "ratio_to_raw_copy": round(accepted / elapsed / raw, 5),
    }


# How often a sampled enterprise is looked for: the figures' resolution. Finer
# polling of many samples at once would make the client, not the system, the limit.
POLL_SECONDS = 0.025


async def freshness(
    system: RunningSystem, seconds: float, rate: float, sample_every: int
) -> dict[str, Any]:
    generator = DemoGenerator(seed=int(time.time()))
    token = issue_data_dir_token(
        system.data_dir, department="CQ-SAMR", scopes=["records:write"], ttl_seconds=7200
    )
    headers = {"Authorization": f"Bearer {token}"}
    to_public: list[float] = []
    to_check: list[float] = []
    watchers: list[asyncio.Task[None]] = []

    async def watch_public(http: httpx.AsyncClient, uscc: str, accepted_at: float) -> None:
        while time.perf_counter() - accepted_at < 60:
            found = await http.get(f"{system.url('publicity')}/v1/search", params={"q": uscc})
            if found.status_code == 200 and found.json()["items"]:
                to_public.append((time.perf_counter() - accepted_at) * 1000)
                return
            await asyncio.sleep(POLL_SECONDS)

    async def watch_check(http: httpx.AsyncClient, uscc: str, accepted_at: float) -> None:
        while time.perf_counter() - accepted_at < 60:
            check = await http.get(
                f"{system.url('rules')}/v1/checks/{uscc}",
                params={"scenario": "government_procurement"},
            )
            if check.status_code == 200 and check.json()["allowed"] is False:
                to_check.append((time.perf_counter() - accepted_at) * 1000)
                return
            await asyncio.sleep(POLL_SECONDS)

    registered: list[tuple[str, str]] = []
    posts: list[asyncio.Task[None]] = []
    failures: list[str] = []
    batches: list[str] = []

    # The steady load is what the registration authority sends in a day: a
    # few new enterprises among many annual reports of enterprises it holds.
    known: list[Enterprise] = []

    def annual_report(pick: int) -> dict[str, Any] | None:
        enterprise = known[pick % len(known)]
        for n in range(3):
            record = generator.annual_report(enterprise, pick * 3 + n)
            if record is not None:
                return record.body
        return None

    def batch_of(registrations: int, total: int) -> tuple[list[Enterprise], list[dict[str, Any]]]:
        new = [generator.enterprise() for _ in range(registrations)]
        bodies = [generator.registration(e).body for e in new]
        pick = len(known) * 7
        while known and len(bodies) < total:
            pick += 1
            if (body := annual_report(pick)) is not None:
                bodies.append(body)
        known.extend(new)
        return new, bodies

    async def submit(http: httpx.AsyncClient, sampled: bool) -> None:
        """One batch, as a department system sends them in steady small files;
        a sampled batch has its first new enterprise watched."""
        enterprises, bodies = batch_of(new_per_batch, per_batch)
        body = "\n".join(json.dumps(b, ensure_ascii=False) for b in bodies)
        try:
            response = await http.post(
                f"{system.url('ingest')}/v1/batches",
                files={"file": ("registrations.ndjson", body.encode(), "application/x-ndjson")},
                data={"format": "ndjson"},
                headers=headers,
            )
        except httpx.HTTPError as exc:
            failures.append(type(exc).__name__)
            return
        if response.status_code != 202:
            failures.append(str(response.status_code))
            return
        batches.append(response.json()["batch_id"])
        if sampled:
            watchers.append(
                asyncio.create_task(watch_public(http, enterprises[0].uscc, time.perf_counter()))
            )
            registered.append((enterprises[0].uscc, enterprises[0].name))

    # Open loop: each batch is sent at its own time, whether or not the ones
    # before it were answered (a closed loop would slow down with the system).
    # Past the system's capacity the backlog shows as growing delays, then timeouts.
    interval = 0.1
    per_batch = max(1, round(rate * interval))
    new_per_batch = max(1, per_batch // 10)
    # Enterprises to report on, registered before the clock starts.
    async with httpx.AsyncClient(timeout=600) as http:
        waiting = asyncio.create_task(wait_until_public(system, 2000))
        _, bodies = batch_of(2000, 2000)
        response = await http.post(
            f"{system.url('ingest')}/v1/batches",
            files={"file": ("register.ndjson", "\n".join(json.dumps(b) for b in bodies).encode())},
            data={"format": "ndjson"},
            headers=headers,
        )
        response.raise_for_status()
        await waiting
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(timeout=httpx.Timeout(120, pool=None), limits=limits) as http:
        start = time.perf_counter()
        n = 0
        while time.perf_counter() - start < seconds:
            target = start + n * interval
            if (delay := target - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            posts.append(asyncio.create_task(submit(http, n % sample_every == 0)))
            n += 1
        sent_rate = n * per_batch / (time.perf_counter() - start)
        await asyncio.gather(*posts)
        await asyncio.gather(*watchers)
        accepted = 0
        for batch_id in batches:
            status = (
                await http.get(f"{system.url('ingest')}/v1/batches/{batch_id}", headers=headers)
            ).json()
            accepted += status["accepted"]
            if status["rejected"]:
                failures.append("rejected_row")
        accepted_rate = accepted / seconds
        # Listings on already-public enterprises: how soon does the credit check refuse?
        listing_watchers = []
        for uscc, name in registered[:50]:
            today = time.strftime("%Y-%m-%d")
            body = {
                "category": "serious_illegal_listing",
                "source_id": f"严列-{uscc}",
                "uscc": uscc,
                "enterprise_name": name,
                "occurred_on": today,
                "data": {
                    "decision_number": f"渝市监严列{uscc[-6:]}",
                    "authority": "重庆市市场监督管理局",
                    "decided_on": today,
                    "reason": "提交虚假材料取得登记",
                },
            }
            response = await http.post(
                f"{system.url('ingest')}/v1/records", json=body, headers=headers
            )
            response.raise_for_status()
            listing_watchers.append(
                asyncio.create_task(watch_check(http, uscc, time.perf_counter()))
            )
            await asyncio.sleep(1 / 20)
        await asyncio.gather(*listing_watchers)

    def summary(values: list[float], sampled: int) -> dict[str, float]:
        return {
            "samples": len(values),
            "not_seen_within_60_s": sampled - len(values),
            "p50_ms": round(percentile(values, 50), 1),
            "p95_ms": round(percentile(values, 95), 1),
            "p99_ms": round(percentile(values, 99), 1),
        }

    return {
        "rate_per_second": round(sent_rate, 1),
        "records_per_batch": per_batch,
        "accepted_per_second": round(accepted_rate, 1),
        "not_accepted": dict(Counter(failures)),
        "seconds": seconds,
        "to_public_search": summary(to_public, len(registered)),
        "to_credit_check": summary(to_check, min(50, len(registered))),
    }


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--records", type=int)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float)
    parser.add_argument(
        "--freshness-only",
        action="store_true",
        help="measure freshness again; keep the throughput of bench/results/pipeline.json",
    )
    args = parser.parse_args()
    records = args.records or (5_000 if args.quick else 20_000)
    seconds = args.seconds or (10.0 if args.quick else 60.0)
    base = Path(tempfile.mkdtemp(prefix="ecips-bench-"))
    base.chmod(0o711)
    ports = {name: free_port() for name in (*SERVICES, "postgres", "kafka")}
    system = RunningSystem(base / "data", ports, env=RELAXED)
    try:
        print(f"starting the system in {base} …", file=sys.stderr)
        system.start()
        if args.freshness_only:
            through = json.loads((RESULTS_DIR / "pipeline.json").read_text())["throughput"]
        else:
            print(f"throughput: {records:,} records …", file=sys.stderr)
            through = await throughput(system, base / "demo", records)
        print(f"freshness: {seconds:.0f} s at {args.rate:.0f} records/s …", file=sys.stderr)
        # About four samples a second (batches go out ten times a second).
        sample_every = 3
        fresh = await freshness(system, seconds, args.rate, sample_every=sample_every)
    finally:
        if system.process is not None:
            system.stop()
        shutil.rmtree(base, ignore_errors=True)
    results = {"mode": "quick" if args.quick else "full", "throughput": through, "freshness": fresh}
    path = write_results("pipeline", results)
    print(f"\nIngest end to end ({through['records']:,} records, submission to public read model)")
    print(
        f"  system        {through['records_per_second']:>10,.0f} records/s "
        f"({through['public_seconds']:.1f} s)"
    )
    print(
        f"  raw COPY      {through['raw_copy_rows_per_second']:>10,.0f} rows/s "
        f"(same rows, one table, same server)"
    )
    print(f"  ratio         {through['ratio_to_raw_copy'] * 100:>10.2f} % of raw COPY")
    print(
        f"Freshness at {fresh['rate_per_second']:.0f} records/s offered for {seconds:.0f} s "
        f"(accepted {fresh['accepted_per_second']:.0f}/s; not accepted: "
        f"{fresh['not_accepted'] or 'none'})"
    )
    for label, key in (
        ("202 → public search", "to_public_search"),
        ("202 → credit check", "to_credit_check"),
    ):
        s = fresh[key]
        print(
            f"  {label:<20} p50 {s['p50_ms']:>7.0f} ms  p95 {s['p95_ms']:>7.0f} ms  "
            f"p99 {s['p99_ms']:>7.0f} ms  ({s['samples']} samples, "
            f"{s['not_seen_within_60_s']} not seen within 60 s)"
        )
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
