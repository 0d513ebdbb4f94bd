"""What the redelivery proofs need: a fresh database per run, every consumer built the
way its service builds it, an event history made by the real producers, the
fault-injecting consumer, and snapshots of a consumer's state to compare."""

from __future__ import annotations

import json
import random
import secrets
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
from sqlalchemy import select, text

from ecips.runtime.postgres import drop_database, to_asyncpg_dsn, to_sqlalchemy_url, with_database
from ecips_common.auth import Principal
from ecips_common.consumer import BatchHandler, EventProcessor, Handler
from ecips_common.db import Database, UnitOfWork, create_engine
from ecips_common.events import CloudEvent
from ecips_common.identifiers import USCC_ALPHABET, make_registration_number, make_uscc
from ecips_common.migrations import upgrade_to_head_async
from ecips_common.outbox import row_to_event
from ecips_common.outbox_table import OutboxTables
from ecips_coordination.catalogue import load_approval_catalogue
from ecips_coordination.consumers import make_handlers as coordination_handlers
from ecips_coordination.main import upstreams as coordination_upstreams
from ecips_coordination.models import OUTBOX as COORDINATION_OUTBOX
from ecips_coordination.service import Deadlines, Environment
from ecips_coordination.settings import CoordinationSettings
from ecips_coordination.working_days import load_calendar
from ecips_ingest.catalogue import load_catalogue as load_ingest_catalogue
from ecips_ingest.schemas import RecordSubmission
from ecips_ingest.service import RecordService
from ecips_ingest.settings import CATALOGUE_DIR
from ecips_ledger.consumers import HANDLERS as LEDGER_HANDLERS
from ecips_ledger.main import upstreams as ledger_upstreams
from ecips_ledger.models import OUTBOX as LEDGER_OUTBOX
from ecips_ledger.settings import LedgerSettings
from ecips_publicity.catalogue import load_catalogue as load_publication
from ecips_publicity.consumers import make_handlers as publicity_handlers
from ecips_publicity.main import upstreams as publicity_upstreams
from ecips_publicity.models import OUTBOX as PUBLICITY_OUTBOX
from ecips_publicity.settings import PublicitySettings
from ecips_rules.catalogue import load_catalogue as load_rules
from ecips_rules.consumers import build_handlers as rules_handlers
from ecips_rules.main import upstreams as rules_upstreams
from ecips_rules.models import OUTBOX as RULES_OUTBOX
from ecips_rules.registry import CatalogueRegistry
from ecips_rules.settings import RulesSettings

CHINA = timezone(timedelta(hours=8))
# Business time for every service in every run: decisions that depend on "today"
# (deadlines, periods, rule durations) come out the same in each run.
NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
TODAY = NOW.astimezone(CHINA).date()


class Ticking:
    """A clock that moves a second each time it is read: every rules evaluation happens
    at its own instant, as in a running service (the day stays the same)."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def __call__(self) -> datetime:
        self._now += timedelta(seconds=1)
        return self._now


# Bookkeeping, not state: compared separately (inbox, dead letters) or not at all.
BOOKKEEPING_TABLES = frozenset(
    {"inbox", "dead_letters", "feed_cursors", "outbox", "alembic_version"}
)


# --- databases ------------------------------------------------------------------------


class Databases:
    """A fresh database per run, copied from a per-service template (migrated, and
    seeded as the service seeds it at start), so a run starts from exactly what a new
    deployment holds. Everything made is dropped at the end."""

    def __init__(self, database_url: str) -> None:
        self._admin = to_asyncpg_dsn(database_url)
        self._prefix = f"ecips_redelivery_{secrets.token_hex(4)}"
        self._made: list[str] = []
        self._templates: dict[str, str] = {}

    def url(self, name: str) -> str:
        return to_sqlalchemy_url(with_database(self._admin, name))

    async def _create(self, name: str, template: str | None = None) -> None:
        connection = await asyncpg.connect(self._admin)
        try:
            source = f' TEMPLATE "{template}"' if template else ""
            await connection.execute(f'CREATE DATABASE "{name}"{source}')
        finally:
            await connection.close()
        self._made.append(name)

    async def migrated(
        self,
        service: str,
        package: str,
        tables: OutboxTables,
        prepare: Callable[[Database], Awaitable[None]] | None = None,
    ) -> str:
        """A new database with the service's schema migrated (and prepared); its name."""
        name = f"{self._prefix}_{service}_{len(self._made)}"
        await self._create(name)
        connection = await asyncpg.connect(with_database(self._admin, name))
        try:
            await connection.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        finally:
            await connection.close()
        await upgrade_to_head_async(package, self.url(name), service)
        if prepare is not None:
            engine = create_engine(self.url(name), application_name="redelivery")
            database = Database(engine, tables)
            try:
                await prepare(database)
            finally:
                await database.dispose()  # a template must have no connections when copied
        return name

    async def template(self, spec: ConsumerSpec) -> None:
        self._templates[spec.service] = await self.migrated(
            spec.service, spec.package, spec.tables, spec.prepare
        )

    async def fresh(self, service: str) -> str:
        """A copy of the service's template: what a new deployment holds."""
        name = f"{self._prefix}_{service}_{len(self._made)}"
        await self._create(name, self._templates[service])
        return self.url(name)

    def drop_all(self) -> None:
        for name in reversed(self._made):
            drop_database(self._admin, name)


# --- the consumers, as their services build them ----------------------------------------


@dataclass(frozen=True)
class ConsumerSpec:
    """One consuming service: its handlers (built by the service's own factory), the
    topics it subscribes to (from its ``upstreams``), and how to prepare a new database."""

    service: str
    package: str
    tables: OutboxTables
    handlers: Mapping[str, Handler]
    topics: frozenset[str]
    prepare: Callable[[Database], Awaitable[None]]
    # Columns a consumer fills with fresh random ids or sequence numbers on its own.
    generated: Mapping[str, frozenset[str]] = field(default_factory=dict)


async def _nothing(_: Database) -> None:
    return None


def consumer_specs() -> dict[str, ConsumerSpec]:
    publicity_settings = PublicitySettings()
    coordination_settings = CoordinationSettings()
    rules_settings = RulesSettings()
    registry = CatalogueRegistry(load_rules(rules_settings.catalogue_file))

    async def seed_rules(database: Database) -> None:
        await registry.seed_database(database, now=NOW)

    environment = Environment(
        deadlines=Deadlines(),
        calendar=load_calendar(),
        approvals=load_approval_catalogue(),
        clock=lambda: NOW,
    )
    return {
        "ledger": ConsumerSpec(
            "ledger",
            "ecips_ledger",
            LEDGER_OUTBOX,
            LEDGER_HANDLERS,
            frozenset(u.topic for u in ledger_upstreams(LedgerSettings())),
            _nothing,
            # How many versions an enterprise or a record went through depends on the
            # order things arrive in (a record filed by its old number before or after
            # its registration, a revocation before the record it revokes): the
            # counts only order the versions for consumers.
            {"enterprises": frozenset({"version"}), "records": frozenset({"version"})},
        ),
        "rules": ConsumerSpec(
            "rules",
            "ecips_rules",
            RULES_OUTBOX,
            rules_handlers(registry, Ticking(NOW)),
            frozenset(u.topic for u in rules_upstreams(rules_settings)),
            seed_rules,
            {
                "punishments": frozenset({"punishment_id"}),
                "active_measures": frozenset({"punishment_id"}),
            },
        ),
        "publicity": ConsumerSpec(
            "publicity",
            "ecips_publicity",
            PUBLICITY_OUTBOX,
            publicity_handlers(load_publication(publicity_settings.catalogue_dir), lambda: TODAY),
            frozenset(u.topic for u in publicity_upstreams(publicity_settings)),
            _nothing,
        ),
        "coordination": ConsumerSpec(
            "coordination",
            "ecips_coordination",
            COORDINATION_OUTBOX,
            coordination_handlers(environment),
            frozenset(u.topic for u in coordination_upstreams(coordination_settings)),
            _nothing,
            {"tasks": frozenset({"task_id"})},
        ),
    }


# --- events as they travel ---------------------------------------------------------------


@dataclass(frozen=True)
class Travelling:
    """An event with the topic and partition key it was published under."""

    event: CloudEvent
    topic: str
    key: str


async def outbox_events(database: Database, service: str, after: int = 0) -> list[Travelling]:
    """The service's outbox after a sequence number, as the relay publishes it."""
    outbox = database.tables.outbox
    async with database.read_only() as session:
        rows = (
            await session.execute(select(outbox).where(outbox.c.seq > after).order_by(outbox.c.seq))
        ).all()
    return [Travelling(row_to_event(service, row), row.topic, row.partition_key) for row in rows]


class Run:
    """One consumer on one fresh database."""

    def __init__(self, spec: ConsumerSpec, url: str, handlers: Mapping[str, Handler]) -> None:
        self.spec = spec
        self.database = Database(
            create_engine(url, application_name=f"redelivery-{spec.service}", pool_size=2),
            spec.tables,
        )
        # One attempt: a handler that fails is a finding, not something to wait out.
        self.processor = EventProcessor(
            service=spec.service, database=self.database, handlers=handlers, max_attempts=1
        )

    async def close(self) -> None:
        await self.database.dispose()


# --- the fault-injecting consumer ---------------------------------------------------------


class SimulatedCrash(BaseException):
    """The process dies inside a transaction: not an Exception, so nothing in the
    consumer handles it; the unit of work rolls back on its way out."""


class CrashSwitch:
    """Wraps a consumer's handlers: armed for one event id, the handler for it runs
    and then the process "dies", before the transaction commits."""

    def __init__(self) -> None:
        self.armed: str | None = None
        self.crashes = 0

    def wrap(self, handlers: Mapping[str, Handler]) -> dict[str, Handler]:
        def crash_if_armed(events: Sequence[CloudEvent]) -> None:
            if self.armed is not None and self.armed in {e.id for e in events}:
                crashed, self.armed = self.armed, None
                self.crashes += 1
                raise SimulatedCrash(crashed)

        def wrapped(handler: Handler) -> Handler:
            if isinstance(handler, BatchHandler):
                apply = handler.apply

                async def handle_run(uow: UnitOfWork, events: Sequence[CloudEvent]) -> None:
                    await apply(uow, events)
                    crash_if_armed(events)

                return BatchHandler(handle_run)

            async def handle(uow: UnitOfWork, event: CloudEvent) -> None:
                await handler(uow, event)
                crash_if_armed([event])

            return handle

        # One wrapper per handler, so one serving several types still gets their runs whole.
        wrappers = {id(handler): wrapped(handler) for handler in handlers.values()}
        return {event_type: wrappers[id(handler)] for event_type, handler in handlers.items()}


@dataclass
class DeliveryLog:
    deliveries: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    crashes: int = 0
    follower_repeats: int = 0
    late_first: int = 0


class FaultyConsumer:
    """Delivers a history to an EventProcessor the way the broker and the change-feed
    follower may, and no other way (see test_redelivery's docstring):

    * each stream (topic, partition key) is read in order from the last committed
      offset, in batches applied one by one (``process``) or in one transaction
      (``process_batch``, as the Kafka consumer does); offsets are committed after
      some batches only;
    * streams interleave at random: there is no order across topics or keys;
    * the process crashes inside a transaction now and then: the transaction rolls
      back and every stream is read again from its last committed offset, so events
      already applied are delivered again, after newer ones;
    * the change-feed follower delivers an event the broker already delivered;
    * with ``lose_first_deliveries``, the broker also loses events before their first
      delivery and the follower applies them later, after newer events of their stream.

    Every event is delivered at least once and at most three times.
    """

    def __init__(
        self,
        rng: random.Random,
        *,
        crash_rate: float = 0.2,
        repeat_rate: float = 0.3,
        lose_first_deliveries: bool = False,
    ) -> None:
        self._rng = rng
        self._crash_rate = crash_rate
        self._repeat_rate = repeat_rate
        self._lose = lose_first_deliveries
        self.switch = CrashSwitch()

    async def deliver(
        self, processor: EventProcessor, history: Sequence[Travelling]
    ) -> DeliveryLog:
        rng = self._rng
        log = DeliveryLog()
        streams: dict[tuple[str, str], list[CloudEvent]] = {}
        for item in history:
            streams.setdefault((item.topic, item.key), []).append(item.event)
        lost: list[CloudEvent] = []
        if self._lose:
            for events in streams.values():
                for event in list(events):
                    if len(events) > 1 and rng.random() < 0.2:
                        events.remove(event)
                        lost.append(event)
            log.late_first = len(lost)
        committed = dict.fromkeys(streams, 0)
        position = dict.fromkeys(streams, 0)
        applied: list[CloudEvent] = []

        async def apply(events: list[CloudEvent], batch: bool) -> None:
            for event in events:
                log.deliveries[event.id] += 1
            if batch and len(events) > 1:
                outcomes = await processor.process_batch(events)
            else:
                outcomes = [await processor.process(event) for event in events]
            log.outcomes.update(outcomes)

        def pending() -> list[tuple[str, str]]:
            return [key for key, events in streams.items() if committed[key] < len(events)]

        while pending() or lost:
            if lost and (not pending() or rng.random() < 0.15):
                # The follower applies what the broker lost, in feed (producer) order.
                event = lost.pop(0)
                await apply([event], batch=False)
                applied.append(event)
                continue
            key = rng.choice(pending())
            events = streams[key]
            if position[key] >= len(events):
                committed[key] = position[key]  # the last commit of this stream
                continue
            batch = events[position[key] : position[key] + rng.randint(1, 4)]
            # Replaying from the committed offsets must not take any event past 3.
            replayed = [e for k in streams for e in streams[k][committed[k] : position[k]]]
            can_crash = all(log.deliveries[e.id] <= 1 for e in [*replayed, *batch])
            if can_crash and rng.random() < self._crash_rate:
                self.switch.armed = rng.choice(batch).id
            try:
                await apply(batch, batch=rng.random() < 0.5)
            except SimulatedCrash:
                log.crashes += 1
                self.switch.armed = None
                position = dict(committed)  # restart: read again from the commits
                continue
            position[key] += len(batch)
            applied += batch
            if rng.random() < 0.5:
                committed[key] = position[key]
            repeatable = [e for e in applied if log.deliveries[e.id] < 3]
            if repeatable and rng.random() < self._repeat_rate:
                await apply([rng.choice(repeatable)], batch=False)
                log.follower_repeats += 1
        return log


# --- what a consumer holds -------------------------------------------------------------------


async def state_of(run: Run) -> dict[str, list[str]]:
    """Every table of the consumer's schema but its bookkeeping, each row as canonical
    JSON, sorted; without timestamps (they tell when, not what) and the ids and sequence
    numbers the consumer draws itself."""
    schema = run.spec.service
    generated = run.spec.generated
    async with run.database.read_only() as session:
        columns = (
            await session.execute(
                text(
                    "SELECT table_name, column_name, data_type, is_identity "
                    "FROM information_schema.columns WHERE table_schema = :schema "
                    "ORDER BY table_name, ordinal_position"
                ),
                {"schema": schema},
            )
        ).all()
        tables: dict[str, list[str]] = {}
        for table, column, data_type, is_identity in columns:
            if table in BOOKKEEPING_TABLES:
                continue
            kept = tables.setdefault(table, [])
            if data_type == "timestamp with time zone" or is_identity == "YES":
                continue
            if column in generated.get(table, ()):
                continue
            kept.append(column)
        state: dict[str, list[str]] = {}
        for table, kept in tables.items():
            selected = ", ".join(f'"{c}"' for c in kept)
            rows = (
                await session.execute(
                    text(
                        f'SELECT row_to_json(t)::text FROM (SELECT {selected} FROM "{schema}"."{table}") t'
                    )
                )
            ).scalars()
            state[table] = sorted(
                json.dumps(json.loads(r), sort_keys=True, ensure_ascii=False) for r in rows
            )
    return state


async def bookkeeping_of(run: Run) -> tuple[Counter[str], list[str]]:
    """(inbox rows per event id, dead-lettered event ids)."""
    tables = run.spec.tables
    async with run.database.read_only() as session:
        inbox = Counter((await session.execute(select(tables.inbox.c.event_id))).scalars())
        dead = list((await session.execute(select(tables.dead_letters.c.event_id))).scalars())
    return inbox, dead


# Event fields that say when the producer wrote them, that it drew at random, or that
# only order its versions of a thing (the newest is what is compared).
VOLATILE_EVENT_FIELDS = frozenset({"changed_at", "filed_at", "decided_at", "task_id", "version"})


def _stable(data: Mapping[str, Any]) -> str:
    return json.dumps(
        {k: v for k, v in data.items() if k not in VOLATILE_EVENT_FIELDS},
        sort_keys=True,
        ensure_ascii=False,
    )


async def effects_of(run: Run) -> dict[str, Any]:
    """What the consumer told others (its outbox): for versioned events the newest
    version of each thing (intermediate versions depend on arrival order), for the
    others every event, as a multiset."""
    newest: dict[tuple[str, str], tuple[int, str]] = {}
    others: Counter[str] = Counter()
    for item in await outbox_events(run.database, run.spec.service):
        event = item.event
        version = event.data.get("version")
        if isinstance(version, int):
            thing = str(event.data.get("record_id") or event.subject)
            held = newest.get((event.type, thing))
            if held is None or held[0] < version:
                newest[(event.type, thing)] = (version, _stable(event.data))
        else:
            others[f"{event.type} {_stable(event.data)}"] += 1
    return {
        "newest": {f"{t} {k}": v[1] for (t, k), v in sorted(newest.items())},
        "events": sorted(others.elements()),
    }


def describe_difference(expected: Mapping[str, Any], found: Mapping[str, Any]) -> str:
    """The first differences between two snapshots, readably."""
    lines = []
    for key in sorted(set(expected) | set(found)):
        want, got = expected.get(key), found.get(key)
        if want == got:
            continue
        if isinstance(want, list) and isinstance(got, list):
            missing = [r for r in want if r not in got]
            extra = [r for r in got if r not in want]
            lines.append(f"{key}: missing {missing[:3]}\n  unexpected {extra[:3]}")
        else:
            lines.append(f"{key}: expected {str(want)[:400]}\n  found {str(got)[:400]}")
    return "\n".join(lines[:8])


# --- the history, made by the real producers ---------------------------------------------


@dataclass
class History:
    records: list[Travelling]  # ingest -> records topic
    ledger: list[Travelling]  # ledger -> ledger topic, in commit order
    punishments: list[Travelling]  # rules -> punishments topic
    # Ledger and rules events in the order the live system would most likely deliver
    # them: each punishment event right after the ledger event that caused it.
    causal: list[Travelling]


def principal(department: str) -> Principal:
    return Principal(
        subject=f"department:{department}",
        department=department,
        scopes=frozenset({"records:write"}),
        token_id=str(uuid.uuid4()),
    )


def _money(value: str) -> dict[str, str]:
    return {"value": value, "currency": "CNY"}


class RecordsMaker:
    """Submits records through ingest's own service (validation, revisions, outbox) on
    a database of its own: the records topic exactly as ingest writes it."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.catalogue = load_ingest_catalogue(CATALOGUE_DIR)

    def example(self, category: str) -> tuple[str, dict[str, Any]]:
        example = self.catalogue.examples[category]
        return example.department, json.loads(json.dumps(example.record))

    async def submit(
        self, category: str, uscc: str | None, name: str, source_id: str, **fields: Any
    ) -> str:
        """Files the category's example under the enterprise; returns the record id."""
        department, record = self.example(category)
        data = record.pop("data") | fields.pop("data", {})
        record |= {"uscc": uscc, "enterprise_name": name, "source_id": source_id, "data": data}
        record |= fields
        if uscc is None:
            record.pop("uscc")
        async with self.database.unit_of_work() as uow:
            service = RecordService(uow, self.catalogue, lambda: NOW)
            receipt, _ = await service.submit(
                principal(department), RecordSubmission.model_validate(record)
            )
        return str(receipt.record_id)

    async def revoke(self, category: str, record_id: str, reason: str) -> None:
        department, _ = self.example(category)
        async with self.database.unit_of_work() as uow:
            await RecordService(uow, self.catalogue, lambda: NOW).revoke(
                principal(department), uuid.UUID(record_id), reason
            )


async def submit_lives(maker: RecordsMaker) -> None:
    """Three enterprises' lives, in the order their departments submit them. Every
    event type every consumer handles comes out of them: registrations and changes
    (double notification), a correction and a revocation, a record filed by the old
    registration number (another partition key) and one filed before its enterprise
    is registered, listings and removals (punishments triggered and lifted), a credit
    repair, a freeze and a deregistration."""

    def uscc() -> str:
        return make_uscc(org_body="".join(random.choices(USCC_ALPHABET, k=8)), division="500103")

    a, b, c = uscc(), uscc(), uscc()
    number_a = make_registration_number("500103" + "".join(random.choices("0123456789", k=8)))
    name_a, name_b, name_c = (
        "重庆甲味食品贸易有限公司",
        "重庆乙方药房有限公司",
        "重庆丙辰建材有限公司",
    )

    def registration(name: str, scope: str, established: str, **extra: Any) -> dict[str, Any]:
        return {
            "occurred_on": established,
            "data": {
                "name": name,
                "business_scope": scope,
                "established_on": established,
                "operating_period_from": established,
                "approved_on": established,
                **extra,
            },
        }

    def dated(on: str, **data: Any) -> dict[str, Any]:
        return {"occurred_on": on, "data": {"decided_on": on, **data}}

    await maker.submit(
        "registration",
        a,
        name_a,
        f"设立-{a}",
        **registration(
            name_a,
            "许可项目：食品销售。一般项目：建筑材料销售",
            "2024-03-01",
            registration_number=number_a,
        ),
    )
    penalty = f"渝市监罚〔2025〕{a[-6:]}号"
    await maker.submit(
        "administrative_penalty",
        a,
        name_a,
        penalty,
        **dated("2025-02-10", publicity_until="2028-02-09"),
    )
    await maker.submit(
        "administrative_penalty",
        a,
        name_a,
        penalty,
        **dated("2025-02-10", publicity_until="2028-02-09", fine=_money("80000")),
    )
    doomed = await maker.submit(
        "administrative_penalty",
        a,
        name_a,
        f"渝市监罚〔2025〕{a[-6:]}-2号",
        **dated("2025-03-01", publicity_until="2028-02-28"),
    )
    await maker.revoke("administrative_penalty", doomed, "行政复议决定撤销")
    await maker.submit(
        "administrative_inspection",
        None,
        name_a,
        f"渝市监查〔2025〕{a[-6:]}号",
        registration_number=number_a,
        occurred_on="2025-03-15",
    )
    await maker.submit("abnormal_operation_listing", a, name_a, f"异列-{a}", **dated("2025-04-01"))
    await maker.submit(
        "abnormal_operation_removal",
        a,
        name_a,
        f"异移-{a}",
        **dated("2025-06-01", listed_on="2025-04-01", listing_decision_number=f"异列-{a}"),
    )
    await maker.submit(
        "serious_illegal_listing",
        a,
        name_a,
        f"严列-{a}",
        **dated("2025-09-01", removable_from="2026-09-01"),
    )
    await maker.submit(
        "registration_change",
        a,
        name_a,
        f"变更-{a}",
        occurred_on="2025-10-08",
        data={
            "changed_on": "2025-10-08",
            "changes": [
                {
                    "item": "business_scope",
                    "before": "许可项目：食品销售。一般项目：建筑材料销售",
                    "after": "许可项目：食品销售；药品零售。一般项目：建筑材料销售",
                },
                {
                    "item": "address",
                    "before": "重庆市渝中区上清寺路9号",
                    "after": "重庆市渝中区中山三路1号",
                },
            ],
        },
    )
    await maker.submit(
        "serious_illegal_removal",
        a,
        name_a,
        f"严移-{a}",
        **dated("2026-01-10", listed_on="2025-09-01", listing_decision_number=f"严列-{a}"),
    )
    await maker.submit(
        "credit_repair",
        a,
        name_a,
        f"渝发改信修〔2026〕{a[-6:]}号",
        **dated(
            "2026-03-02",
            repaired_category="administrative_penalty",
            repaired_source_id=penalty,
            repaired_department="CQ-SAMR",
            repaired_on="2026-03-02",
        ),
    )
    await maker.submit(
        "judicial_assistance",
        a,
        name_a,
        f"（2026）渝0103执{a[-4:]}号",
        occurred_on="2026-04-20",
        data={"from_date": "2026-04-20", "to_date": "2029-04-19"},
    )
    # C: a penalty the department files before the enterprise's registration arrives.
    await maker.submit(
        "administrative_penalty",
        c,
        name_c,
        f"渝市监罚〔2025〕{c[-6:]}号",
        **dated("2025-05-05", publicity_until="2028-05-04"),
    )
    await maker.submit(
        "registration", c, name_c, f"设立-{c}", **registration(name_c, "建筑材料销售", "2023-01-05")
    )
    # B: registered with a licensed scope, then deregistered.
    await maker.submit(
        "registration",
        b,
        name_b,
        f"设立-{b}",
        **registration(name_b, "许可项目：药品零售；第三类医疗器械经营", "2024-08-08"),
    )
    await maker.submit(
        "deregistration",
        b,
        name_b,
        f"注销-{b}",
        occurred_on="2026-02-01",
        data={"deregistered_on": "2026-02-01", "decided_on": "2026-02-01"},
    )
