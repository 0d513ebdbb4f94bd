"""Helpers the coordination tests share: events as the ledger and the rules
service publish them, a movable clock, polling, and a real HTTP webhook receiver."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from aiokafka import AIOKafkaProducer
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from ecips.runtime.ports import free_port
from ecips.testkit import SigningKeys, service_settings_kwargs
from ecips_common.app import service_state_from_app
from ecips_common.contracts import (
    EnterpriseChanged,
    EnterpriseFlags,
    PunishmentTriggered,
    RecordFiled,
)
from ecips_common.events import CloudEvent, source_uri
from ecips_common.identifiers import USCC_ALPHABET, make_uscc
from ecips_coordination.webhooks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify_signature,
)
from ecips_coordination.working_days import CHINA

T = TypeVar("T")

# Nothing listens here: the change-feed followers must not find some other
# process on a default port while the Kafka path is under test.
NOWHERE = "http://127.0.0.1:9"


def new_uscc() -> str:
    body = "".join(secrets.choice(USCC_ALPHABET) for _ in range(8))
    return make_uscc(org_body=body, division="500103")


def settings_kwargs(
    database_url: str, kafka_bootstrap: str, keys: SigningKeys, **extra: Any
) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "rules_url": NOWHERE,
        "ledger_url": NOWHERE,
        "ingest_url": NOWHERE,
        # Polling from one in-process client must not trip the public rate limit.
        "rate_limit_per_second": 1000.0,
        "rate_limit_burst": 10_000,
        "webhook_allow_private_targets": True,
        "webhook_poll_interval_seconds": 0.1,
        "webhook_retry_base_seconds": 0.2,
        "webhook_retry_max_seconds": 1.0,
    }
    return service_settings_kwargs(
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
        keys=keys,
        **(defaults | extra),
    )


async def eventually(
    probe: Callable[[], Awaitable[T]], accept: Callable[[T], bool], *, within: float = 30.0
) -> T:
    """Poll until ``accept(probe())``; fail with the last value after ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await probe()
        if accept(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"condition not met within {within}s; last value: {value!r}")
        await asyncio.sleep(0.1)


class MovableClock:
    """The service's clock in tests that need a given day (deadlines, reports)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def set_china(self, day: date, hour: int = 10) -> None:
        self.now = datetime(day.year, day.month, day.day, hour, tzinfo=CHINA).astimezone(UTC)


def cloud_event(source: str, event_type: str, data: dict[str, Any], sequence: int = 1) -> bytes:
    event = CloudEvent(
        id=str(uuid.uuid4()),
        source=source_uri(source),
        type=event_type,
        subject=data["uscc"],
        time=datetime.now(UTC),
        sequence=sequence,
        data=data,
    )
    return json.dumps(event.model_dump(mode="json"), ensure_ascii=False).encode()


def enterprise_changed(
    uscc: str,
    *,
    version: int,
    scope: str | None,
    name: str = "重庆渝信餐饮管理有限公司",
    status: str = "存续",
    registered: bool = True,
    established_on: date = date(2026, 3, 2),
) -> dict[str, Any]:
    return EnterpriseChanged(
        uscc=uscc,
        version=version,
        registered=registered,
        name=name,
        legal_representative="李四",
        enterprise_type="有限责任公司（自然人投资或控股）",
        registered_capital="200万元人民币",
        established_on=established_on,
        address="重庆市渝中区解放碑民族路88号",
        business_scope=scope,
        registration_authority="重庆市渝中区市场监督管理局",
        division_code="500103",
        status=status,
        flags=EnterpriseFlags(),
        changed_at=datetime.now(UTC),
    ).model_dump(mode="json")


def record_filed(
    uscc: str, *, category: str, source_id: str, occurred_on: date, data: dict[str, Any]
) -> dict[str, Any]:
    return RecordFiled(
        uscc=uscc,
        record_id=uuid.uuid4(),
        version=1,
        revision=1,
        status="active",
        category=category,
        department="CQ-SAMR",
        source_id=source_id,
        occurred_on=occurred_on,
        data=data,
        disclosure="public",
        publicity_period_days=None,
        filed_at=datetime.now(UTC),
    ).model_dump(mode="json")


def punishment_triggered(
    uscc: str, measures: list[dict[str, Any]], *, since: date = date(2026, 9, 1)
) -> dict[str, Any]:
    return PunishmentTriggered(
        uscc=uscc,
        enterprise_name="重庆测试失信企业有限公司",
        rule_id="serious_illegal_list",
        rule_version=1,
        rule_title="严重违法失信企业联合惩戒",
        kind="punishment",
        measures=measures,
        legal_basis="国发〔2016〕33号",
        since=since,
        until=None,
        catalogue_version="test",
        decided_at=datetime.now(UTC),
    ).model_dump(mode="json")


async def publish(
    producer: AIOKafkaProducer, topic: str, source: str, event_type: str, data: dict[str, Any]
) -> None:
    await producer.send_and_wait(
        topic, cloud_event(source, event_type, data), key=data["uscc"].encode()
    )


@asynccontextmanager
async def started(app: FastAPI) -> AsyncIterator[FastAPI]:
    """The app with its lifespan running (migrations, consumers, background jobs),
    entered once its Kafka consumer owns partitions and left the same way.

    Stopping a consumer while it is still joining its group can leave a member
    behind that the embedded broker keeps assigning partitions to; the next app
    in the same group then waits for events that never come. So the app is
    only used, and stopped, with its consumer settled in the group.
    """
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        await consuming(app)
        yield manager.app  # type: ignore[misc]
        await consuming(app)


async def consuming(app: FastAPI, within: float = 60.0) -> None:
    state = service_state_from_app(app)

    async def assigned() -> bool:
        consumer = state.consumer
        inner = getattr(consumer, "_consumer", None) if consumer is not None else None
        return bool(consumer is not None and consumer.connected and inner and inner.assignment())

    await eventually(assigned, bool, within=within)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """pytest keeps its own signal handlers."""
        yield


@asynccontextmanager
async def serving(app: FastAPI, port: int) -> AsyncIterator[str]:
    """The app on a real port (for service-to-service calls); yields its URL."""
    server = _Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while not server.started:
            if task.done() or asyncio.get_running_loop().time() > deadline:
                raise RuntimeError("the server did not start")
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


def client_for(app: FastAPI, address: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def tasks_of(
    client: httpx.AsyncClient, headers: dict[str, str], **params: str
) -> list[dict[str, Any]]:
    response = await client.get("/v1/tasks", params=params | {"limit": "500"}, headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


# --- a real webhook receiver -----------------------------------------------------


@dataclass
class Received:
    delivery_id: str
    answered: int
    verified: bool
    body: dict[str, Any]


@dataclass
class WebhookReceiver:
    """An HTTP server on a free port: answers 500 to its first ``fail_first``
    requests, then 204; checks every signature with the subscription's secret."""

    fail_first: int = 0
    always_fail: bool = False
    secret: str = ""
    port: int = field(default_factory=free_port)
    requests: list[Received] = field(default_factory=list)
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/ecips"

    def delivered(self) -> list[Received]:
        return [r for r in self.requests if 200 <= r.answered < 300]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (line.partition(":") for line in lines[1:] if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                status = self._answer()
                self.requests.append(
                    Received(
                        delivery_id=headers.get(DELIVERY_HEADER.lower(), ""),
                        answered=status,
                        verified=verify_signature(
                            self.secret,
                            timestamp=headers.get(TIMESTAMP_HEADER.lower(), ""),
                            signature=headers.get(SIGNATURE_HEADER.lower(), ""),
                            body=body,
                        ),
                        body=json.loads(body),
                    )
                )
                reason = "No Content" if status == 204 else "Internal Server Error"
                writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\n\r\n".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    def _answer(self) -> int:
        if self.always_fail or len(self.requests) < self.fail_first:
            return 500
        return 204
