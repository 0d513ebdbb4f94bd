"""Rules benchmark: credit checks per second, single and batch, over HTTP
(a load generator in a second process, fixed concurrency, p50/p95/p99) beside
the very same SQL timed with asyncpg alone; and the time to evaluate every
enterprise (first evaluation, dry run and enactment of a new catalogue
version) beside the raw CEL evaluation rate — all in the same run.

    .venv/bin/python bench/rules.py --quick     # 50,000 enterprises, < 60 s
    .venv/bin/python bench/rules.py             # 1,000,000 enterprises

By default it starts its own embedded PostgreSQL; ``--database-url`` points it
at an existing server instead (a scratch database is created and dropped).
Figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).parent))

from common import write_results
from loadgen import latency_figures, run_load

from ecips.runtime.ports import free_port
from ecips.runtime.postgres import (
    EmbeddedPostgres,
    drop_database,
    ensure_database,
    to_asyncpg_dsn,
    to_sqlalchemy_url,
    with_database,
)
from ecips_common.auth import generate_signing_key
from ecips_common.db import Database, create_engine
from ecips_common.identifiers import USCC_ALPHABET, org_code_check_character, uscc_check_character
from ecips_common.migrations import upgrade_to_head_async
from ecips_rules.catalogue import load_catalogue
from ecips_rules.evaluation import decide
from ecips_rules.management import CatalogueManager
from ecips_rules.models import OUTBOX, CatalogueJob
from ecips_rules.registry import CatalogueRegistry
from ecips_rules.repository import CHECK_SQL, RulesRepository
from ecips_rules.schemas import NewCatalogueVersion, RuleChanges
from ecips_rules.settings import CATALOGUE_FILE
from ecips_rules.variables import enterprise_variables

TODAY = date.today()
DIVISIONS = ("500103", "500104", "500105", "500106", "500107", "500108", "500112", "500113")


# --- the population --------------------------------------------------------------


def usccs(count: int, seed: int = 7) -> Iterator[str]:
    """Distinct valid USCCs (organisation-code bodies drawn without repeats)."""
    rng = random.Random(seed)
    space = len(USCC_ALPHABET) ** 8
    for number in rng.sample(range(space), count):
        body = ""
        for _ in range(8):
            number, digit = divmod(number, len(USCC_ALPHABET))
            body += USCC_ALPHABET[digit]
        first17 = "91" + DIVISIONS[number % len(DIVISIONS)] + body + org_code_check_character(body)
        yield first17 + uscc_check_character(first17)


def state_of(uscc: str, rng: random.Random) -> dict[str, Any]:
    """A snapshot as the ledger sends it, in the proportions a city might see."""
    year = TODAY.year
    flags: dict[str, Any] = {}
    counts: dict[str, int] = {"registration": 1, "annual_report": rng.randint(0, 8)}
    by_year: dict[str, int] = {}
    roll = rng.random()
    if roll < 0.02:
        flags = {
            "serious_illegal": True,
            "serious_illegal_since": f"{year - rng.randint(0, 4)}-05-0{rng.randint(1, 9)}",
        }
    elif roll < 0.06:
        since = f"{year - rng.randint(0, 5)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
        flags = {"abnormal_operation": True, "abnormal_operation_since": since}
    elif roll < 0.065:
        flags = {
            "major_tax_violation": True,
            "major_tax_violation_since": f"{year - rng.randint(0, 4)}-03-15",
        }
    elif roll < 0.07:
        flags = {
            "dishonest_judgment_debtor": True,
            "dishonest_judgment_debtor_since": f"{year - 1}-11-20",
        }
    if rng.random() < 0.15:
        penalties = rng.choice((1, 1, 1, 2, 3, 4))
        by_year = {str(year - rng.randint(0, 2)): penalties}
        counts["administrative_penalty"] = penalties
    if rng.random() < 0.12:
        counts["commendation"] = rng.randint(1, 3)
    if rng.random() < 0.03:
        counts["tax_arrears"] = 1
    return {
        "uscc": uscc,
        "version": 1,
        "registered": True,
        "name": f"重庆测评{uscc[-6:]}有限公司",
        "legal_representative": "张三",
        "enterprise_type": "有限责任公司（自然人投资或控股）",
        "registered_capital": f"{rng.randint(10, 5000)}万元人民币",
        "established_on": f"{rng.randint(1995, year)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
        "address": "重庆市渝中区解放碑",
        "business_scope": "一般项目：软件开发；信息技术咨询服务",
        "registration_authority": "重庆市渝中区市场监督管理局",
        "division_code": uscc[2:8],
        "status": "存续",
        "status_code": "active",
        "flags": flags,
        "record_counts": counts,
        "penalty_counts_by_year": by_year,
        "changed_at": "2026-01-01T00:00:00+00:00",
    }


async def populate(dsn: str, count: int) -> list[str]:
    rng = random.Random(11)
    connection = await asyncpg.connect(dsn)
    made: list[str] = []
    try:
        batch: list[tuple[Any, ...]] = []
        for uscc in usccs(count):
            state = state_of(uscc, rng)
            batch.append((uscc, state["name"], 1, json.dumps(state, ensure_ascii=False), "{}"))
            made.append(uscc)
            if len(batch) == 20_000:
                await _copy(connection, batch)
                batch = []
        if batch:
            await _copy(connection, batch)
        await connection.execute("ANALYZE rules.enterprises")
    finally:
        await connection.close()
    return made


async def _copy(connection: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
    await connection.copy_records_to_table(
        "enterprises",
        schema_name="rules",
        columns=["uscc", "name", "version", "state", "rule_state"],
        records=rows,
    )


# --- evaluation ----------------------------------------------------------------------


def raw_cel_rate(seconds: float) -> float:
    """Conditions per second: one compiled program, one prepared context."""
    catalogue = load_catalogue(CATALOGUE_FILE)
    compiled = catalogue.rules["trustworthy_enterprise_incentives"]
    context = catalogue.context(
        enterprise_variables(state_of("91500103MA5U6Y7X4K", random.Random(1)), TODAY)
    )
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(10_000):
            compiled.program.execute(context)
        done += 10_000
    return done / (time.perf_counter() - started)


def engine_rate(count: int) -> float:
    """Enterprises decided per second in memory (variables, every rule, timing)."""
    catalogue = load_catalogue(CATALOGUE_FILE)
    rng = random.Random(5)
    states = [state_of(u, rng) for u in usccs(count, seed=99)]
    started = time.perf_counter()
    for state in states:
        decide(catalogue, state=state, today=TODAY, active=[])
    return count / (time.perf_counter() - started)


def cel_distinct_rate(count: int) -> float:
    """Enterprises per second when each hands its own values to the CEL engine
    (the cost the engine's memo of answers avoids)."""
    catalogue = load_catalogue(CATALOGUE_FILE)
    rng = random.Random(5)
    states = [state_of(u, rng) for u in usccs(count, seed=98)]
    programs = [c.program for c in catalogue.rules.values()]
    started = time.perf_counter()
    for state in states:
        context = catalogue.context(enterprise_variables(state, TODAY))
        for program in programs:
            program.execute(context)
    return count / (time.perf_counter() - started)


async def wait_job(database: Database, job_id: uuid.UUID) -> CatalogueJob:
    while True:
        async with database.read_only() as session:
            job = await RulesRepository(session).job(job_id)
        assert job is not None
        if job.status != "running":
            if job.status != "done":
                raise RuntimeError(f"job failed: {job.error}")
            return job
        await asyncio.sleep(0.2)


async def evaluation_figures(database_url: str, enact: bool) -> dict[str, Any]:
    database = Database(create_engine(database_url, application_name="bench"), OUTBOX)
    registry = CatalogueRegistry(load_catalogue(CATALOGUE_FILE))
    now = datetime.now(UTC)
    await registry.seed_database(database, now=now)
    manager = CatalogueManager(database, registry, clock=lambda: datetime.now(UTC), chunk_size=2000)
    figures: dict[str, Any] = {}
    try:
        # The first evaluation of everyone under version 1 (creates the punishments).
        job = CatalogueJob(
            job_id=uuid.uuid4(),
            kind="enactment",
            catalogue_number=1,
            status="running",
            as_of=TODAY,
            requested_by="bench",
            started_at=now,
            evaluated=0,
            summary={},
        )
        async with database.unit_of_work() as uow:
            await RulesRepository(uow.session).add_job(job)
        started = time.perf_counter()
        tally = await manager.run_enactment(job.job_id, registry.current)
        figures["first"] = (time.perf_counter() - started, tally.changes)

        # A new version: one rule added, one revised, one withdrawn.
        abnormal = registry.current.rules["abnormal_operation_list"].rule
        revised = abnormal.model_dump(mode="json", exclude_none=True)
        revised["measures"] = [
            m for m in revised["measures"] if m["key"] != "increased_inspections"
        ]
        del revised["version"]
        body = NewCatalogueVersion(
            note="bench",
            changes=RuleChanges(
                upsert=[
                    {
                        "id": "tax_arrears_outstanding",
                        "title": "欠缴税款的企业不予评先评优",
                        "kind": "punishment",
                        "condition": "enterprise.record_counts.tax_arrears > 0",
                        "duration": {"type": "while_condition"},
                        "legal_basis": "《中华人民共和国税收征收管理法》",
                        "measures": [
                            {
                                "key": "revoke_honorary_titles",
                                "title": "不予授予荣誉称号",
                                "scenarios": ["honorary_title"],
                                "department": "CQ-NDRC",
                                "legal_basis": "《中华人民共和国税收征收管理法》",
                            }
                        ],
                    },
                    revised,
                ],
                withdraw=["repeated_penalties_in_one_year"],
            ),
        )
        version = await manager.create_version(body, "bench")
        started = time.perf_counter()
        dry_run = await wait_job(
            database, (await manager.start_dry_run(version.number, "bench")).job_id
        )
        figures["dry_run"] = (time.perf_counter() - started, dry_run.summary)
        if enact:
            started = time.perf_counter()
            enacted = await wait_job(
                database, (await manager.start_enactment(version.number, "bench")).job_id
            )
            figures["enactment"] = (
                time.perf_counter() - started,
                enacted.summary["changes"],
                enacted.matches_dry_run,
            )
    finally:
        await manager.close()
        await database.dispose()
    return figures


# --- credit checks -----------------------------------------------------------------


PYCACHE = Path(tempfile.gettempdir()) / "ecips-bench-pycache"


def child_environment(**extra: str) -> dict[str, str]:
    """Subprocesses share a bytecode cache of their own (this environment may
    forbid writing one next to the sources), so only the first compiles."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": str(PYCACHE), **extra}


def start_server(
    database_url: str, port: int, public_key: str, cache_size: int
) -> subprocess.Popen[bytes]:
    env = child_environment(
        ECIPS_RULES_DATABASE_URL=database_url,
        ECIPS_RULES_KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9",  # events are not the point here
        ECIPS_RULES_LEDGER_URL="http://127.0.0.1:9",
        ECIPS_RULES_JWT_PUBLIC_KEY=public_key,
        ECIPS_RULES_MIGRATE_ON_START="false",
        ECIPS_RULES_RATE_LIMIT_PER_SECOND="1000000000",
        ECIPS_RULES_RATE_LIMIT_BURST="1000000000",
        ECIPS_RULES_CHECK_CACHE_SIZE=str(cache_size),
        ECIPS_RULES_DATABASE_POOL_SIZE="20",
        ECIPS_RULES_SCHEDULER_INTERVAL_SECONDS="3600",
        ECIPS_RULES_FEED_FOLLOW_INTERVAL_SECONDS="3600",
        ECIPS_RULES_LOG_LEVEL="WARNING",
    )
    log = open(server_log(port), "wb")  # noqa: SIM115 (the child writes it)
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "ecips_rules.main:create_app", "--factory",
         "--port", str(port), "--log-level", "warning", "--no-access-log"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip


def server_log(port: int) -> Path:
    return Path(tempfile.gettempdir()) / f"ecips-bench-rules-{port}.log"


def start_ceiling(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(__file__).parent),
         "rules:ceiling_app", "--factory", "--port", str(port), "--log-level", "warning",
         "--no-access-log"],
        env=child_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def wait_ready(port: int, path: str = "/v1/rules", deadline: float = 60.0) -> None:
    started = time.monotonic()
    while time.monotonic() - started < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    log = server_log(port)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    raise RuntimeError(f"the service on port {port} did not start; its log ends:\n{tail}")


def ceiling_app() -> Any:
    """The HTTP layer alone: the same route shape answering a constant."""
    from fastapi import FastAPI

    app = FastAPI()
    answer = {"allowed": True, "restrictions": [], "benefits": []}

    @app.get("/v1/checks/{uscc}")
    async def check(uscc: str, scenario: str) -> dict[str, Any]:
        return {"uscc": uscc, "scenario": scenario, **answer}

    return app


def latency(result: dict[str, Any]) -> str:
    return f"p50 {result['p50']:.1f} ms, p95 {result['p95']:.1f} ms, p99 {result['p99']:.1f} ms"


def check_requests(sample: list[str], mode: str, batch: int) -> list[dict[str, Any]]:
    """What the load generator cycles through: single GETs or batch POSTs."""
    rng = random.Random(11)
    if mode == "single":
        return [{"path": f"/v1/checks/{uscc}?scenario=government_procurement"} for uscc in sample]
    return [
        {
            "method": "POST",
            "path": "/v1/checks",
            "body": {"scenario": "government_procurement", "usccs": rng.sample(sample, batch)},
        }
        for _ in range(50)
    ]


def http_figures(
    port: int, sample: list[str], mode: str, concurrency: int, seconds: float, batch: int
) -> dict[str, Any]:
    result = run_load(
        port,
        check_requests(sample, mode, batch),
        concurrency=concurrency,
        seconds=seconds,
        env=child_environment(),
    )
    result["errors"] = sum(result["errors"].values())
    return result


async def raw_figures(
    dsn: str, pool_usccs: list[str], concurrency: int, seconds: float, batch: int
) -> dict[str, Any]:
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)
    assert pool is not None
    latencies: list[float] = []
    try:

        async def worker(until: float, record: bool) -> None:
            rng = random.Random()
            async with pool.acquire() as connection:
                while time.perf_counter() < until:
                    wanted = (
                        [rng.choice(pool_usccs)] if batch == 1 else rng.sample(pool_usccs, batch)
                    )
                    started = time.perf_counter()
                    await connection.fetch(CHECK_SQL, wanted)
                    if record:
                        latencies.append(time.perf_counter() - started)

        await asyncio.gather(
            *(worker(time.perf_counter() + 0.5, False) for _ in range(concurrency))
        )
        started = time.perf_counter()
        await asyncio.gather(*(worker(started + seconds, True) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    finally:
        await pool.close()
    return {"requests": len(latencies), "elapsed": elapsed, **latency_figures(latencies, elapsed)}


# --- the run -------------------------------------------------------------------------


async def timed(label: str, work: Awaitable[Any]) -> Any:
    started = time.perf_counter()
    result = await work
    print(f"  {label}: {time.perf_counter() - started:.1f} s", flush=True)
    return result


def run(args: argparse.Namespace) -> int:
    count = args.enterprises or (50_000 if args.quick else 1_000_000)
    seconds = 1.0 if args.quick else 10.0
    embedded: EmbeddedPostgres | None = None
    base = None
    if args.database_url:
        server = to_asyncpg_dsn(args.database_url)
    else:
        base = Path(tempfile.mkdtemp(prefix="ecips-bench-pg-"))
        base.chmod(0o711)
        embedded = EmbeddedPostgres(base / "data", free_port())
        embedded.start()
        server = embedded.admin_dsn
    name = f"ecips_bench_rules_{secrets.token_hex(4)}"
    ensure_database(server, name)
    dsn = with_database(server, name)
    database_url = to_sqlalchemy_url(dsn)
    servers: list[subprocess.Popen[bytes]] = []
    try:
        load_at_start = round(os.getloadavg()[0], 1)
        print(
            f"rules benchmark: {count:,} enterprises, {os.cpu_count()} CPUs, load average "
            f"{load_at_start}, today {TODAY}"
        )
        asyncio.run(upgrade_to_head_async("ecips_rules", database_url, "rules"))
        # The first service starts (and fills the bytecode cache) while the data loads.
        private, public = generate_signing_key()
        del private
        cached_port, uncached_port, ceiling_port = free_port(), free_port(), free_port()
        servers.append(start_server(database_url, cached_port, public.decode(), 200_000))
        made = asyncio.run(
            timed(f"loading {count:,} enterprise snapshots (COPY)", populate(dsn, count))
        )

        print("evaluation")
        raw = raw_cel_rate(1.0)
        distinct = cel_distinct_rate(5_000)
        engine = engine_rate(10_000 if args.quick else 50_000)
        figures = asyncio.run(evaluation_figures(database_url, enact=not args.quick))
        first_time, first_changes = figures["first"]
        dry_time, dry_summary = figures["dry_run"]
        results: dict[str, Any] = {
            "enterprises": count,
            "quick": args.quick,
            "load_average_at_start": load_at_start,
            "evaluation": {
                "raw_cel_conditions_per_s": round(raw),
                "cel_own_values_enterprises_per_s": round(distinct),
                "engine_in_memory_enterprises_per_s": round(engine),
                "first_evaluation_s": round(first_time, 1),
                "first_evaluation_triggered": first_changes,
                "dry_run_s": round(dry_time, 1),
                "dry_run_differences": dry_summary["changes"],
                "dry_run_newly_restricted": dry_summary["newly_restricted"],
                "dry_run_released": dry_summary["released"],
            },
            "checks": {},
        }
        print(f"  raw CEL: {raw:,.0f} conditions/s (one compiled condition, one prepared context)")
        print(f"  CEL with each enterprise's own values: {distinct:,.0f} enterprises/s (7 rules)")
        print(f"  decision engine in memory: {engine:,.0f} enterprises/s (7 rules, timing, memo)")
        print(
            f"  first evaluation of {count:,}: {first_time:.1f} s = {count / first_time:,.0f}/s, "
            f"{first_changes:,} punishments and incentives triggered "
            f"({count / first_time / engine:.0%} of the in-memory engine rate)"
        )
        print(
            f"  dry run of version 2 over {count:,}: {dry_time:.1f} s = {count / dry_time:,.0f}/s "
            f"({dry_summary['changes']:,} differences, {dry_summary['newly_restricted']:,} newly "
            f"restricted, {dry_summary['released']:,} released)"
        )
        if "enactment" in figures:
            enact_time, enact_changes, matches = figures["enactment"]
            results["evaluation"].update(
                enactment_s=round(enact_time, 1),
                enactment_differences=enact_changes,
                enactment_matches_dry_run=matches,
            )
            print(
                f"  enactment of version 2 (full re-evaluation): {enact_time:.1f} s = "
                f"{count / enact_time:,.0f}/s, {enact_changes:,} differences emitted, "
                f"matches the dry run: {matches}"
            )
        else:
            enact_time = first_time
            print("  (--quick: version 2 is dry-run, not enacted)")
        print(
            f"  full evaluation vs raw CEL: {count / enact_time:,.0f} enterprises/s against "
            f"{raw:,.0f} conditions/s ({count / enact_time * 7 / raw:.1%} of the raw rate "
            "for 7 conditions each)"
        )

        # The other services start now, from the first one's bytecode cache.
        servers.append(start_server(database_url, uncached_port, public.decode(), 0))
        servers.append(start_ceiling(ceiling_port))
        sample = random.Random(3).sample(made, min(20_000, len(made)))
        wait_ready(cached_port)
        wait_ready(uncached_port)
        wait_ready(ceiling_port, f"/v1/checks/{sample[0]}?scenario=x")
        # Every sampled enterprise asked once: the cached service then answers from memory.
        for start in range(0, len(sample), 1000):
            body = {"scenario": "government_procurement", "usccs": sample[start : start + 1000]}
            httpx.post(f"http://127.0.0.1:{cached_port}/v1/checks", json=body, timeout=60)
        print(
            f"credit checks ({seconds:g} s each at fixed concurrency, random USCCs from "
            f"{len(sample):,}; load average {os.getloadavg()[0]:.1f})"
        )
        rows: list[tuple[str, dict[str, Any], int]] = []
        for label, port, mode, concurrency, batch in (
            ("single GET, cache", cached_port, "single", 16, 1),
            ("single GET, no cache", uncached_port, "single", 16, 1),
            ("batch POST 1,000, cache", cached_port, "batch", 4, 1000),
            ("batch POST 1,000, no cache", uncached_port, "batch", 4, 1000),
        ):
            rows.append(
                (label, http_figures(port, sample, mode, concurrency, seconds, batch), batch)
            )
        ceiling = http_figures(ceiling_port, sample, "single", 16, seconds, 1)
        raw_single = asyncio.run(raw_figures(dsn, sample, 16, seconds, 1))
        raw_batch = asyncio.run(raw_figures(dsn, sample, 4, seconds, 1000))
        for label, result, batch in rows:
            per_second = result["requests"] / result["elapsed"]
            raw_result = raw_single if batch == 1 else raw_batch
            raw_per_second = raw_result["requests"] / raw_result["elapsed"]
            results["checks"][label] = {
                "checks_per_s": round(per_second * batch),
                "requests_per_s": round(per_second, 1),
                "of_raw_asyncpg": round(per_second / raw_per_second, 3),
                **{k: round(result[k], 2) for k in ("p50", "p95", "p99")},
                "errors": result["errors"],
            }
            print(
                f"  {label:28} {per_second * batch:10,.0f} checks/s  ({per_second:,.0f} req/s, "
                f"{latency(result)}, {result['errors']} errors)  "
                f"= {per_second / raw_per_second:.0%} of raw asyncpg"
            )
        ceiling_per_second = ceiling["requests"] / ceiling["elapsed"]
        results["checks"]["HTTP alone (constant answer)"] = {
            "requests_per_s": round(ceiling_per_second, 1),
            **{k: round(ceiling[k], 2) for k in ("p50", "p95", "p99")},
        }
        print(
            f"  {'HTTP alone (constant answer)':28} {ceiling_per_second:10,.0f} req/s    "
            f"({latency(ceiling)}): the load generator and one server process"
        )
        for label, result, batch in (
            ("raw asyncpg, same SQL, 1", raw_single, 1),
            ("raw asyncpg, same SQL, 1,000", raw_batch, 1000),
        ):
            per_second = result["requests"] / result["elapsed"]
            results["checks"][label] = {
                "checks_per_s": round(per_second * batch),
                "queries_per_s": round(per_second, 1),
                **{k: round(result[k], 2) for k in ("p50", "p95", "p99")},
            }
            print(
                f"  {label:28} {per_second * batch:10,.0f} checks/s  ({per_second:,.0f} queries/s, "
                f"{latency(result)})"
            )
        results["load_average_at_end"] = round(os.getloadavg()[0], 1)
        print(f"results: {write_results('rules', results)}")
    finally:
        for process in servers:
            process.terminate()
        for process in servers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=15)
        drop_database(server, name)
        if embedded is not None:
            embedded.stop()
        if base is not None:
            shutil.rmtree(base, ignore_errors=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="50,000 enterprises, short runs")
    parser.add_argument("--enterprises", type=int, default=0, help="override the population")
    parser.add_argument("--database-url", help="an existing PostgreSQL server (default: embedded)")
    # The load generator's own options (it is this script in a second process).
    args = parser.parse_args()
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
