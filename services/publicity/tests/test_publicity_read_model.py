"""The public read model end to end: CloudEvents produced to the topics with
aiokafka, consumed by the running service, read back through its public API."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from ecips.testkit import new_signing_keys, service_settings_kwargs
from ecips_common.contracts import (
    EnterpriseChanged,
    EnterpriseFlags,
    FormerName,
    MeasureRef,
    PunishmentLifted,
    PunishmentTriggered,
    RecordFiled,
)
from ecips_common.events import CloudEvent, EventPayload
from ecips_common.identifiers import USCC_ALPHABET, make_registration_number, make_uscc
from ecips_common.outbox import ensure_topics
from ecips_publicity.main import create_app
from ecips_publicity.service import today_in_china
from ecips_publicity.settings import PublicitySettings

T = TypeVar("T")
_sequence = itertools.count(1)
# Common characters for names that no other test (or run) will produce.
_NAME_CHARS = "鑫瑞祥泰华宏源达丰盛恒昌隆兴德福嘉荣锦鸿翔润博"


def new_uscc() -> str:
    body = "".join(random.choices(USCC_ALPHABET, k=8))
    return make_uscc(org_body=body, division="500103")


def unique_word(length: int = 4) -> str:
    return "".join(random.choices(_NAME_CHARS, k=length))


@dataclass
class Harness:
    app: FastAPI
    producer: AIOKafkaProducer
    ledger_topic: str
    punishments_topic: str
    database_url: str

    def client(self, ip: str = "192.0.2.1") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(ip, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://testserver")

    async def publish(self, payload: EventPayload, subject: str, topic: str | None = None) -> str:
        event = CloudEvent(
            id=str(uuid.uuid4()),
            source="/ecips/ledger" if topic is None else "/ecips/rules",
            type=payload.event_type,
            subject=subject,
            time=datetime.now(UTC),
            sequence=next(_sequence),
            data=payload.model_dump(mode="json"),
        )
        await self.producer.send_and_wait(
            topic or self.ledger_topic,
            json.dumps(event.model_dump(mode="json"), ensure_ascii=False).encode(),
            key=subject.encode(),
        )
        return event.id

    async def enterprise(self, uscc: str, version: int, name: str, **fields: Any) -> None:
        fields.setdefault("legal_representative", "张伟")
        fields.setdefault("established_on", date(2018, 3, 1))
        fields.setdefault("status", "active")
        fields.setdefault("registered", True)
        await self.publish(
            EnterpriseChanged(
                uscc=uscc,
                version=version,
                name=name,
                division_code=uscc[2:8],
                flags=fields.pop("flags", EnterpriseFlags()),
                changed_at=datetime.now(UTC),
                **fields,
            ),
            uscc,
        )

    async def record(
        self,
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
    ) -> uuid.UUID:
        record_id = record_id or uuid.uuid4()
        await self.publish(
            RecordFiled(
                uscc=uscc,
                record_id=record_id,
                version=version,
                revision=version,
                status=status,  # type: ignore[arg-type]
                category=category,
                department="CQ-SAMR",
                source_id=source_id or f"渝市监罚〔2020〕{random.randint(1, 99999)}号",
                occurred_on=occurred_on,
                data=data or {"content": "公示内容"},
                disclosure=disclosure,  # type: ignore[arg-type]
                publicity_period_days=period_days,
                filed_at=datetime.now(UTC),
            ),
            uscc,
        )
        return record_id


@pytest.fixture(scope="module")
async def harness(database_url: str, kafka_bootstrap: str) -> AsyncIterator[Harness]:
    suffix = uuid.uuid4().hex[:8]
    ledger_topic, punishments_topic = f"ledger-{suffix}", f"punishments-{suffix}"
    await ensure_topics(kafka_bootstrap, {ledger_topic: 3, punishments_topic: 2})
    settings = PublicitySettings(
        **service_settings_kwargs(
            database_url=database_url, kafka_bootstrap=kafka_bootstrap, keys=new_signing_keys()
        ),
        ledger_topic=ledger_topic,
        punishments_topic=punishments_topic,
        # No upstream service runs here: the change-feed followers find nothing.
        ledger_url="http://127.0.0.1:9",
        rules_url="http://127.0.0.1:9",
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=False)
    await producer.start()
    app = create_app(settings)
    try:
        async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
            yield Harness(
                manager.app,  # type: ignore[arg-type]
                producer,
                ledger_topic,
                punishments_topic,
                database_url,
            )
    finally:
        await producer.stop()


async def eventually(probe: Callable[[], Awaitable[T | None]], within: float = 30.0) -> T:
    """Poll until ``probe`` returns something, or fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = await probe()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {within} s")
        await asyncio.sleep(0.25)


async def profile_when(
    client: httpx.AsyncClient, uscc: str, condition: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        response = await client.get(f"/v1/enterprises/{uscc}")
        if response.status_code != 200:
            return None
        body: dict[str, Any] = response.json()
        return body if condition(body) else None

    return await eventually(probe)


def section_counts(profile: dict[str, Any]) -> dict[str, int]:
    return {s["key"]: s["count"] for s in profile["sections"]}


async def test_only_public_records_within_their_period_are_shown(harness: Harness) -> None:
    uscc = new_uscc()
    today = today_in_china()
    await harness.enterprise(uscc, 1, f"重庆{unique_word()}建材有限公司")
    license_id = await harness.record(
        uscc,
        "administrative_license",
        data={
            "legal_representative": "王小明",
            "legal_representative_id_number": "110101199003071234",
            "id_number": "11010119900307123X",
            "contact": {"mobile": "13812345678", "holder_id_number": "500103198001011234"},
            "note": "经办人身份证 11010119900307123X，电话 +86 139-1234-5678，代码 91500103MA5U7XXXXX",
        },
    )
    await harness.record(uscc, "judgment", disclosure="authorized", data={"secret": "判决"})
    await harness.record(uscc, "consumer_complaint", disclosure="government")
    # Revoked: the revocation (version 2) arrives before the filing (version 1).
    revoked_id = uuid.uuid4()
    await harness.record(uscc, "administrative_penalty", record_id=revoked_id, version=2,
                         status="revoked")  # fmt: skip
    await harness.record(uscc, "administrative_penalty", record_id=revoked_id, version=1)
    # Publicity period over (2015 + 3 years) versus still running.
    await harness.record(uscc, "administrative_penalty", occurred_on=date(2015, 1, 1),
                         period_days=1095)  # fmt: skip
    await harness.record(uscc, "administrative_penalty", occurred_on=today - timedelta(days=10),
                         period_days=1095, source_id="渝市监罚〔当前〕1号")  # fmt: skip
    # Licence/penalty/commendation before 2014-10-01 are not public; other categories are.
    await harness.record(uscc, "administrative_penalty", occurred_on=date(2014, 9, 30))
    await harness.record(uscc, "commendation", occurred_on=date(2014, 10, 1))
    await harness.record(uscc, "annual_report", occurred_on=date(2013, 6, 30))
    # Last on the same partition: once it shows, everything before was applied.
    await harness.record(uscc, "trademark_registration")

    async with harness.client() as client:
        profile = await profile_when(
            client, uscc, lambda p: "trademark_registration" in section_counts(p)
        )
        assert section_counts(profile) == {
            "annual_report": 1,
            "administrative_license": 1,
            "administrative_penalty": 1,
            "commendation": 1,
            "trademark_registration": 1,
        }
        penalties = (
            await client.get(
                f"/v1/enterprises/{uscc}/records", params={"category": "administrative_penalty"}
            )
        ).json()
        assert penalties["total"] == 1
        assert penalties["items"][0]["source_id"] == "渝市监罚〔当前〕1号"
        assert penalties["items"][0]["publish_until"] == str(
            today - timedelta(days=10) + timedelta(days=1095)
        )
        judgments = await client.get(
            f"/v1/enterprises/{uscc}/records", params={"category": "judgment"}
        )
        assert judgments.status_code == 200
        assert judgments.json() == {"items": [], "total": 0, "page": 1, "limit": 20}

        licences = (
            await client.get(
                f"/v1/enterprises/{uscc}/records", params={"category": "administrative_license"}
            )
        ).json()
        item = licences["items"][0]
        assert item["record_id"] == str(license_id)
        assert item["department"] == "CQ-SAMR"
        data = item["data"]
        assert data["legal_representative"] == "王小明"
        assert "legal_representative_id_number" not in data
        assert "id_number" not in data
        assert data["contact"] == {"mobile": "138****5678"}
        assert "11010119900307123X" not in data["note"]
        assert "110*************3X" in data["note"]
        assert "+86 139****5678" in data["note"]
        assert "91500103MA5U7XXXXX" in data["note"]

    # Content that may never be shown is not even stored.
    engine = create_async_engine(harness.database_url)
    try:
        async with engine.connect() as connection:
            stored = (
                await connection.execute(
                    text(
                        "SELECT category, data FROM publicity.public_items "
                        "WHERE uscc = :uscc AND disclosure <> 'public'"
                    ),
                    {"uscc": uscc},
                )
            ).all()
    finally:
        await engine.dispose()
    assert sorted(row.category for row in stored) == ["consumer_complaint", "judgment"]
    assert all(row.data == {} for row in stored)


async def test_search_by_identifier_name_and_former_name_ranked(harness: Harness) -> None:
    word = unique_word(5)
    exact, prefix, contains, renamed, unregistered = (new_uscc() for _ in range(5))
    registration_number = make_registration_number(
        "5001" + "".join(random.choices("0123456789", k=10))
    )
    await harness.enterprise(exact, 1, word)
    await harness.enterprise(
        prefix, 1, f"{word}物流有限公司", registration_number=registration_number
    )
    await harness.enterprise(contains, 1, f"重庆{word}物流有限公司")
    await harness.enterprise(
        renamed,
        2,
        f"重庆{unique_word()}贸易有限公司",
        former_names=[FormerName(name=f"重庆市{word}旧名贸易有限公司", until=date(2021, 1, 1))],
        flags=EnterpriseFlags(serious_illegal=True, serious_illegal_since=date(2023, 2, 1)),
    )
    await harness.enterprise(unregistered, 1, f"{word}未登记", registered=False)

    async with harness.client("192.0.2.2") as client:

        async def four_hits() -> dict[str, Any] | None:
            body: dict[str, Any] = (await client.get("/v1/search", params={"q": word})).json()
            return body if body["total"] >= 4 else None

        result = await eventually(four_hits)
        assert result["total"] == 4
        usccs = [item["uscc"] for item in result["items"]]
        assert usccs[:2] == [exact, prefix]
        assert set(usccs[2:]) == {contains, renamed}
        by_uscc = {item["uscc"]: item for item in result["items"]}
        assert by_uscc[renamed]["matched_name"] == f"重庆市{word}旧名贸易有限公司"
        assert by_uscc[renamed]["flags"]["serious_illegal"] is True
        assert set(by_uscc[exact]) >= {
            "uscc", "name", "legal_representative", "status", "established_on", "flags"
        }  # fmt: skip

        # Part of a Chinese name.
        part = (await client.get("/v1/search", params={"q": f"{word}物流"})).json()
        assert [i["uscc"] for i in part["items"]] == [prefix, contains]
        # A former name finds the renamed enterprise under its current name.
        former = (await client.get("/v1/search", params={"q": f"{word}旧名"})).json()
        assert [i["uscc"] for i in former["items"]] == [renamed]
        assert former["items"][0]["name"] != former["items"][0]["matched_name"]
        # USCC in lower case and with spaces; the old registration number.
        for q in (prefix.lower(), f"  {prefix} ", registration_number):
            found = (await client.get("/v1/search", params={"q": q})).json()
            assert found["total"] == 1, q
            assert found["items"][0]["uscc"] == prefix
            assert found["items"][0]["matched_name"] is None
        # Paging.
        second = (await client.get("/v1/search", params={"q": word, "page": 2, "limit": 2})).json()
        assert second["total"] == 4
        assert {i["uscc"] for i in second["items"]} == {contains, renamed}
        # LIKE wildcards in q are literal characters.
        assert (await client.get("/v1/search", params={"q": "%"})).json()["total"] == 0
        assert (await client.get("/v1/search", params={"q": "_"})).json()["total"] == 0
        # Unregistered enterprises are neither found nor shown.
        missing = (await client.get("/v1/search", params={"q": unregistered})).json()
        assert missing["total"] == 0
        assert (await client.get(f"/v1/enterprises/{unregistered}")).status_code == 404


async def test_out_of_order_enterprise_versions_keep_the_newest(harness: Harness) -> None:
    uscc = new_uscc()
    newest, older, oldest = (f"重庆{unique_word()}{n}有限公司" for n in ("新", "中", "旧"))
    await harness.enterprise(uscc, 3, newest, legal_representative="李四")
    await harness.enterprise(uscc, 1, oldest, legal_representative="赵一")
    await harness.enterprise(uscc, 2, older, legal_representative="钱二")
    await harness.record(uscc, "annual_report")  # same partition: applied after the three

    async with harness.client("192.0.2.3") as client:
        profile = await profile_when(client, uscc, lambda p: "annual_report" in section_counts(p))
        assert profile["name"] == newest
        assert profile["legal_representative"] == "李四"
        assert (await client.get("/v1/search", params={"q": oldest})).json()["total"] == 0


async def test_joint_measures_follow_triggers_and_lifts(harness: Harness) -> None:
    uscc = new_uscc()
    name = f"重庆{unique_word()}工程有限公司"
    await harness.enterprise(uscc, 1, name)
    measure = MeasureRef(
        measure="procurement_ban",
        title="限制参与政府采购",
        scenarios=["government_procurement"],
        department="CQ-FIN",
        legal_basis="国发〔2016〕33号",
    )
    decided = datetime(2024, 1, 1, tzinfo=UTC)

    def triggered(rule_id: str, at: datetime) -> PunishmentTriggered:
        return PunishmentTriggered(
            uscc=uscc, enterprise_name=name, rule_id=rule_id, rule_version=1,
            rule_title="严重违法失信企业联合惩戒", kind="punishment", measures=[measure],
            legal_basis="国发〔2016〕33号", since=date(2024, 1, 1), until=None,
            catalogue_version="test", decided_at=at,
        )  # fmt: skip

    topic = harness.punishments_topic
    await harness.publish(triggered("serious-illegal", decided), uscc, topic)
    async with harness.client("192.0.2.4") as client:
        profile = await profile_when(client, uscc, lambda p: bool(p["joint_measures"]))
        assert profile["joint_measures"][0]["rule_id"] == "serious-illegal"
        assert profile["joint_measures"][0]["measures"][0]["title"] == "限制参与政府采购"

        lifted = PunishmentLifted(
            uscc=uscc, enterprise_name=name, rule_id="serious-illegal", rule_version=1,
            kind="punishment", measures=[measure], reason="信用修复",
            lifted_on=date(2024, 6, 1), catalogue_version="test",
            decided_at=decided + timedelta(days=150),
        )  # fmt: skip
        await harness.publish(lifted, uscc, topic)
        # A stale trigger delivered late must not bring the lifted rule back.
        await harness.publish(triggered("serious-illegal", decided), uscc, topic)
        await harness.publish(triggered("sentinel-rule", decided), uscc, topic)
        profile = await profile_when(
            client,
            uscc,
            lambda p: [m["rule_id"] for m in p["joint_measures"]] == ["sentinel-rule"],
        )
        assert len(profile["joint_measures"]) == 1


async def test_invalid_input_is_a_problem(harness: Harness) -> None:
    async with harness.client("192.0.2.5") as client:
        for params in ({}, {"q": ""}, {"q": "   "}, {"q": "企" * 101}):
            response = await client.get("/v1/search", params=params)
            assert response.status_code == 422, params
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["errors"][0]["field"] == "q"
        malformed = await client.get("/v1/enterprises/91500103ABC")
        assert malformed.status_code == 422
        assert malformed.json()["errors"][0]["field"] == "uscc"
        unknown = await client.get(f"/v1/enterprises/{new_uscc()}")
        assert unknown.status_code == 404
        assert unknown.json()["code"] == "enterprise_not_found"
        category = await client.get(
            f"/v1/enterprises/{new_uscc()}/records", params={"category": "no_such_thing"}
        )
        assert category.status_code == 422
        assert category.json()["errors"][0]["field"] == "category"
        limit = await client.get("/v1/search", params={"q": "重庆", "limit": 0})
        assert limit.status_code == 422


async def test_rate_limit_answers_429_after_the_burst(harness: Harness) -> None:
    async with harness.client("198.51.100.7") as client:
        responses = await asyncio.gather(
            *(client.get("/v1/search", params={"q": ""}) for _ in range(150))
        )
        statuses = [r.status_code for r in responses]
        assert statuses.count(422) >= 60
        limited = [r for r in responses if r.status_code == 429]
        assert limited, "the burst of 60 was not enforced"
        assert int(limited[0].headers["Retry-After"]) >= 1
        assert limited[0].json()["code"] == "rate_limited"
    # Another client is not affected, and probes are never limited.
    async with harness.client("198.51.100.8") as other:
        assert (await other.get("/v1/search", params={"q": ""})).status_code == 422
    async with harness.client("198.51.100.7") as same:
        assert (await same.get("/healthz")).status_code == 200


async def test_portal_page_and_http_headers(harness: Harness) -> None:
    async with harness.client("192.0.2.6") as client:
        page = await client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert 'id="search-input"' in page.text
        assert "企业信用信息公示" in page.text
        script = await client.get("/static/portal.js")
        assert script.status_code == 200
        assert "innerHTML" not in script.text
        search = await client.get(
            "/v1/search", params={"q": "重庆"}, headers={"Origin": "https://portal.example"}
        )
        assert search.status_code == 200
        assert search.headers["cache-control"] == "public, max-age=30"
        assert search.headers["access-control-allow-origin"] == "*"
        preflight = await client.options(
            "/v1/search",
            headers={
                "Origin": "https://portal.example",
                "Access-Control-Request-Method": "GET",
            },
        )
        assert preflight.status_code == 200
