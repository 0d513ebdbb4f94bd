"""Helpers for the ledger's tests: record events as ingest would produce
them, a producer onto the records topic, and bounded polling."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import random
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import httpx
from aiokafka import AIOKafkaProducer

from ecips_common.contracts import RECORDS_TOPIC, RecordAccepted, RecordRevoked
from ecips_common.events import CloudEvent
from ecips_common.identifiers import USCC_ALPHABET, make_registration_number, make_uscc

SAMR = "CQ-SAMR"
_sequence = itertools.count(1_000_000)
# Not the global `random`: hypothesis reseeds that one for every example.
_ids = random.SystemRandom()
T = TypeVar("T")


def random_uscc(division: str = "500103") -> str:
    return make_uscc(org_body="".join(_ids.choices(USCC_ALPHABET, k=8)), division=division)


def random_registration_number() -> str:
    return make_registration_number("500103" + "".join(_ids.choices("0123456789", k=8)))


def registration_data(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "legal_representative": "张三",
        "enterprise_type": "有限责任公司（自然人投资或控股）",
        "registered_capital": {"value": "5000000", "currency": "CNY"},
        "established_on": "2020-05-01",
        "address": "重庆市渝中区解放碑民族路188号",
        "business_scope": "一般项目：软件开发",
        "registration_authority": "重庆市渝中区市场监督管理局",
        **extra,
    }


def penalty_data(number: str) -> dict[str, Any]:
    return {
        "decision_number": number,
        "authority": "重庆市渝中区市场监督管理局",
        "violation_type": "食品安全",
        "facts": "经营超过保质期的食品原料",
        "penalty_kinds": ["罚款"],
        "content": "罚款",
        "fine": {"value": "20000", "currency": "CNY"},
        "decided_on": "2025-06-10",
    }


def listing_data(number: str, reason: str = "未按规定报送年度报告") -> dict[str, Any]:
    return {
        "decision_number": number,
        "authority": "重庆市渝中区市场监督管理局",
        "decided_on": "2025-01-10",
        "reason": reason,
    }


_BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)


def accepted(
    category: str,
    data: dict[str, Any],
    *,
    uscc: str | None,
    registration_number: str | None = None,
    record_id: uuid.UUID | None = None,
    revision: int = 1,
    occurred_on: date = date(2025, 6, 10),
    accepted_minute: int = 0,
    name: str = "重庆测试科技有限公司",
    disclosure: str = "public",
    source_id: str | None = None,
    department: str = SAMR,
) -> CloudEvent:
    payload = RecordAccepted(
        record_id=record_id or uuid.uuid4(),
        revision=revision,
        category=category,
        department=department,
        source_id=source_id or f"SRC-{uuid.uuid4().hex[:10]}",
        uscc=uscc,
        registration_number=registration_number,
        enterprise_name=name,
        occurred_on=occurred_on,
        data=data,
        disclosure=disclosure,  # type: ignore[arg-type]
        publicity_period_days=None,
        catalogue_version="test",
        accepted_at=_BASE_TIME + timedelta(minutes=accepted_minute),
    )
    return _envelope(
        payload.event_type, uscc or registration_number, payload.model_dump(mode="json")
    )


def revoked(
    first: CloudEvent, reason: str = "决定书依法撤销", *, revoked_minute: int = 0
) -> CloudEvent:
    source = RecordAccepted.from_event(first)
    payload = RecordRevoked(
        record_id=source.record_id,
        revision=source.revision,
        category=source.category,
        department=source.department,
        source_id=source.source_id,
        uscc=source.uscc,
        registration_number=source.registration_number,
        reason=reason,
        revoked_at=_BASE_TIME + timedelta(minutes=revoked_minute),
    )
    return _envelope(payload.event_type, first.subject, payload.model_dump(mode="json"))


def _envelope(event_type: str, subject: str | None, data: dict[str, Any]) -> CloudEvent:
    return CloudEvent(
        id=str(uuid.uuid4()),
        source="/ecips/ingest",
        type=event_type,
        subject=subject,
        time=datetime.now(UTC),
        sequence=next(_sequence),
        data=data,
    )


async def produce(producer: AIOKafkaProducer, *events: CloudEvent) -> None:
    """Send in order and wait for each ack (same key, so same partition, same order)."""
    for event in events:
        await producer.send_and_wait(
            RECORDS_TOPIC,
            value=json.dumps(event.model_dump(mode="json"), ensure_ascii=False).encode(),
            key=(event.subject or "").encode(),
        )


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, within: float = 20.0, what: str = "condition"
) -> T:
    """Poll until ``probe`` returns something truthy; fail after ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await probe()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


# --- the change feed ------------------------------------------------------


async def feed_events(
    client: httpx.AsyncClient, headers: dict[str, str], *, after: int = 0, upto: int | None = None
) -> list[dict[str, Any]]:
    """Every event of the (non-streaming) change feed after a cursor."""
    events: list[dict[str, Any]] = []
    cursor = after
    while True:
        response = await client.get(
            "/v1/changes", params={"after": cursor, "limit": 1000}, headers=headers
        )
        assert response.status_code == 200, response.text
        page = response.json()
        items = [e for e in page["items"] if upto is None or e["sequence"] <= upto]
        events.extend(items)
        if len(items) < len(page["items"]) or not page["items"]:
            return events
        cursor = page["next_cursor"]


async def feed_head(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    events = await feed_events(client, headers)
    return int(events[-1]["sequence"]) if events else 0


def parse_snapshot(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in gzip.decompress(body).decode().splitlines()]
