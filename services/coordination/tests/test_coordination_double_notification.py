"""Double notification end to end: the ledger's events about a registration and
a change of business scope open tasks for the approving departments; the
applicant's notice (JSON and printable page); claims and feedback, with a
granted licence forwarded to a real ingest service in the department's name."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from coordination_support import (
    client_for,
    enterprise_changed,
    eventually,
    new_uscc,
    publish,
    record_filed,
    serving,
    settings_kwargs,
    started,
    tasks_of,
)

from ecips.runtime.ports import free_port
from ecips.testkit import SigningKeys, new_signing_keys
from ecips_common.contracts import (
    LEDGER_TOPIC,
    PUNISHMENTS_TOPIC,
    TOPIC_PARTITIONS,
    EnterpriseChanged,
    RecordFiled,
)
from ecips_common.outbox import ensure_topics
from ecips_coordination.main import create_app
from ecips_coordination.settings import CoordinationSettings

MIXED_SCOPE = (
    "许可项目：食品销售；餐饮服务；烟草制品零售；住宿服务；道路货物运输（不含危险货物）。"
    "（依法须经批准的项目，经相关部门批准后方可开展经营活动，具体经营项目以相关部门批准文件"
    "或许可证件为准）一般项目：食品销售（仅销售预包装食品）；日用百货销售；化工产品销售"
    "（不含许可类化工产品）；人力资源服务（不含职业中介活动、劳务派遣服务）（除依法须经批准"
    "的项目外，凭营业执照依法自主开展经营活动）"
)
CHANGED_SCOPE = MIXED_SCOPE.replace("许可项目：食品销售；", "许可项目：食品销售；危险化学品经营；")
EXPECTED = {
    "CQ-SAMR": ["food_business"],
    "CQ-TOBACCO": ["tobacco_retail"],
    "CQ-HEALTH": ["public_place_hygiene"],
    "CQ-PUBSEC": ["hotel_security"],
    "CQ-TRANSPORT": ["road_transport"],
}


@dataclass
class Harness:
    client: httpx.AsyncClient
    keys: SigningKeys
    producer: AIOKafkaProducer
    ingest_port: int
    ingest_settings: dict[str, Any]

    def headers(self, department: str, *scopes: str) -> dict[str, str]:
        return self.keys.headers(department, *(scopes or ("tasks:handle",)))

    async def ledger(self, event_type: str, data: dict[str, Any]) -> None:
        await publish(self.producer, LEDGER_TOPIC, "ledger", event_type, data)

    async def register(
        self, uscc: str, scope: str, *, name: str = "重庆渝信餐饮管理有限公司"
    ) -> None:
        source_id = f"渝中市监设字〔2026〕{uscc[-6:]}号"
        await self.ledger(
            RecordFiled.event_type,
            record_filed(
                uscc,
                category="registration",
                source_id=source_id,
                occurred_on=date(2026, 3, 2),
                data={"name": name, "business_scope": scope},
            ),
        )
        await self.ledger(
            EnterpriseChanged.event_type,
            enterprise_changed(uscc, version=1, scope=scope, name=name),
        )

    async def tasks(self, department: str, uscc: str) -> list[dict[str, Any]]:
        return await tasks_of(self.client, self.headers(department), uscc=uscc)

    async def wait_for_tasks(self, department: str, uscc: str, count: int) -> list[dict[str, Any]]:
        async def probe() -> list[dict[str, Any]]:
            return await self.tasks(department, uscc)

        return await eventually(probe, lambda items: len(items) >= count)


@pytest.fixture(scope="module")
async def harness(database_url: str, kafka_bootstrap: str) -> AsyncIterator[Harness]:
    keys = new_signing_keys()
    await ensure_topics(
        kafka_bootstrap,
        {topic: TOPIC_PARTITIONS[topic] for topic in (LEDGER_TOPIC, PUNISHMENTS_TOPIC)},
    )
    ingest_port = free_port()
    settings = CoordinationSettings(
        **settings_kwargs(
            database_url,
            kafka_bootstrap,
            keys,
            ingest_url=f"http://127.0.0.1:{ingest_port}",
            rate_limit_per_second=20.0,
            rate_limit_burst=60,
            trust_forwarded_for=True,
        )
    )
    ingest_settings = settings_kwargs(database_url, kafka_bootstrap, keys, batch_workers=0)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        async with started(create_app(settings)) as app, client_for(app) as client:
            yield Harness(client, keys, producer, ingest_port, ingest_settings)
    finally:
        await producer.stop()


async def test_a_mixed_scope_opens_one_task_per_approving_department(harness: Harness) -> None:
    uscc = new_uscc()
    await harness.register(uscc, MIXED_SCOPE)

    for department, items in EXPECTED.items():
        tasks = await harness.wait_for_tasks(department, uscc, len(items))
        assert [t["measure"] for t in tasks] == items, department
        task = tasks[0]
        assert task["type"] == "double_notification"
        assert task["action"] == "notify"
        assert task["status"] == "open"
        assert task["trigger"] == "registration"
        assert task["effective_on"] == "2026-03-02"
        assert f"渝中市监设字〔2026〕{uscc[-6:]}号" in task["reason"]
        assert task["catalogue_version"]
        assert task["rule_id"] is None
    food = (await harness.tasks("CQ-SAMR", uscc))[0]
    assert food["measure_title"] == "食品经营许可"
    assert food["scope_excerpt"] == "食品销售；餐饮服务"
    assert "食品安全法" in food["legal_basis"]
    # The general section, the exclusions and the boilerplate open nothing.
    for department in ("CQ-HRSS", "CQ-EMERGENCY", "CQ-FIN"):
        assert await harness.tasks(department, uscc) == [], department


async def test_a_scope_change_opens_tasks_only_for_newly_needed_approvals(
    harness: Harness,
) -> None:
    uscc = new_uscc()
    await harness.register(uscc, MIXED_SCOPE)
    await harness.wait_for_tasks("CQ-TRANSPORT", uscc, 1)

    await harness.ledger(
        RecordFiled.event_type,
        record_filed(
            uscc,
            category="registration_change",
            source_id=f"渝中市监变字〔2026〕{uscc[-6:]}号",
            occurred_on=date(2026, 6, 1),
            data={"changes": [{"item": "business_scope", "after": CHANGED_SCOPE}]},
        ),
    )
    changed = enterprise_changed(uscc, version=2, scope=CHANGED_SCOPE)
    await harness.ledger(EnterpriseChanged.event_type, changed)
    # Redelivered and stale snapshots change nothing.
    await harness.ledger(EnterpriseChanged.event_type, changed)
    await harness.ledger(
        EnterpriseChanged.event_type, enterprise_changed(uscc, version=1, scope=MIXED_SCOPE)
    )
    # A marker behind them on the same partition: once its task exists, the
    # duplicate and the stale snapshot have been processed.
    await harness.ledger(
        EnterpriseChanged.event_type,
        enterprise_changed(
            uscc, version=3, scope=CHANGED_SCOPE.replace("许可项目：", "许可项目：典当；")
        ),
    )
    await harness.wait_for_tasks("CQ-LFA", uscc, 1)
    (hazchem,) = await harness.wait_for_tasks("CQ-EMERGENCY", uscc, 1)
    assert hazchem["measure"] == "hazardous_chemicals_trade"
    assert hazchem["trigger"] == "scope_change"
    assert hazchem["effective_on"] == "2026-06-01"
    assert "经营范围变更" in hazchem["reason"]
    for department, items in EXPECTED.items():
        assert [t["measure"] for t in await harness.tasks(department, uscc)] == items


async def test_the_notice_to_the_applicant_is_public_json_and_printable(
    harness: Harness,
) -> None:
    uscc = new_uscc()
    hostile = "重庆<script>alert('x')</script>餐饮有限公司"
    await harness.register(uscc, MIXED_SCOPE, name=hostile)

    async def notice() -> httpx.Response:
        return await harness.client.get(f"/v1/registrations/{uscc}/notice")

    response = await eventually(notice, lambda r: r.status_code == 200)
    assert response.headers["content-type"].startswith("application/json")
    assert "public" in response.headers["cache-control"]
    body = response.json()
    assert body["uscc"] == uscc
    assert body["enterprise_name"] == hostile
    assert body["title"] == "企业登记后置审批事项告知书"
    assert "国发〔2015〕62号" in body["legal_basis"]
    assert [i["item"] for i in body["items"]] == [
        "food_business",
        "road_transport",
        "public_place_hygiene",
        "hotel_security",
        "tobacco_retail",
    ]
    tobacco = next(i for i in body["items"] if i["item"] == "tobacco_retail")
    assert tobacco["departments"] == ["CQ-TOBACCO"]
    assert tobacco["department_names"] == ["重庆市烟草专卖局"]
    assert tobacco["matched_text"] == ["烟草制品零售"]
    assert {d["code"] for d in body["departments"]} == set(EXPECTED)

    for page in (
        await harness.client.get(f"/v1/registrations/{uscc}/notice", params={"format": "html"}),
        await harness.client.get(
            f"/v1/registrations/{uscc}/notice",
            headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"},
        ),
    ):
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        html = page.text
        assert "企业登记后置审批事项告知书" in html
        assert "烟草专卖零售许可" in html and "重庆市烟草专卖局" in html
        assert "<script>alert" not in html
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
        assert "@page" in html  # printable


async def test_notice_errors_name_the_field_and_the_public_endpoint_is_rate_limited(
    harness: Harness,
) -> None:
    unknown = await harness.client.get(f"/v1/registrations/{new_uscc()}/notice")
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "registration_not_found"
    bad = await harness.client.get("/v1/registrations/91500000000000000X/notice")
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["errors"]] == ["uscc"]
    fmt = await harness.client.get(
        f"/v1/registrations/{new_uscc()}/notice", params={"format": "pdf"}
    )
    assert fmt.status_code == 422
    assert [e["field"] for e in fmt.json()["errors"]] == ["format"]

    # One client hammering the public endpoint gets 429 with Retry-After.
    flood = {"X-Forwarded-For": "203.0.113.9"}
    statuses = []
    for _ in range(200):
        response = await harness.client.get(f"/v1/registrations/{new_uscc()}/notice", headers=flood)
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert int(response.headers["retry-after"]) >= 1
            assert response.json()["code"] == "rate_limited"
            break
    assert statuses[-1] == 429, statuses
    assert statuses[0] == 404


async def test_a_department_cannot_claim_another_departments_task(harness: Harness) -> None:
    uscc = new_uscc()
    await harness.register(uscc, MIXED_SCOPE)
    (task,) = await harness.wait_for_tasks("CQ-HEALTH", uscc, 1)
    response = await harness.client.post(
        f"/v1/tasks/{task['task_id']}/claim", headers=harness.headers("CQ-SAMR")
    )
    assert response.status_code == 403
    assert response.json()["code"] == "not_own_task"
    own = await harness.client.post(
        f"/v1/tasks/{task['task_id']}/claim", headers=harness.headers("CQ-HEALTH")
    )
    assert own.status_code == 200
    assert own.json()["status"] == "claimed"


async def test_feedback_outcomes_of_double_notification(harness: Harness) -> None:
    uscc = new_uscc()
    await harness.register(uscc, MIXED_SCOPE)
    (task,) = await harness.wait_for_tasks("CQ-PUBSEC", uscc, 1)
    url = f"/v1/tasks/{task['task_id']}/feedback"
    own = harness.headers("CQ-PUBSEC")
    for body, field in [
        ({"outcome": "measure_applied", "note": "x"}, "outcome"),
        ({"outcome": "license_granted", "note": "已发证"}, "license_number"),
        ({"outcome": "not_engaged", "note": "未从事", "license_number": "X1"}, "license_number"),
        (
            {"outcome": "license_granted", "note": "已发证", "license_number": "X1",
             "forward_to_ingest": True},
            "license",
        ),
        ({"outcome": "under_supervision", "note": "跟踪", "forward_to_ingest": True},
         "forward_to_ingest"),
    ]:  # fmt: skip
        response = await harness.client.post(url, json=body, headers=own)
        assert response.status_code == 422, (body, response.text)
        assert [e["field"] for e in response.json()["errors"]] == [field], body
    done = await harness.client.post(
        url,
        json={"outcome": "not_engaged", "note": "经核查，该企业未实际开展住宿服务"},
        headers=own,
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "done"


async def test_a_granted_licence_is_forwarded_to_ingest_only_when_asked(
    harness: Harness,
) -> None:
    uscc = new_uscc()
    name = "重庆渝信餐饮管理有限公司"
    await harness.register(uscc, MIXED_SCOPE, name=name)
    (task,) = await harness.wait_for_tasks("CQ-SAMR", uscc, 1)
    url = f"/v1/tasks/{task['task_id']}/feedback"
    licence_number = f"JY1500103{uscc[-8:]}"
    feedback = {
        "outcome": "license_granted",
        "note": "已核发食品经营许可证",
        "license_number": licence_number,
        "license": {"decision_number": f"渝中市监食许〔2026〕{uscc[-5:]}号", "decided_on": "2026-03-20",
                    "valid_to": "2031-03-19"},
        "forward_to_ingest": True,
    }  # fmt: skip

    # Forwarding files a record in the department's name: tasks:handle alone is not enough.
    no_write = await harness.client.post(url, json=feedback, headers=harness.headers("CQ-SAMR"))
    assert no_write.status_code == 403
    assert no_write.json()["code"] == "insufficient_scope"

    both = harness.headers("CQ-SAMR", "tasks:handle", "records:write")
    # Ingest down: nothing is saved, the department sends it again later.
    down = await harness.client.post(url, json=feedback, headers=both)
    assert down.status_code == 503, down.text
    assert down.json()["code"] == "ingest_unavailable"
    still = await harness.client.get(f"/v1/tasks/{task['task_id']}", headers=both)
    assert still.json()["status"] == "open"

    # A real ingest service, imported here: the rest of the module does not need it.
    from ecips_ingest.main import create_app as create_ingest_app
    from ecips_ingest.settings import IngestSettings

    ingest_app = create_ingest_app(IngestSettings(**harness.ingest_settings))
    async with serving(ingest_app, harness.ingest_port) as ingest_url:
        done = await harness.client.post(url, json=feedback, headers=both)
        assert done.status_code == 200, done.text
        body = done.json()
        assert body["status"] == "done"
        forwarded = body["feedback"]["forwarded"]
        assert forwarded["status"] == "accepted"
        assert forwarded["revision"] == 1
        # The same feedback again: unchanged, not forwarded twice.
        again = await harness.client.post(url, json=feedback, headers=both)
        assert again.status_code == 200
        assert again.json()["feedback"]["forwarded"] == forwarded

        async with httpx.AsyncClient(base_url=ingest_url) as ingest:
            record = await ingest.get(f"/v1/records/{forwarded['record_id']}", headers=both)
        assert record.status_code == 200, record.text
        filed = record.json()
        assert filed["category"] == "administrative_license"
        assert filed["department"] == "CQ-SAMR"
        assert filed["source_id"] == feedback["license"]["decision_number"]  # type: ignore[index]
        latest = filed["revisions"][-1]
        assert latest["uscc"] == uscc
        data = latest["data"]
        assert data["license_number"] == licence_number
        assert data["license_name"] == "食品经营许可证"
        assert data["authority"] == "重庆市市场监督管理局"
        assert data["valid_from"] == "2026-03-20"

    # Without the flag nothing goes to ingest, whatever the token holds.
    (other,) = await harness.wait_for_tasks("CQ-TRANSPORT", uscc, 1)
    plain = await harness.client.post(
        f"/v1/tasks/{other['task_id']}/feedback",
        json={"outcome": "license_granted", "note": "已核发", "license_number": "渝交运500103"},
        headers=harness.headers("CQ-TRANSPORT", "tasks:handle", "records:write"),
    )
    assert plain.status_code == 200, plain.text
    assert "forwarded" not in plain.json()["feedback"]


async def test_unknown_task_ids_and_tokens(harness: Harness) -> None:
    response = await harness.client.post(
        f"/v1/tasks/{uuid.uuid4()}/claim", headers=harness.headers("CQ-SAMR")
    )
    assert response.status_code == 404
    anonymous = await harness.client.get("/v1/tasks")
    assert anonymous.status_code == 401
