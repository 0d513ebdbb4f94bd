"""Public queries at scale: a million generated enterprises (100,000 with
``--quick``) loaded with COPY into publicity's tables.

1. Name search, one query at a time: every sampled fragment through the
   public API of a running publicity service, beside the time of the same SQL
   statements run directly in the same run.
2. Under load: name fragments, search by USCC and the enterprise profile at a
   fixed concurrency from a load generator in a second process
   (``bench/loadgen.py``): requests/s and p50/p95/p99, beside the same
   statements through an asyncpg pool of the same size.

    .venv/bin/python bench/search.py --quick
    .venv/bin/python bench/search.py                 # 1,000,000 enterprises
    .venv/bin/python bench/search.py --server-dsn postgresql://postgres@127.0.0.1:5432/postgres

Without ``--server-dsn`` an embedded PostgreSQL is started in a temporary
directory; a scratch database is created and dropped either way. An
embedded broker is started for the service's consumer. Prints p50/p95 per
kind of fragment (two characters: the character-pair index; three or more:
pg_trgm; broad: more matches than the ranking cap) and the ratio of the API
to the raw SQL. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvicorn
from sqlalchemy import Index, TextClause, func, or_, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import create_async_engine

from ecips.runtime.broker import EmbeddedBroker
from ecips.runtime.ports import free_port
from ecips.runtime.postgres import (
    EmbeddedPostgres,
    drop_database,
    ensure_database,
    to_sqlalchemy_url,
    with_database,
)
from ecips.testkit import new_signing_keys, service_settings_kwargs
from ecips_common.identifiers import USCC_ALPHABET, make_uscc
from ecips_common.migrations import upgrade_to_head_async
from ecips_publicity.catalogue import load_catalogue
from ecips_publicity.main import create_app
from ecips_publicity.models import Enterprise, FormerName, JointMeasure, PublicItem
from ecips_publicity.repository import NameSearch, SearchCriteria, published
from ecips_publicity.settings import PublicitySettings

sys.path.insert(0, str(Path(__file__).parent))

from common import write_results
from loadgen import latency_figures, run_load

DISTRICTS = {
    "500101": "万州", "500102": "涪陵", "500103": "渝中", "500104": "大渡口", "500105": "江北",
    "500106": "沙坪坝", "500107": "九龙坡", "500108": "南岸", "500109": "北碚", "500110": "綦江",
    "500111": "大足", "500112": "渝北", "500113": "巴南", "500114": "黔江", "500115": "长寿",
    "500116": "江津", "500117": "合川", "500118": "永川", "500119": "南川", "500120": "璧山",
    "500151": "铜梁", "500152": "潼南", "500153": "荣昌", "500154": "开州", "500155": "梁平",
    "500156": "武隆", "500229": "城口", "500230": "丰都", "500231": "垫江", "500233": "忠县",
    "500235": "云阳", "500236": "奉节", "500237": "巫山", "500238": "巫溪", "500240": "石柱",
    "500241": "秀山", "500242": "酉阳", "500243": "彭水",
}  # fmt: skip
# Characters of trade names (字号) as people choose them.
NAME_CHARS = (
    "鑫瑞祥泰华宏源达丰盛恒昌隆兴德福嘉荣锦鸿翔润博金银星海天和中新永长远东明光辉耀正信诚实"
    "创智通顺安康佳美优卓越腾飞龙凤山水江川渝巴蜀峰林森晨阳景宇骏雅韵诺亿万千百合力思维立方"
    "圆峻秀云雨雪彩虹晶钰铭宸睿哲贤誉尚品汇聚联铁石木禾田青蓝紫红绿"
)
TRADES = (
    "建材", "贸易", "科技", "物流", "餐饮管理", "商贸", "建筑工程", "房地产开发", "信息技术",
    "电子商务", "机械制造", "汽车销售", "食品", "医药", "农业开发", "文化传媒", "广告",
    "装饰工程", "劳务", "环保科技", "新能源", "教育咨询", "旅游", "酒店管理", "物业管理",
    "网络科技", "软件", "火锅", "服饰", "五金", "家具", "印务", "运输", "实业", "投资", "置业",
    "园林绿化", "钢结构", "水务", "能源",
)  # fmt: skip
FORMS = ("有限公司",) * 8 + ("有限责任公司", "股份有限公司")
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
)
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国建华志强海燕"
BROAD = ("重庆", "有限公司", "重庆市渝中", "科技", "火锅")
STATUSES = (("存续", "active"),) * 92 + (("注销", "deregistered"),) * 5 + (("吊销", "revoked"),) * 3


def enterprise_name(rng: random.Random, district: str) -> str:
    trade_name = "".join(rng.choices(NAME_CHARS, k=rng.choice((2, 2, 2, 3))))
    place = rng.random()
    prefix = "重庆" if place < 0.2 else ("重庆市" if place < 0.45 else "重庆") + district
    return prefix + trade_name + rng.choice(TRADES) + rng.choice(FORMS)


def generate(count: int, seed: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Rows for COPY into publicity.enterprises and publicity.former_names."""
    rng = random.Random(seed)
    codes = list(DISTRICTS)
    seen: set[str] = set()
    enterprises: list[tuple[Any, ...]] = []
    former: list[tuple[Any, ...]] = []
    now = datetime.now(UTC)
    while len(enterprises) < count:
        division = rng.choice(codes)
        uscc = make_uscc(org_body="".join(rng.choices(USCC_ALPHABET, k=8)), division=division)
        if uscc in seen:
            continue
        seen.add(uscc)
        name = enterprise_name(rng, DISTRICTS[division])
        names: list[str] = []
        if rng.random() < 0.1:  # renamed once or twice
            names = [
                enterprise_name(rng, DISTRICTS[division]) for _ in range(rng.choice((1, 1, 2)))
            ]
        abnormal = rng.random() < 0.03
        illegal = rng.random() < 0.01
        status, status_code = rng.choice(STATUSES)
        established = date(1995, 1, 1) + timedelta(days=rng.randrange(11000))
        former_json = [{"name": n, "until": str(established + timedelta(days=400))} for n in names]
        enterprises.append(
            (
                uscc, 1, True, name, former_json, "\n".join(names) or None, None,
                rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2)))),
                "有限责任公司", f"{rng.choice((50, 100, 200, 500, 1000))}万元人民币", established,
                f"重庆市{DISTRICTS[division]}区某某路{rng.randrange(1, 999)}号",
                "一般项目：" + rng.choice(TRADES), f"重庆市{DISTRICTS[division]}区市场监督管理局",
                division, status, status_code,
                {"abnormal_operation": abnormal, "serious_illegal": illegal},
                abnormal, illegal, now, now,
            )
        )  # fmt: skip
        former += [(uscc, position, n, None) for position, n in enumerate(names)]
    return enterprises, former


ENTERPRISE_COLUMNS = (
    "uscc", "version", "registered", "name", "former_names", "former_names_text",
    "registration_number", "legal_representative", "enterprise_type", "registered_capital",
    "established_on", "address", "business_scope", "registration_authority", "division_code",
    "status", "status_code", "flags", "abnormal_operation", "serious_illegal", "changed_at",
    "updated_at",
)  # fmt: skip
SEARCH_INDEXES: tuple[Index, ...] = (
    *Enterprise.__table__.indexes,
    *FormerName.__table__.indexes,
)


async def load(dsn: str, url: str, count: int, seed: int) -> dict[str, float]:
    """COPY the rows with the search indexes dropped, then build them (faster)."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    enterprises, former = generate(count, seed)
    timings["generate"] = time.perf_counter() - started
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            for index in SEARCH_INDEXES:
                await connection.run_sync(lambda c, i=index: i.drop(c, checkfirst=True))
        conn = await asyncpg.connect(dsn)
        # COPY is binary: jsonb's binary form is a version byte, then the text.
        await conn.set_type_codec(
            "jsonb",
            encoder=lambda value: b"\x01" + json.dumps(value, ensure_ascii=False).encode(),
            decoder=lambda data: json.loads(data[1:]),
            schema="pg_catalog",
            format="binary",
        )
        try:
            started = time.perf_counter()
            await conn.copy_records_to_table(
                "enterprises", schema_name="publicity", records=enterprises,
                columns=ENTERPRISE_COLUMNS,
            )  # fmt: skip
            await conn.copy_records_to_table(
                "former_names", schema_name="publicity", records=former,
                columns=("uscc", "position", "name", "until"),
            )  # fmt: skip
            timings["copy"] = time.perf_counter() - started
        finally:
            await conn.close()
        started = time.perf_counter()
        async with engine.begin() as connection:
            await connection.exec_driver_sql("SET LOCAL maintenance_work_mem = '512MB'")
            for index in SEARCH_INDEXES:
                await connection.run_sync(lambda c, i=index: i.create(c))
        timings["indexes"] = time.perf_counter() - started
        conn = await asyncpg.connect(dsn)
        try:
            started = time.perf_counter()
            await conn.execute("ANALYZE publicity.enterprises; ANALYZE publicity.former_names")
            timings["analyze"] = time.perf_counter() - started
        finally:
            await conn.close()
    finally:
        await engine.dispose()
    return timings


@dataclass(frozen=True)
class Query:
    kind: str
    text: str


def fragments(dsn: str, samples: int, seed: int) -> list[Query]:
    """Parts of real names: two characters, three to six, and broad ones."""

    async def names() -> list[str]:
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch(
                "SELECT name FROM publicity.enterprises TABLESAMPLE SYSTEM (1) LIMIT $1", samples
            )
        finally:
            await conn.close()
        return [r["name"] for r in rows]

    rng = random.Random(seed)
    queries: list[Query] = []
    for name in asyncio.run(names()):
        length = rng.choice((2, 3, 4, 5, 6))
        start = rng.randrange(0, len(name) - length)
        fragment = name[start : start + length]
        queries.append(Query("2 chars" if length == 2 else "3-6 chars", fragment))
    queries += [Query("broad", text) for text in BROAD]
    return queries


class Service:
    """The publicity service in a uvicorn server of its own."""

    def __init__(self, settings: PublicitySettings) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 120
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the publicity service did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def compile_statement(statement: TextClause, params: dict[str, Any]) -> tuple[str, list[Any]]:
    compiled = statement.compile(dialect=postgresql.asyncpg.dialect())  # type: ignore[attr-defined]
    values = compiled.construct_params(params)
    names = compiled.positiontup or []
    return str(compiled), [values[name] for name in names]


async def raw_sql_ms(
    dsn: str, queries: Sequence[Query], repeats: int, cap: int
) -> dict[str, list[float]]:
    """The service's statements for each query, straight to PostgreSQL."""
    conn = await asyncpg.connect(dsn)
    timings: dict[str, list[float]] = {}
    try:
        for query in queries:
            statements = NameSearch(SearchCriteria(query.text), cap=cap).statements(
                offset=0, limit=10
            )
            count_sql, count_args = compile_statement(statements.count, statements.params)
            ranked = compile_statement(statements.ranked, statements.params)
            broad = compile_statement(statements.broad, statements.params)
            samples = []
            for _ in range(repeats):
                started = time.perf_counter()
                async with conn.transaction():
                    await conn.execute(
                        "SELECT set_config('plan_cache_mode', 'force_custom_plan', true),"
                        " set_config('jit', 'off', true),"
                        " set_config('max_parallel_workers_per_gather', '0', true)"
                    )
                    matching = await conn.fetchval(count_sql, *count_args)
                    if matching <= cap:
                        await conn.execute("SELECT set_config('enable_seqscan', 'off', true)")
                        await conn.fetch(ranked[0], *ranked[1])
                    else:
                        await conn.execute(
                            "SELECT set_config('enable_seqscan', 'off', true),"
                            " set_config('enable_bitmapscan', 'off', true)"
                        )
                        await conn.fetch(broad[0], *broad[1])
                samples.append((time.perf_counter() - started) * 1000)
            timings[query.text] = samples
    finally:
        await conn.close()
    return timings


def api_ms(base: str, queries: Sequence[Query], repeats: int) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {}
    with httpx.Client(base_url=base, timeout=30) as http:
        for query in queries:
            samples = []
            for _ in range(repeats):
                started = time.perf_counter()
                response = http.get("/v1/search", params={"q": query.text, "limit": 10})
                samples.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise RuntimeError(f"{query.text!r}: {response.status_code} {response.text}")
            timings[query.text] = samples
    return timings


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def report(
    queries: Sequence[Query], api: dict[str, list[float]], raw: dict[str, list[float]]
) -> None:
    def by(kind: str | None, source: dict[str, list[float]]) -> list[float]:
        # The median of a query's repeats, so that each query weighs the same.
        return [statistics.median(source[q.text]) for q in queries if kind in (None, q.kind)]

    columns = ("API p50", "API p95", "SQL p50", "SQL p95")
    print(f"{'fragment':<10} {'n':>4} " + " ".join(f"{c:>9}" for c in columns) + "  API/SQL p50")
    for kind in ("2 chars", "3-6 chars", "broad", None):
        a, r = by(kind, api), by(kind, raw)
        if not a:
            continue
        p50a, p95a, p50r, p95r = (percentile(a, 0.5), percentile(a, 0.95),
                                  percentile(r, 0.5), percentile(r, 0.95))  # fmt: skip
        print(
            f"{kind or 'all':<10} {len(a):>4} {p50a:>7.1f}ms {p95a:>7.1f}ms {p50r:>7.1f}ms "
            f"{p95r:>7.1f}ms {p50a / p50r:>11.2f}x"
        )
    slowest = max(queries, key=lambda q: statistics.median(api[q.text]))
    print(f"slowest fragment {slowest.text!r}: API {statistics.median(api[slowest.text]):.1f} ms")


def sample_usccs(dsn: str, count: int, seed: int) -> list[str]:
    async def fetch() -> list[str]:
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch(
                "SELECT uscc FROM publicity.enterprises TABLESAMPLE SYSTEM (1)"
                " WHERE registered LIMIT $1",
                count,
            )
        finally:
            await conn.close()
        return [r["uscc"] for r in rows]

    usccs = asyncio.run(fetch())
    random.Random(seed).shuffle(usccs)
    return usccs


def load_requests(
    queries: Sequence[Query], usccs: Sequence[str]
) -> dict[str, list[dict[str, Any]]]:
    def search(text: str) -> dict[str, Any]:
        return {"path": "/v1/search?" + str(httpx.QueryParams({"q": text, "limit": 10}))}

    return {
        "name fragment": [search(q.text) for q in queries if q.kind != "broad"],
        "USCC": [search(uscc) for uscc in usccs],
        "profile": [{"path": f"/v1/enterprises/{uscc}"} for uscc in usccs],
    }


def profile_statements(uscc: str, settings: PublicitySettings) -> list[tuple[str, list[Any]]]:
    """The statements the profile runs most: the enterprise, its section counts, its measures."""
    catalogue = load_catalogue(settings.catalogue_dir)
    today = datetime.now(UTC).date()
    statements = [
        select(Enterprise).where(Enterprise.uscc == uscc, Enterprise.registered.is_(True)),
        select(PublicItem.category, func.count())
        .where(PublicItem.uscc == uscc, published(catalogue, today))
        .group_by(PublicItem.category),
        select(JointMeasure)
        .where(
            JointMeasure.uscc == uscc,
            JointMeasure.active.is_(True),
            or_(JointMeasure.until.is_(None), JointMeasure.until >= today),
        )
        .order_by(JointMeasure.since, JointMeasure.rule_id),
    ]
    compiled = []
    for statement in statements:
        sql = statement.compile(
            dialect=postgresql.asyncpg.dialect(),  # type: ignore[attr-defined]
            compile_kwargs={"render_postcompile": True},
        )
        values = sql.construct_params()
        compiled.append((str(sql), [values[name] for name in sql.positiontup or []]))
    return compiled


async def raw_load(
    dsn: str,
    kind: str,
    queries: Sequence[Query],
    usccs: Sequence[str],
    settings: PublicitySettings,
    *,
    concurrency: int,
    seconds: float,
) -> dict[str, Any]:
    """The same statements through an asyncpg pool of the load's concurrency."""
    cap = settings.search_result_cap
    fragments = [q for q in queries if q.kind != "broad"]
    prepared: list[list[tuple[str, list[Any]]]] = []
    if kind == "name fragment":
        for query in fragments:
            statements = NameSearch(SearchCriteria(query.text), cap=cap).statements(
                offset=0, limit=10
            )
            # count, then the ranked page (or the broad one past the cap), as the service
            prepared.append(
                [
                    compile_statement(statements.count, statements.params),
                    compile_statement(statements.ranked, statements.params),
                    compile_statement(statements.broad, statements.params),
                ]
            )
    elif kind == "USCC":
        prepared = [profile_statements(uscc, settings)[:1] for uscc in usccs]
    else:
        prepared = [profile_statements(uscc, settings) for uscc in usccs]
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)
    assert pool is not None
    latencies: list[float] = []

    async def worker(until: float, record: bool) -> None:
        rng = random.Random()
        async with pool.acquire() as conn:
            while time.perf_counter() < until:
                steps = rng.choice(prepared)
                started = time.perf_counter()
                async with conn.transaction():
                    if kind == "name fragment":
                        (count_sql, count_args), ranked, broad = steps
                        matching = await conn.fetchval(count_sql, *count_args)
                        sql, args = ranked if matching <= cap else broad
                        await conn.fetch(sql, *args)
                    else:
                        for sql, args in steps:
                            await conn.fetch(sql, *args)
                if record:
                    latencies.append(time.perf_counter() - started)

    try:
        await asyncio.gather(
            *(worker(time.perf_counter() + 0.5, False) for _ in range(concurrency))
        )
        started = time.perf_counter()
        await asyncio.gather(*(worker(started + seconds, True) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    finally:
        await pool.close()
    return {"requests": len(latencies), "elapsed": elapsed, **latency_figures(latencies, elapsed)}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="100,000 enterprises")
    parser.add_argument("--count", type=int, help="enterprises to generate (default 1,000,000)")
    parser.add_argument("--queries", type=int, default=200, help="sampled name fragments")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each query")
    parser.add_argument("--seed", type=int, default=20161124)
    parser.add_argument("--concurrency", type=int, default=8, help="connections under load")
    parser.add_argument("--seconds", type=float, help="seconds of load per kind (10; quick 3)")
    parser.add_argument("--server-dsn", help="an existing PostgreSQL server (any database on it)")
    parser.add_argument(
        "--keep", action="store_true", help="keep the scratch database (needs --server-dsn)"
    )
    args = parser.parse_args()
    count = args.count or (100_000 if args.quick else 1_000_000)
    queries_wanted = min(args.queries, 60) if args.quick else args.queries

    cleanup: list[Callable[[], None]] = []
    try:
        workdir = Path(tempfile.mkdtemp(prefix="ecips-bench-search-"))
        workdir.chmod(0o711)
        if args.server_dsn:
            server_dsn = args.server_dsn
        else:
            embedded = EmbeddedPostgres(workdir / "pg", free_port())
            embedded.start()
            cleanup.append(embedded.stop)
            server_dsn = embedded.admin_dsn
        broker = EmbeddedBroker(free_port(), log_path=workdir / "broker.log")
        broker.start()
        cleanup.append(broker.stop)
        database = f"ecips_bench_search_{secrets.token_hex(4)}"
        ensure_database(server_dsn, database)
        if args.keep and args.server_dsn:
            print(f"keeping database {database}")
        else:
            cleanup.append(lambda: drop_database(server_dsn, database))
        dsn = with_database(server_dsn, database)
        url = to_sqlalchemy_url(dsn)
        asyncio.run(upgrade_to_head_async("ecips_publicity", url, "publicity"))

        print(f"loading {count:,} enterprises …", flush=True)
        timings = asyncio.run(load(dsn, url, count, args.seed))
        print("  " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))

        settings = PublicitySettings(
            **service_settings_kwargs(
                database_url=url, kafka_bootstrap=broker.bootstrap_servers, keys=new_signing_keys()
            ),
            rate_limit_per_second=100_000,
            rate_limit_burst=100_000,
            ingest_url="http://127.0.0.1:9",
            ledger_url="http://127.0.0.1:9",
            rules_url="http://127.0.0.1:9",
            log_level="WARNING",
        )
        queries = fragments(dsn, queries_wanted, args.seed)
        usccs = sample_usccs(dsn, 2_000, args.seed)
        seconds = args.seconds or (3.0 if args.quick else 10.0)
        requests = load_requests(queries, usccs)
        loaded: dict[str, dict[str, Any]] = {}
        with Service(settings) as base:
            api_ms(base, queries[:10], 1)  # warm the caches and the connection pool
            api = api_ms(base, queries, args.repeats)
            port = int(base.rsplit(":", 1)[1])
            for kind, kind_requests in requests.items():
                loaded[kind] = run_load(
                    port, kind_requests, concurrency=args.concurrency, seconds=seconds
                )
        raw = asyncio.run(raw_sql_ms(dsn, queries, args.repeats, settings.search_result_cap))
        raw_loaded = {
            kind: asyncio.run(
                raw_load(
                    dsn,
                    kind,
                    queries,
                    usccs,
                    settings,
                    concurrency=args.concurrency,
                    seconds=seconds,
                )
            )
            for kind in requests
        }
        print(
            f"search over {count:,} enterprises, {len(queries)} fragments × {args.repeats} runs "
            f"(API: HTTP through the service; SQL: its statements run directly)"
        )
        report(queries, api, raw)
        print(
            f"under load: {args.concurrency} connections, {seconds:g} s per kind "
            "(API: load generator in a second process; raw: asyncpg pool, same statements)"
        )
        print(
            f"{'kind':<14} {'API req/s':>10} {'p50':>7} {'p95':>7} {'p99':>7}   "
            f"{'raw q/s':>9} {'p50':>7} {'p95':>7} {'p99':>7}  {'of raw':>7}  errors"
        )
        load_results: dict[str, Any] = {}
        for kind, result in loaded.items():
            rawr = raw_loaded[kind]
            share = result["per_second"] / rawr["per_second"] if rawr["per_second"] else 0.0
            print(
                f"{kind:<14} {result['per_second']:>10,.0f} {result['p50']:>6.1f}ms "
                f"{result['p95']:>6.1f}ms {result['p99']:>6.1f}ms   {rawr['per_second']:>9,.0f} "
                f"{rawr['p50']:>6.1f}ms {rawr['p95']:>6.1f}ms {rawr['p99']:>6.1f}ms  "
                f"{share:>7.0%}  {sum(result['errors'].values())}"
            )
            load_results[kind] = {
                "api": {k: round(v, 2) for k, v in result.items() if isinstance(v, float)},
                "api_errors": result["errors"],
                "raw_asyncpg": {k: round(v, 2) for k, v in rawr.items() if isinstance(v, float)},
                "of_raw": round(share, 3),
            }

        def summary(source: dict[str, list[float]], kind: str | None) -> dict[str, float]:
            values = [statistics.median(source[q.text]) for q in queries if kind in (None, q.kind)]
            return {
                "p50": round(percentile(values, 0.5), 2),
                "p95": round(percentile(values, 0.95), 2),
                "n": len(values),
            }

        path = write_results(
            "search",
            {
                "quick": args.quick,
                "enterprises": count,
                "load_timings_s": {k: round(v, 1) for k, v in timings.items()},
                "single_queries_ms": {
                    kind or "all": {"api": summary(api, kind), "raw_sql": summary(raw, kind)}
                    for kind in ("2 chars", "3-6 chars", "broad", None)
                },
                "under_load": {"concurrency": args.concurrency, "seconds": seconds, **load_results},
                "load_average_at_end": round(os.getloadavg()[0], 1),
            },
        )
        print(f"results: {path}")
    finally:
        for step in reversed(cleanup):
            try:
                step()
            except Exception as exc:  # keep cleaning up
                print(f"cleanup: {exc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
