"""End to end through the broker: ledger snapshots in, punishments and credit checks out."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, TypeVar

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from ecips.testkit import SigningKeys, new_signing_keys, running_app, service_settings_kwargs
from ecips_common.contracts import (
    LEDGER_TOPIC,
    TOPIC_PARTITIONS,
    EnterpriseChanged,
    PunishmentLifted,
    PunishmentTriggered,
)
from ecips_common.events import CloudEvent, source_uri
from ecips_common.identifiers import USCC_ALPHABET, make_uscc
from ecips_common.outbox import ensure_topics
from ecips_rules.main import create_app
from ecips_rules.models import OUTBOX, Enterprise
from ecips_rules.settings import RulesSettings

T = TypeVar("T")
TIMEOUT = 20.0


@dataclass
class Harness:
    client: httpx.AsyncClient
    keys: SigningKeys
    producer: AIOKafkaProducer
    database_url: str
    sequence: int = 0

    async def send(self, uscc: str, version: int, **fields: Any) -> CloudEvent:
        """Publish an EnterpriseChanged snapshot the way the ledger does."""
        self.sequence += 1
        payload = EnterpriseChanged.model_validate(
            {
                "uscc": uscc,
                "version": version,
                "registered": True,
                "name": f"重庆测试{uscc[-6:]}有限公司",
                "division_code": "500103",
                "status": "active",
                "established_on": date(2015, 3, 1),
                "flags": {},
                "changed_at": datetime.now(UTC),
                **fields,
            }
        )
        event = CloudEvent(
            id=str(uuid.uuid4()),
            source=source_uri("ledger"),
            type=EnterpriseChanged.event_type,
            subject=uscc,
            time=datetime.now(UTC),
            sequence=self.sequence,
            data=payload.model_dump(mode="json"),
        )
        await self.producer.send_and_wait(
            LEDGER_TOPIC,
            key=uscc.encode(),
            value=json.dumps(event.model_dump(mode="json")).encode(),
        )
        return event

    async def check(self, uscc: str, scenario: str) -> dict[str, Any]:
        response = await self.client.get(f"/v1/checks/{uscc}", params={"scenario": scenario})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def events_for(self, uscc: str) -> list[CloudEvent]:
        headers = self.keys.headers("CQ-NDRC", "changes:read")
        found: list[CloudEvent] = []
        after = 0
        while True:
            response = await self.client.get(
                "/v1/changes", params={"after": after, "limit": 1000}, headers=headers
            )
            assert response.status_code == 200, response.text
            page = response.json()
            found += [CloudEvent.model_validate(e) for e in page["items"] if e["subject"] == uscc]
            if not page["items"]:
                return found
            after = page["next_cursor"]

    async def inbox_has(self, event_id: str) -> bool:
        engine = create_async_engine(self.database_url)
        try:
            async with engine.connect() as conn:
                row = await conn.execute(
                    select(OUTBOX.inbox.c.outcome).where(OUTBOX.inbox.c.event_id == event_id)
                )
                return row.first() is not None
        finally:
            await engine.dispose()

    async def stored_version(self, uscc: str) -> int | None:
        engine = create_async_engine(self.database_url)
        try:
            async with engine.connect() as conn:
                row = await conn.execute(select(Enterprise.version).where(Enterprise.uscc == uscc))
                return row.scalar_one_or_none()
        finally:
            await engine.dispose()


async def eventually(probe: Callable[[], Awaitable[T]], accept: Callable[[T], bool]) -> T:
    """Poll until ``accept(value)`` or fail after TIMEOUT seconds with the last value."""
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while True:
        value = await probe()
        if accept(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"condition not reached within {TIMEOUT}s; last value: {value!r}")
        await asyncio.sleep(0.2)


def new_uscc() -> str:
    body = "".join(random.choices(USCC_ALPHABET, k=8))
    return make_uscc(org_body=body, division="500103")


@pytest.fixture(scope="module")
async def harness(rules_database_url: str, kafka_bootstrap: str) -> AsyncIterator[Harness]:
    database_url = rules_database_url
    keys = new_signing_keys()
    await ensure_topics(kafka_bootstrap, {LEDGER_TOPIC: TOPIC_PARTITIONS[LEDGER_TOPIC]})
    settings = RulesSettings(
        **service_settings_kwargs(
            database_url=database_url, kafka_bootstrap=kafka_bootstrap, keys=keys
        ),
        # No ledger runs here: the change-feed follower finds nothing to repair.
        ledger_url="http://127.0.0.1:9",
        rate_limit_per_second=10_000.0,
        rate_limit_burst=10_000,
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        async with running_app(lambda: create_app(settings)) as client:
            yield Harness(client, keys, producer, database_url)
    finally:
        await producer.stop()


async def test_serious_illegal_listing_blocks_procurement_and_removal_lifts_it(
    harness: Harness,
) -> None:
    uscc = new_uscc()
    await harness.send(
        uscc,
        1,
        flags={
            "serious_illegal": True,
            "serious_illegal_since": "2025-04-01",
            "serious_illegal_reason": "提供虚假材料取得登记",
        },
    )
    blocked = await eventually(
        lambda: harness.check(uscc, "government_procurement"), lambda b: not b["allowed"]
    )
    assert blocked["uscc"] == uscc
    assert blocked["scenario"] == "government_procurement"
    assert blocked["known"] is True
    (restriction,) = blocked["restrictions"]
    assert restriction["rule_id"] == "serious_illegal_dishonest"
    assert restriction["measure"] == "restrict_government_procurement"
    assert restriction["department"] == "CQ-FIN"
    assert "政府采购法" in restriction["legal_basis"]
    assert restriction["since"] == "2025-04-01"
    assert restriction["until"] is None
    assert blocked["as_of"]
    assert blocked["catalogue_version"] == "1"

    bidding = await harness.check(uscc, "public_bidding")
    assert {r["department"] for r in bidding["restrictions"]} == {"CQ-PRT", "CQ-HURD"}
    # The abnormal-operation rule does not apply: it is a different list.
    assert {
        r["rule_id"] for r in (await harness.check(uscc, "fiscal_subsidy"))["restrictions"]
    } == {"serious_illegal_dishonest"}

    events = await harness.events_for(uscc)
    (triggered,) = events
    assert triggered.type == PunishmentTriggered.event_type
    payload = PunishmentTriggered.from_event(triggered)
    assert payload.rule_id == "serious_illegal_dishonest"
    assert payload.rule_version == 2
    assert payload.since == date(2025, 4, 1)
    assert payload.until is None
    assert ("restrict_government_procurement", "CQ-FIN") in {
        (m.measure, m.department) for m in payload.measures
    }

    # Removal from the list: the ledger's next snapshot has no flag.
    await harness.send(uscc, 2, flags={})
    allowed = await eventually(
        lambda: harness.check(uscc, "government_procurement"), lambda b: b["allowed"]
    )
    assert allowed["restrictions"] == []
    events = await eventually(lambda: harness.events_for(uscc), lambda e: len(e) == 2)
    assert events[1].type == PunishmentLifted.event_type
    lifted = PunishmentLifted.from_event(events[1])
    assert lifted.rule_id == "serious_illegal_dishonest"
    assert lifted.reason == "condition_no_longer_holds"

    # The flagged snapshot (version 1) delivered again late, as a new event:
    # it is older than what is held, so nothing changes.
    late = await harness.send(uscc, 1, flags={"serious_illegal": True})
    await eventually(lambda: harness.inbox_has(late.id), bool)
    assert (await harness.check(uscc, "government_procurement"))["allowed"] is True
    assert len(await harness.events_for(uscc)) == 2
    assert await harness.stored_version(uscc) == 2


async def test_abnormal_operation_restricts_only_its_scenarios(harness: Harness) -> None:
    uscc = new_uscc()
    await harness.send(
        uscc,
        3,
        flags={"abnormal_operation": True, "abnormal_operation_reason": "未按规定报送年度报告"},
    )
    honours = await eventually(
        lambda: harness.check(uscc, "honorary_title"), lambda b: not b["allowed"]
    )
    assert [r["rule_id"] for r in honours["restrictions"]] == ["abnormal_operation_list"]
    assert (
        honours["restrictions"][0]["since"]
        == datetime.now(UTC).astimezone(timezone(timedelta(hours=8))).date().isoformat()
    )  # no listing date sent: from the day it was seen
    assert honours["restrictions"][0]["department"] == "CQ-NDRC"
    procurement = await harness.check(uscc, "government_procurement")
    assert procurement["allowed"] is True
    assert procurement["known"] is True


async def test_redelivered_event_is_applied_once(harness: Harness) -> None:
    uscc = new_uscc()
    event = await harness.send(uscc, 1, flags={"serious_illegal": True})
    await eventually(lambda: harness.events_for(uscc), lambda e: len(e) == 1)
    # At-least-once delivery: the very same event again, then a later snapshot
    # behind it in the same partition as a marker that the duplicate was read.
    await harness.producer.send_and_wait(
        LEDGER_TOPIC, key=uscc.encode(), value=json.dumps(event.model_dump(mode="json")).encode()
    )
    await harness.send(uscc, 2, flags={"serious_illegal": True}, name="重庆改名有限公司")
    await eventually(lambda: harness.stored_version(uscc), lambda v: v == 2)
    (only,) = await harness.events_for(uscc)
    assert only.type == PunishmentTriggered.event_type


async def test_batch_check_answers_in_the_given_order(harness: Harness) -> None:
    punished, clean, unknown = new_uscc(), new_uscc(), new_uscc()
    await harness.send(clean, 1)
    await harness.send(punished, 1, flags={"serious_illegal": True})
    await eventually(lambda: harness.check(punished, "land_supply"), lambda b: not b["allowed"])
    await eventually(lambda: harness.stored_version(clean), lambda v: v == 1)

    order = [unknown, punished, clean, punished.lower()]
    response = await harness.client.post(
        "/v1/checks", json={"scenario": "land_supply", "usccs": order}
    )
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [i["uscc"] for i in items] == [unknown, punished, clean, punished]
    assert [i["allowed"] for i in items] == [True, False, True, False]
    assert [i["known"] for i in items] == [False, True, True, True]
    assert items[1]["restrictions"][0]["department"] == "CQ-LAND"
    assert items[0]["restrictions"] == []


async def test_unknown_enterprise_is_allowed_and_marked_unknown(harness: Harness) -> None:
    body = await harness.check(new_uscc(), "public_bidding")
    assert body["allowed"] is True
    assert body["known"] is False
    assert body["restrictions"] == []


@pytest.mark.parametrize("scenario", ["casino_licence", None])
async def test_unknown_or_missing_scenario_is_422(harness: Harness, scenario: str | None) -> None:
    params = {"scenario": scenario} if scenario else {}
    response = await harness.client.get(f"/v1/checks/{new_uscc()}", params=params)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["field"] == "scenario"
    response = await harness.client.post(
        "/v1/checks", json={"scenario": scenario or "", "usccs": [new_uscc()]}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "scenario"


async def test_malformed_uscc_is_422(harness: Harness) -> None:
    response = await harness.client.get(
        "/v1/checks/NOT-A-USCC", params={"scenario": "government_procurement"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "uscc"
    response = await harness.client.post(
        "/v1/checks",
        json={"scenario": "government_procurement", "usccs": [new_uscc(), "91110000600037341X"]},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "usccs[1]"


async def test_batch_over_1000_is_422(harness: Harness) -> None:
    response = await harness.client.post(
        "/v1/checks",
        json={"scenario": "government_procurement", "usccs": ["91110000600037341L"] * 1001},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "usccs"


async def test_rules_are_listed(harness: Harness) -> None:
    response = await harness.client.get("/v1/rules")
    assert response.status_code == 200
    body = response.json()
    assert body["version"] == "1"
    ids = [r["id"] for r in body["items"]]
    assert ids[:2] == ["serious_illegal_dishonest", "abnormal_operation_list"]
    assert len(ids) == 7
    assert {"key": "government_procurement", "title": "政府采购", "kind": "restriction"} in body[
        "scenarios"
    ]
    first = body["items"][0]
    assert first["duration"] == {
        "type": "while_condition",
        "years": None,
        "months": None,
        "days": None,
    }
    assert first["measures"][0]["department"] == "CQ-FIN"
    tax = next(r for r in body["items"] if r["id"] == "major_tax_violation")
    assert tax["duration"]["years"] == 3
    moved = next(r for r in body["items"] if r["id"] == "abnormal_operation_three_years")
    assert moved["delay"] == {"years": 3, "months": 0, "days": 0}


async def cache_hits(harness: Harness) -> float:
    metrics = (await harness.client.get("/metrics")).text
    for line in metrics.splitlines():
        if line.startswith('ecips_rules_check_cache_total{outcome="hit"}'):
            return float(line.split()[-1])
    return 0.0


async def test_cached_answers_change_when_the_event_arrives(harness: Harness) -> None:
    uscc = new_uscc()
    await harness.send(uscc, 1)
    await eventually(lambda: harness.stored_version(uscc), lambda v: v == 1)
    # The cache follows the outbox; give it the moment to start following.
    await eventually(lambda: cache_hits_after_two_checks(harness, uscc), lambda grew: grew)
    # The enterprise is listed: the cached "allowed" must give way as the
    # punishment's event is recorded, not after some expiry.
    await harness.send(uscc, 2, flags={"serious_illegal": True})
    blocked = await eventually(
        lambda: harness.check(uscc, "government_procurement"), lambda b: not b["allowed"]
    )
    assert blocked["restrictions"][0]["rule_id"] == "serious_illegal_dishonest"
    # And cached again: the same answer from memory.
    before = await cache_hits(harness)
    again = await harness.check(uscc, "government_procurement")
    assert again["allowed"] is False
    assert await cache_hits(harness) > before
    await harness.send(uscc, 3, flags={})
    await eventually(lambda: harness.check(uscc, "government_procurement"), lambda b: b["allowed"])


async def cache_hits_after_two_checks(harness: Harness, uscc: str) -> bool:
    await harness.check(uscc, "government_procurement")
    before = await cache_hits(harness)
    answer = await harness.check(uscc, "government_procurement")
    assert answer["allowed"] is True
    return await cache_hits(harness) > before
