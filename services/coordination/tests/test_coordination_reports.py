"""Deadlines in working days across a weekend and the National Day holiday,
the overdue flag, and the coordination report (JSON and CSV) built from tasks
handled on time, late and not at all."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from coordination_support import (
    MovableClock,
    client_for,
    enterprise_changed,
    eventually,
    new_uscc,
    publish,
    punishment_triggered,
    settings_kwargs,
    started,
    tasks_of,
)

from ecips.testkit import SigningKeys, new_signing_keys
from ecips_common.contracts import (
    LEDGER_TOPIC,
    PUNISHMENTS_TOPIC,
    TOPIC_PARTITIONS,
    EnterpriseChanged,
    PunishmentTriggered,
)
from ecips_common.outbox import ensure_topics
from ecips_coordination.main import create_app
from ecips_coordination.settings import CoordinationSettings

CSRC = "CQ-CSRC"
WATER = "CQ-WATER"
OPENED = date(2026, 9, 30)  # Wednesday before the National Day holiday (10-01 to 10-07)
MEASURES = [
    {"measure": f"securities_restriction_{n}", "title": f"限制证券市场行为{n}", "scenarios": [],
     "department": CSRC, "legal_basis": "国发〔2016〕33号"}
    for n in (1, 2, 3)
]  # fmt: skip


@dataclass
class Harness:
    client: httpx.AsyncClient
    keys: SigningKeys
    clock: MovableClock
    tasks: dict[str, dict[str, Any]]

    def headers(self, department: str, *scopes: str) -> dict[str, str]:
        return self.keys.headers(department, *(scopes or ("tasks:handle",)))

    async def act(self, department: str, task_id: str, action: str, on: date) -> dict[str, Any]:
        self.clock.set_china(on)
        body = (
            {"outcome": "measure_applied", "note": "已限制"}
            if department == CSRC
            else {"outcome": "under_supervision", "note": "已纳入监管"}
        )
        response = await self.client.post(
            f"/v1/tasks/{task_id}/{action}",
            json=body if action == "feedback" else None,
            headers=self.headers(department),
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def task(self, department: str, task_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/v1/tasks/{task_id}", headers=self.headers(department))
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def report(self, **params: str) -> httpx.Response:
        return await self.client.get(
            "/v1/reports/coordination",
            params=params,
            headers=self.headers("CQ-SUPERVISION", "reports:read"),
        )


@pytest.fixture(scope="module")
async def harness(database_url: str, kafka_bootstrap: str) -> AsyncIterator[Harness]:
    keys = new_signing_keys()
    await ensure_topics(
        kafka_bootstrap,
        {topic: TOPIC_PARTITIONS[topic] for topic in (LEDGER_TOPIC, PUNISHMENTS_TOPIC)},
    )
    clock = MovableClock(datetime.now(UTC))
    clock.set_china(OPENED)
    settings = CoordinationSettings(**settings_kwargs(database_url, kafka_bootstrap, keys))
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        async with started(create_app(settings, clock=clock)) as app, client_for(app) as client:
            uscc = new_uscc()
            await publish(
                producer,
                PUNISHMENTS_TOPIC,
                "rules",
                PunishmentTriggered.event_type,
                punishment_triggered(uscc, MEASURES),
            )
            await publish(
                producer,
                LEDGER_TOPIC,
                "ledger",
                EnterpriseChanged.event_type,
                enterprise_changed(uscc, version=1, scope="许可项目：取水。一般项目：水污染治理"),
            )
            csrc_headers = keys.headers(CSRC, "tasks:handle")
            water_headers = keys.headers(WATER, "tasks:handle")

            async def opened() -> list[dict[str, Any]]:
                return await tasks_of(client, csrc_headers, uscc=uscc) + await tasks_of(
                    client, water_headers, uscc=uscc
                )

            found = await eventually(opened, lambda items: len(items) == 4)
            tasks = {t["measure"]: t for t in found}
            yield Harness(client, keys, clock, tasks)
    finally:
        await producer.stop()


async def test_deadlines_count_working_days_across_the_holiday_and_its_makeup_saturday(
    harness: Harness,
) -> None:
    for task in harness.tasks.values():
        assert task["opened_at"].startswith("2026-09-30T")
        # 10-01..10-07 off; 10-08 Thu, 10-09 Fri, 10-10 Sat (调休, worked): 3 working days.
        assert task["claim_due"] == "2026-10-10"
        # … then 10-12 Mon to 10-16 Fri and 10-19, 10-20: 10 working days.
        assert task["feedback_due"] == "2026-10-20"


async def test_tasks_are_handled_and_the_report_shows_on_time_late_and_overdue(
    harness: Harness,
) -> None:
    first, second, third = (harness.tasks[str(m["measure"])]["task_id"] for m in MEASURES)
    water = harness.tasks["water_abstraction"]["task_id"]

    # The make-up Saturday is a working day: claiming on it is in time.
    harness.clock.set_china(date(2026, 10, 10))
    assert (await harness.task(CSRC, third))["overdue"] is False
    await harness.act(CSRC, first, "claim", date(2026, 10, 9))
    await harness.act(CSRC, first, "feedback", date(2026, 10, 10))
    await harness.act(WATER, water, "claim", date(2026, 10, 10))
    # The weekend after it (10-11 is a Sunday) is not: the next day counts.
    harness.clock.set_china(date(2026, 10, 11))
    assert (await harness.task(CSRC, third))["overdue"] is True
    await harness.act(CSRC, second, "claim", date(2026, 10, 12))
    await harness.act(CSRC, second, "feedback", date(2026, 10, 13))
    # The feedback due day itself is still in time.
    await harness.act(WATER, water, "feedback", date(2026, 10, 20))

    harness.clock.set_china(date(2026, 10, 21))
    third_now = await harness.task(CSRC, third)
    assert third_now["status"] == "open" and third_now["overdue"] is True

    response = await harness.report(period="2026-09", department=CSRC)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["report"] == "coordination"
    assert report["period"] == "2026-09"
    assert report["period_start"] == "2026-09-01" and report["period_end"] == "2026-09-30"
    assert report["calendar_version"]
    assert report["total"] == 1
    (row,) = report["items"]
    assert row == {
        "department": CSRC,
        "name": "中国证券监督管理委员会重庆监管局",
        "workflow": "joint_punishment",
        "opened": 3,
        "on_time": 1,
        "late": 1,
        "open": 1,
        "overdue": 1,
        "claimed_late": 2,
        "on_time_rate": round(1 / 3, 4),
    }
    everyone = (await harness.report(period="2026-09")).json()["items"]
    water_row = next(r for r in everyone if r["department"] == WATER)
    assert (water_row["workflow"], water_row["opened"], water_row["on_time"]) == (
        "double_notification",
        1,
        1,
    )
    assert any(r["department"] == CSRC for r in everyone)
    october = (await harness.report(period="2026-10", department=CSRC)).json()
    assert october["items"] == []

    as_csv = await harness.report(period="2026-09", department=CSRC, format="csv")
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [(r["period"], r["department"], r["opened"], r["late"], r["overdue"]) for r in rows] == [
        ("2026-09", CSRC, "3", "1", "1")
    ]
    negotiated = await harness.client.get(
        "/v1/reports/coordination",
        params={"period": "2026-09", "department": CSRC},
        headers=harness.headers("CQ-SUPERVISION", "reports:read") | {"Accept": "text/csv"},
    )
    assert negotiated.text == as_csv.text


async def test_the_report_needs_reports_read_and_a_valid_period(harness: Harness) -> None:
    anonymous = await harness.client.get("/v1/reports/coordination", params={"period": "2026-09"})
    assert anonymous.status_code == 401
    handler = await harness.client.get(
        "/v1/reports/coordination", params={"period": "2026-09"}, headers=harness.headers(CSRC)
    )
    assert handler.status_code == 403
    for params, field in [
        ({}, "period"),
        ({"period": "2026-13"}, "period"),
        ({"period": "2026/09"}, "period"),
        ({"period": "2026-09", "department": "csrc"}, "department"),
        ({"period": "2026-09", "format": "xlsx"}, "format"),
    ]:
        response = await harness.report(**params)
        assert response.status_code == 422, params
        assert [e["field"] for e in response.json()["errors"]] == [field], params
