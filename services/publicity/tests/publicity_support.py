"""Helpers for publicity's tests: ledger and rules events as the upstream
services produce them, the service running against the real Postgres and
broker with a clock the test controls, and bounded polling."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from ecips.testkit import new_signing_keys, service_settings_kwargs
from ecips_common.app import ServiceState
from ecips_common.contracts import EnterpriseChanged, EnterpriseFlags, RecordFiled
from ecips_common.events import CloudEvent, EventPayload
from ecips_common.identifiers import USCC_ALPHABET, make_uscc
from ecips_publicity.main import create_app
from ecips_publicity.settings import PublicitySettings

T = TypeVar("T")
_sequence = itertools.count(1)
# Not the global `random`: other tests may seed that one.
_ids = random.SystemRandom()
# Common name characters; four of them make a word no other test produces.
NAME_CHARS = "鑫瑞祥泰华宏源达丰盛恒昌隆兴德福嘉荣锦鸿翔润博"


def new_uscc(division: str = "500103") -> str:
    return make_uscc(org_body="".join(_ids.choices(USCC_ALPHABET, k=8)), division=division)


def unique_word(length: int = 4) -> str:
    return "".join(_ids.choices(NAME_CHARS, k=length))


class Clock:
    """The service's idea of today, moved by the test."""

    def __init__(self, today: date) -> None:
        self.today = today

    def __call__(self) -> date:
        return self.today

    def advance(self, days: int) -> None:
        self.today += timedelta(days=days)


def cloud_event(payload: EventPayload, subject: str, source: str = "/ecips/ledger") -> CloudEvent:
    return CloudEvent(
        id=str(uuid.uuid4()),
        source=source,
        type=payload.event_type,
        subject=subject,
        time=datetime.now(UTC),
        sequence=next(_sequence),
        data=payload.model_dump(mode="json"),
    )


def enterprise_changed(uscc: str, version: int, name: str, **fields: Any) -> EnterpriseChanged:
    fields.setdefault("legal_representative", "张伟")
    fields.setdefault("established_on", date(2018, 3, 1))
    fields.setdefault("status", "存续")
    fields.setdefault("registered", True)
    fields.setdefault("enterprise_type", "有限责任公司（自然人投资或控股）")
    fields.setdefault("registered_capital", "500万元人民币")
    fields.setdefault("address", "重庆市渝中区解放碑民族路188号")
    fields.setdefault("business_scope", "一般项目：建筑材料销售；五金产品零售")
    fields.setdefault("registration_authority", "重庆市渝中区市场监督管理局")
    return EnterpriseChanged(
        uscc=uscc,
        version=version,
        name=name,
        division_code=uscc[2:8],
        flags=fields.pop("flags", EnterpriseFlags()),
        changed_at=datetime.now(UTC),
        **fields,
    )


def record_filed(
    uscc: str,
    category: str,
    *,
    record_id: uuid.UUID | None = None,
    version: int = 1,
    disclosure: str = "public",
    status: str = "active",
    occurred_on: date = date(2020, 5, 1),
    period_days: int | None = None,
    data: dict[str, Any] | None = None,
    source_id: str | None = None,
    department: str = "CQ-SAMR",
) -> RecordFiled:
    return RecordFiled(
        uscc=uscc,
        record_id=record_id or uuid.uuid4(),
        version=version,
        revision=version,
        status=status,  # type: ignore[arg-type]
        category=category,
        department=department,
        source_id=source_id or f"渝市监罚〔2020〕{_ids.randint(1, 999999)}号",
        occurred_on=occurred_on,
        data=data if data is not None else {"content": "公示内容"},
        disclosure=disclosure,  # type: ignore[arg-type]
        publicity_period_days=period_days,
        filed_at=datetime.now(UTC),
    )


def publicity_settings(database_url: str, kafka_bootstrap: str, **extra: Any) -> PublicitySettings:
    suffix = uuid.uuid4().hex[:8]
    extra.setdefault("ledger_topic", f"ledger-{suffix}")
    extra.setdefault("punishments_topic", f"punishments-{suffix}")
    # No upstream service runs here: the change-feed followers and the
    # directory find nothing and retry quietly.
    extra.setdefault("ledger_url", "http://127.0.0.1:9")
    extra.setdefault("rules_url", "http://127.0.0.1:9")
    extra.setdefault("ingest_url", "http://127.0.0.1:9")
    return PublicitySettings(
        **service_settings_kwargs(
            database_url=database_url, kafka_bootstrap=kafka_bootstrap, keys=new_signing_keys()
        ),
        **extra,
    )


@dataclass
class Running:
    app: FastAPI
    asgi: Any  # the app as its lifespan manager serves it
    settings: PublicitySettings
    clock: Clock

    @property
    def state(self) -> ServiceState:
        state: ServiceState = self.app.state.service
        return state

    def client(self, ip: str = "192.0.2.1") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.asgi, client=(ip, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://testserver")

    async def apply(self, *payloads: EventPayload, source: str = "/ecips/ledger") -> None:
        """Feed events through the service's own inbox in one transaction, as
        the consumer applies a batch from one partition."""
        processor = self.state.processor
        assert processor is not None
        events = [cloud_event(p, str(getattr(p, "uscc", "unknown")), source) for p in payloads]
        outcomes = await processor.process_batch(events)
        assert set(outcomes) == {"applied"}, outcomes


@asynccontextmanager
async def running_publicity(settings: PublicitySettings, clock: Clock) -> AsyncIterator[Running]:
    app = create_app(settings, today=clock)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        yield Running(app, manager.app, settings, clock)


async def eventually(probe: Callable[[], Awaitable[T | None]], within: float = 30.0) -> T:
    """Poll until ``probe`` returns something, or fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = await probe()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {within} s")
        await asyncio.sleep(0.1)
