"""Batch throughput: a CSV file of administrative-penalty rows (1 % of them with a
typical mistake) uploaded to ingest, timed from the start of the upload to the
batch being done, against the raw limit measured in the same run: COPY of the
same file into one table of the same database.

Ingest runs in this process (uvicorn on a free port, its own batch worker), on
an embedded PostgreSQL and broker started for the run (or --database-url); the
ledger is not running, so no lookups slow the rows down. Figures, not assertions.

    .venv/bin/python bench/ingest_batch.py            # 100,000 rows
    .venv/bin/python bench/ingest_batch.py --quick    # 10,000 rows, well under a minute
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import random
import resource
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
import uvicorn

from ecips.runtime.broker import EmbeddedBroker
from ecips.runtime.ports import free_port
from ecips.runtime.postgres import (
    EmbeddedPostgres,
    drop_database,
    ensure_database,
    to_asyncpg_dsn,
    to_sqlalchemy_url,
    with_database,
)
from ecips.testkit import new_signing_keys, service_settings_kwargs
from ecips_common.contracts import RECORDS_TOPIC, TOPIC_PARTITIONS
from ecips_common.identifiers import USCC_ALPHABET, make_uscc
from ecips_ingest.main import create_app
from ecips_ingest.settings import IngestSettings

sys.path.insert(0, str(Path(__file__).parent))

from common import write_results

HEADER = [
    "业务编号", "统一社会信用代码", "行政相对人名称", "行政处罚决定书文号", "违法行为类型",
    "违法事实", "处罚依据", "处罚类别", "处罚内容", "罚款金额（金额）", "罚款金额（币种）",
    "处罚决定日期", "处罚机关",
]  # fmt: skip


def write_csv(path: Path, rows: int, seed: int = 2016) -> int:
    """The file, written as a stream; returns how many rows carry a mistake."""
    rng = random.Random(seed)
    run = secrets.token_hex(3)
    enterprises = [
        (make_uscc(org_body="".join(rng.choices(USCC_ALPHABET, k=8)), division="500103"),
         f"重庆测速{n:04d}建材贸易有限公司")
        for n in range(5000)
    ]  # fmt: skip
    bad = 0
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        for n in range(rows):
            uscc, name = enterprises[n % len(enterprises)]
            number = f"渝中市监处罚〔2025〕{run}-{n:06d}号"
            fine = str(rng.choice((2000, 5000, 10000, 30000, 50000)))
            if n % 100 == 37:
                fine, bad = "-" + fine, bad + 1
            writer.writerow(
                [
                    number,
                    uscc,
                    name,
                    number,
                    "产品质量",
                    "销售不合格的建筑用钢筋",
                    "《中华人民共和国产品质量法》第四十九条",
                    "警告、罚款",
                    "警告；罚款",
                    fine,
                    "CNY",
                    f"2025-{1 + n % 10:02d}-{1 + n % 28:02d}",
                    "重庆市渝中区市场监督管理局",
                ]
            )
    return bad


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def copy_limit(dsn: str, path: Path) -> float:
    """Seconds to COPY the same CSV into one plain table."""
    conn = await asyncpg.connect(dsn)
    try:
        columns = ", ".join(f"c{i} text" for i in range(len(HEADER)))
        await conn.execute(f"DROP TABLE IF EXISTS bench_copy; CREATE TABLE bench_copy ({columns})")
        started = time.perf_counter()
        with path.open("rb") as source:
            source.read(3)  # the BOM
            await conn.copy_to_table("bench_copy", source=source, format="csv", header=True)
        return time.perf_counter() - started
    finally:
        await conn.close()


async def run(args: argparse.Namespace, database_url: str, bootstrap: str, work: Path) -> None:
    rows = 10_000 if args.quick else args.rows
    csv_path = work / "penalties.csv"
    bad = write_csv(csv_path, rows)
    size_mb = csv_path.stat().st_size / 1e6
    keys = new_signing_keys()
    settings = IngestSettings(
        **service_settings_kwargs(
            database_url=database_url,
            kafka_bootstrap=bootstrap,
            keys=keys,
            ledger_url="http://127.0.0.1:9",
            max_batch_bytes=1024 * 1024 * 1024,
            batch_chunk_rows=args.chunk_rows,
            batch_poll_seconds=0.2,
            log_level="WARNING",
        )
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    base = f"http://127.0.0.1:{port}"
    headers = keys.headers("CQ-SAMR", "records:write")
    try:
        async with httpx.AsyncClient(base_url=base, timeout=600) as http:
            while True:
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
            rss_before = peak_rss_mb()
            print(f"{rows:,} rows ({bad} with a mistake), {size_mb:.1f} MB CSV")
            started = time.perf_counter()
            with csv_path.open("rb") as file:
                response = await http.post(
                    "/v1/batches",
                    headers=headers,
                    files={"file": ("penalties.csv", file, "text/csv")},
                    data={"category": "administrative_penalty"},
                )
            uploaded = time.perf_counter() - started
            assert response.status_code == 202, response.text
            batch_id = response.json()["batch_id"]
            print(f"upload accepted (stored, header checked, rows counted) in {uploaded:.1f} s")
            last_print = 0.0
            while True:
                batch = (await http.get(f"/v1/batches/{batch_id}", headers=headers)).json()
                now = time.perf_counter() - started
                if batch["status"] in ("done", "failed"):
                    break
                if now - last_print >= args.progress_every:
                    done, total = batch["processed"], batch["total"] or 0
                    print(f"  {now:6.1f} s  {batch['status']:<10} {done:>7,}/{total:,}")
                    last_print = now
                await asyncio.sleep(0.25)
            elapsed = time.perf_counter() - started
    finally:
        server.should_exit = True
        await serving
    dsn = to_asyncpg_dsn(database_url)
    conn = await asyncpg.connect(dsn)
    try:
        events = await conn.fetchval(
            "SELECT count(*) FROM ingest.outbox WHERE event_type = 'ecips.record.accepted'"
        )
    finally:
        await conn.close()
    copy_seconds = await copy_limit(dsn, csv_path)
    ingest_rate = rows / elapsed
    copy_rate = rows / copy_seconds
    accepted, rejected = batch["accepted"], batch["rejected"]
    print(
        f"batch {batch['status']}: accepted {accepted:,}, rejected {rejected:,}, events {events:,}"
    )
    print(f"ingest: {elapsed:.1f} s upload to done = {ingest_rate:,.0f} rows/s")
    print(f"COPY of the same file into one table: {copy_seconds:.2f} s = {copy_rate:,.0f} rows/s")
    print(f"ratio ingest / COPY: {ingest_rate / copy_rate:.3f} (1/{copy_rate / ingest_rate:.0f})")
    print(f"peak RSS of this process (client and service): {peak_rss_mb():.0f} MB "
          f"(before the upload {rss_before:.0f} MB; file {size_mb:.1f} MB)")  # fmt: skip
    path = write_results(
        "ingest_batch",
        {
            "rows": rows,
            "accepted": accepted,
            "rejected": rejected,
            "events": events,
            "seconds": round(elapsed, 2),
            "rows_per_second": round(ingest_rate, 1),
            "raw_copy_rows_per_second": round(copy_rate, 1),
            "ratio_to_raw_copy": round(ingest_rate / copy_rate, 5),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "file_mb": round(size_mb, 1),
        },
    )
    print(f"results: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="10,000 rows")
    parser.add_argument("--chunk-rows", type=int, default=500)
    parser.add_argument("--progress-every", type=float, default=5.0, help="seconds")
    parser.add_argument(
        "--database-url", help="an existing server (a fresh database is made on it)"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ecips-bench-"))
    work.chmod(0o711)
    postgres: EmbeddedPostgres | None = None
    broker = EmbeddedBroker(free_port(), log_path=work / "broker.log")
    name = f"ecips_bench_{secrets.token_hex(4)}"
    try:
        if args.database_url:
            server_dsn = to_asyncpg_dsn(args.database_url)
        else:
            postgres = EmbeddedPostgres(work / "pg", free_port())
            postgres.start()
            server_dsn = postgres.admin_dsn
        ensure_database(server_dsn, name)
        broker.start({RECORDS_TOPIC: TOPIC_PARTITIONS[RECORDS_TOPIC]})
        database_url = to_sqlalchemy_url(with_database(server_dsn, name))
        asyncio.run(run(args, database_url, broker.bootstrap_servers, work))
    finally:
        broker.stop()
        if args.database_url:
            drop_database(server_dsn, name)
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
