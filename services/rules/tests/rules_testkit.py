"""Helpers shared by the rules service's tests."""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest

from ecips.runtime.postgres import (
    drop_database,
    ensure_database,
    to_asyncpg_dsn,
    to_sqlalchemy_url,
    with_database,
)
from ecips.testkit import SigningKeys, new_signing_keys, running_app, service_settings_kwargs
from ecips_common.db import Database, create_engine
from ecips_common.events import EventPayload
from ecips_common.identifiers import USCC_ALPHABET, make_uscc
from ecips_common.migrations import upgrade_to_head_async
from ecips_rules.catalogue import load_catalogue
from ecips_rules.main import create_app
from ecips_rules.models import OUTBOX
from ecips_rules.registry import CatalogueRegistry
from ecips_rules.service import EvaluationService
from ecips_rules.settings import CATALOGUE_FILE, RulesSettings

T = TypeVar("T")
TIMEOUT = 20.0


class FakeClock:
    """The service's clock in tests: 10:00 in Chongqing on the given day."""

    def __init__(self, day: date) -> None:
        self.now = datetime(day.year, day.month, day.day, 2, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    @property
    def today(self) -> date:
        return self.now.date()

    def set(self, day: date) -> None:
        self.now = datetime(day.year, day.month, day.day, 2, 0, tzinfo=UTC)

    def advance(self, days: int) -> None:
        self.now += timedelta(days=days)


def new_uscc(division: str = "500103") -> str:
    return make_uscc(org_body="".join(random.choices(USCC_ALPHABET, k=8)), division=division)


def snapshot(uscc: str, version: int, **fields: Any) -> dict[str, Any]:
    """An EnterpriseChanged payload as the ledger sends it (JSON)."""
    return {
        "uscc": uscc,
        "version": version,
        "registered": True,
        "name": f"重庆测试{uscc[-6:]}有限公司",
        "division_code": uscc[2:8],
        "status": "存续",
        "status_code": "active",
        "established_on": "2015-03-01",
        "flags": {},
        "record_counts": {"registration": 1},
        "changed_at": datetime.now(UTC).isoformat(),
        **fields,
    }


async def migrated_database(url: str) -> Database:
    await upgrade_to_head_async("ecips_rules", url, "rules")
    return Database(create_engine(url, application_name="rules-tests"), OUTBOX)


async def apply(
    database: Database, registry: CatalogueRegistry, data: dict[str, Any], now: datetime
) -> list[EventPayload]:
    """Evaluate one snapshot as the consumer does; returns the events emitted."""
    async with database.unit_of_work() as uow:
        await EvaluationService(uow, registry, now=now).apply(data)
        return [p.payload for p in uow.pending]


async def eventually(probe: Callable[[], Awaitable[T]], accept: Callable[[T], bool]) -> T:
    """Poll until ``accept(value)`` or fail after TIMEOUT seconds with the last value."""
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while True:
        value = await probe()
        if accept(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"condition not reached within {TIMEOUT}s; last value: {value!r}")
        await asyncio.sleep(0.1)


@dataclass
class RunningRules:
    client: httpx.AsyncClient
    keys: SigningKeys
    clock: FakeClock
    database: Database
    registry: CatalogueRegistry

    async def apply(self, data: dict[str, Any]) -> list[EventPayload]:
        return await apply(self.database, self.registry, data, self.clock())

    def admin(self) -> dict[str, str]:
        return self.keys.headers("CQ-NDRC", "rules:admin")

    async def events(self, after: int = 0) -> list[dict[str, Any]]:
        headers = self.keys.headers("CQ-NDRC", "changes:read")
        found: list[dict[str, Any]] = []
        while True:
            response = await self.client.get(
                "/v1/changes", params={"after": after, "limit": 1000}, headers=headers
            )
            assert response.status_code == 200, response.text
            page = response.json()
            if not page["items"]:
                return found
            found += page["items"]
            after = page["next_cursor"]


@asynccontextmanager
async def rules_app(
    database_url: str, clock: FakeClock, **settings: Any
) -> AsyncIterator[RunningRules]:
    """The rules app in-process with a movable clock. No ledger and no broker:
    snapshots are applied directly, events are read from the change feed (a
    consumer joining the service's group here would only slow down the
    module that tests the Kafka path)."""
    keys = new_signing_keys()
    values = service_settings_kwargs(
        database_url=database_url,
        kafka_bootstrap="127.0.0.1:9",
        keys=keys,
        ledger_url="http://127.0.0.1:9",
        rate_limit_per_second=10_000.0,
        rate_limit_burst=10_000,
        cache_poll_interval_seconds=0.2,
        scheduler_interval_seconds=0.2,
    )
    values.update(settings)
    app_settings = RulesSettings(**values)
    async with running_app(lambda: create_app(app_settings, clock=clock)) as client:
        database = Database(create_engine(database_url, application_name="rules-tests"), OUTBOX)
        try:
            yield RunningRules(
                client, keys, clock, database, CatalogueRegistry(load_catalogue(CATALOGUE_FILE))
            )
        finally:
            await database.dispose()


@contextmanager
def fresh_database(database_url: str) -> Iterator[str]:
    """An empty database of its own on the test server, dropped afterwards."""
    name = f"ecips_rules_{secrets.token_hex(5)}"
    ensure_database(database_url, name)
    try:
        yield to_sqlalchemy_url(with_database(to_asyncpg_dsn(database_url), name))
    finally:
        drop_database(database_url, name)
