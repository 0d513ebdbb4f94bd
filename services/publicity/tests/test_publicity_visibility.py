"""What reaches the public, decided by the catalogues: every record category
(read from ingest's catalogue) × every disclosure class × every date case,
checked against an oracle written from the catalogues' data; credit repair
in any event order; withdrawals on time without any event."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from publicity_support import (
    Clock,
    Running,
    enterprise_changed,
    eventually,
    new_uscc,
    publicity_settings,
    record_filed,
    running_publicity,
    unique_word,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from ecips_common.events import EventPayload
from ecips_publicity.catalogue import load_catalogue
from ecips_publicity.settings import CATALOGUE_DIR

INGEST_CATEGORIES = (
    Path(__file__).resolve().parents[2]
    / "ingest"
    / "ecips_ingest"
    / "catalogue"
    / "categories.yaml"
)
PUBLICATION = load_catalogue(CATALOGUE_DIR)
DATED = PUBLICATION.dated_publication
REPAIR = PUBLICATION.credit_repair
TODAY = date(2026, 6, 15)
DISCLOSURES = ("public", "authorized", "government")
ID_NUMBER, MOBILE = "110101199003071234", "13812345678"


def catalogue_categories() -> dict[str, int | None]:
    """Every category key ingest knows, with its publicity period, plus the
    credit repair category (which ingest's catalogue may not list yet)."""
    raw = yaml.safe_load(INGEST_CATEGORIES.read_text("utf-8"))
    periods: dict[str, int | None] = {
        c["key"]: c.get("publicity_period_days") for c in raw["categories"]
    }
    periods.setdefault(REPAIR.category, None)
    return periods


CATEGORIES = catalogue_categories()


@dataclass(frozen=True)
class Case:
    name: str
    occurred_on: date
    status: str = "active"
    repair_effective: date | None = None  # a credit repair naming this record
    repair_revoked: bool = False
    repair_first: bool = False


def date_cases(period: int | None) -> list[Case]:
    since = DATED.since
    if period is None:
        ends_today, ends_tomorrow = TODAY - timedelta(days=4000), TODAY - timedelta(days=1)
    else:
        ends_today = TODAY - timedelta(days=period)
        ends_tomorrow = ends_today + timedelta(days=1)
    long_ago = TODAY - timedelta(days=200)
    return [
        Case("before_since", since - timedelta(days=1)),
        Case("on_since", since),
        Case("recent", TODAY - timedelta(days=10)),
        Case("period_ends_today", ends_today),
        Case("period_ends_tomorrow", ends_tomorrow),
        Case("revoked", TODAY - timedelta(days=10), status="revoked"),
        Case("repaired", long_ago, repair_effective=TODAY - timedelta(days=1)),
        Case("repaired_first", long_ago, repair_effective=TODAY, repair_first=True),
        Case("repair_too_early", TODAY - timedelta(days=30), repair_effective=TODAY),
        Case("repair_revoked", long_ago, repair_effective=TODAY, repair_revoked=True),
    ]


def expected_visible(category: str, disclosure: str, period: int | None, case: Case) -> bool:
    """The law as the catalogues state it, independently of the service's SQL."""
    if disclosure != "public" or case.status != "active":
        return False
    if category in DATED.categories and case.occurred_on < DATED.since:
        return False
    if period is not None and case.occurred_on + timedelta(days=period) <= TODAY:
        return False
    minimum = REPAIR.minimum_days.get(category)
    if case.repair_effective is not None and not case.repair_revoked and minimum is not None:
        ends = max(case.repair_effective, case.occurred_on + timedelta(days=minimum))
        if ends <= TODAY:
            return False
    return True


def personal_data(number: str) -> dict[str, Any]:
    return {
        "decision_number": number,
        "content": "依法公示的内容",
        "legal_representative": "王小明",
        "legal_representative_id_number": ID_NUMBER,
        "note": f"经办人身份证 {ID_NUMBER}，电话 {MOBILE}",
    }


@dataclass
class Cell:
    category: str
    disclosure: str
    uscc: str
    expected: dict[uuid.UUID, bool]


@pytest.fixture(scope="module")
async def service(database_url: str, kafka_bootstrap: str) -> AsyncIterator[Running]:
    settings = publicity_settings(
        database_url,
        kafka_bootstrap,
        rate_limit_burst=100_000,
        rate_limit_per_second=10_000,
        withdrawal_interval_seconds=3600,
    )
    async with running_publicity(settings, Clock(TODAY)) as running:
        yield running


async def seed_cell(service: Running, category: str, disclosure: str) -> Cell:
    period = CATEGORIES[category]
    uscc = new_uscc()
    events: list[EventPayload] = [
        enterprise_changed(uscc, 1, f"重庆{unique_word()}{category}有限公司")
    ]
    expected: dict[uuid.UUID, bool] = {}
    for case in date_cases(period):
        record_id = uuid.uuid4()
        source_id = f"渝{case.name}〔{case.occurred_on.year}〕{uuid.uuid4().hex[:6]}号"
        record = record_filed(
            uscc,
            category,
            record_id=record_id,
            disclosure=disclosure,
            status=case.status,
            occurred_on=case.occurred_on,
            period_days=period,
            source_id=source_id,
            data=personal_data(source_id),
        )
        if case.status == "revoked":
            # The filing, then its revocation (the ledger's next version).
            events.append(
                record_filed(
                    uscc,
                    category,
                    record_id=record_id,
                    disclosure=disclosure,
                    occurred_on=case.occurred_on,
                    period_days=period,
                    source_id=source_id,
                    data=personal_data(source_id),
                )
            )
            record = record.model_copy(update={"version": 2})
        repair = None
        if case.repair_effective is not None:
            # Withheld from the public itself: its effect must not depend on that.
            repair = record_filed(
                uscc,
                REPAIR.category,
                disclosure="government",
                occurred_on=case.repair_effective,
                department="CQ-NDRC",
                data={
                    "decision_number": f"渝发改信修〔2026〕{uuid.uuid4().hex[:6]}号",
                    "repaired_category": category,
                    "repaired_source_id": source_id,
                    "repaired_on": case.repair_effective.isoformat(),
                },
            )
        if repair is not None and case.repair_first:
            events += [repair, record]
        elif repair is not None:
            events += [record, repair]
        else:
            events.append(record)
        if repair is not None and case.repair_revoked:
            events.append(repair.model_copy(update={"version": 2, "status": "revoked"}))
        expected[record_id] = expected_visible(category, disclosure, period, case)
    await service.apply(*events)
    return Cell(category, disclosure, uscc, expected)


async def test_every_category_disclosure_and_date_case(service: Running) -> None:
    cells = [(c, d) for c in CATEGORIES for d in DISCLOSURES]
    assert len(cells) >= 26 * 3, "ingest's catalogue lost categories?"
    seeded: list[Cell] = []
    for start in range(0, len(cells), 8):  # a few enterprises at a time
        seeded += await asyncio.gather(
            *(seed_cell(service, c, d) for c, d in cells[start : start + 8])
        )
    bodies: list[str] = []
    async with service.client() as client:
        for cell in seeded:
            visible = {rid for rid, shown in cell.expected.items() if shown}
            profile = await client.get(f"/v1/enterprises/{cell.uscc}")
            assert profile.status_code == 200, (cell.category, cell.disclosure, profile.text)
            bodies.append(profile.text)
            counts = {s["key"]: s["count"] for s in profile.json()["sections"]}
            assert counts == ({cell.category: len(visible)} if visible else {}), cell
            tabs = {t["key"]: t for t in profile.json()["tabs"]}
            tab = next(t for t in tabs.values() if cell.category in t["categories"])
            if not tab["list_key"]:
                assert tab["count"] == len(visible), (cell, tab)
            listed = await client.get(
                f"/v1/enterprises/{cell.uscc}/records",
                params={"category": cell.category, "limit": 50},
            )
            assert listed.status_code == 200, listed.text
            bodies.append(listed.text)
            shown = {uuid.UUID(item["record_id"]) for item in listed.json()["items"]}
            assert shown == visible, (cell.category, cell.disclosure)
            assert listed.json()["total"] == len(visible)
            if cell.category != REPAIR.category:
                repairs = await client.get(
                    f"/v1/enterprises/{cell.uscc}/records", params={"category": REPAIR.category}
                )
                assert repairs.json()["total"] == 0  # withheld repair decisions stay withheld
    for body in bodies:
        assert ID_NUMBER not in body and MOBILE not in body

    # The stored marks agree with the oracle, and withheld content is not even stored.
    engine = create_async_engine(service.settings.database_url)
    try:
        async with engine.connect() as connection:
            for cell in seeded:
                rows = (
                    await connection.execute(
                        text(
                            "SELECT record_id, withdrawn_reason, disclosure, data "
                            "FROM publicity.public_items WHERE uscc = :uscc AND category = :c"
                        ),
                        {"uscc": cell.uscc, "c": cell.category},
                    )
                ).all()
                marks = {
                    row.record_id: row.withdrawn_reason is None
                    for row in rows
                    if row.record_id in cell.expected  # not the repair decisions
                }
                assert marks == cell.expected, (cell.category, cell.disclosure)
                for row in rows:
                    if row.disclosure != "public":
                        assert row.data == {}
                    assert ID_NUMBER not in json.dumps(row.data, ensure_ascii=False)
    finally:
        await engine.dispose()


async def test_a_repair_by_record_id_and_its_revocation(service: Running) -> None:
    uscc = new_uscc()
    penalty = record_filed(
        uscc,
        "administrative_penalty",
        occurred_on=TODAY - timedelta(days=400),
        period_days=1095,
    )
    repair = record_filed(
        uscc,
        REPAIR.category,
        occurred_on=TODAY - timedelta(days=2),
        department="CQ-NDRC",
        data={
            "decision_number": "渝发改信修〔2026〕1号",
            "repaired_record_id": str(penalty.record_id),
            "decided_on": (TODAY - timedelta(days=2)).isoformat(),
        },
    )
    await service.apply(enterprise_changed(uscc, 1, f"重庆{unique_word()}修复有限公司"))

    async def penalties(client: Any) -> int:
        body = (
            await client.get(
                f"/v1/enterprises/{uscc}/records", params={"category": "administrative_penalty"}
            )
        ).json()
        return int(body["total"])

    async with service.client("192.0.2.40") as client:
        await service.apply(penalty)
        assert await penalties(client) == 1
        await service.apply(repair)
        assert await penalties(client) == 0
        shown = (
            await client.get(
                f"/v1/enterprises/{uscc}/records", params={"category": "credit_repair"}
            )
        ).json()
        assert shown["items"][0]["category_name"] == "信用修复"  # a public repair is shown
        await service.apply(repair.model_copy(update={"version": 2, "status": "revoked"}))
        assert await penalties(client) == 1


async def test_a_period_ends_on_its_day_at_query_time(service: Running) -> None:
    """No withdrawal job runs in between (interval one hour): the query alone
    withdraws the item on its day."""
    uscc = new_uscc()
    record = record_filed(
        uscc,
        "administrative_penalty",
        occurred_on=TODAY - timedelta(days=1095 - 1),
        period_days=1095,
        data={"decision_number": "渝市监罚〔2023〕5号", "publicity_until": "2099-01-01"},
    )
    await service.apply(enterprise_changed(uscc, 1, f"重庆{unique_word()}到期有限公司"), record)
    engine = create_async_engine(service.settings.database_url)
    clock = service.clock
    try:
        async with service.client("192.0.2.41") as client:
            first = (
                await client.get(
                    f"/v1/enterprises/{uscc}/records", params={"category": "administrative_penalty"}
                )
            ).json()
            assert first["items"][0]["publish_until"] == str(TODAY + timedelta(days=1))
            clock.advance(1)
            try:
                after = (await client.get(f"/v1/enterprises/{uscc}")).json()
                assert after["sections"] == []
                async with engine.connect() as connection:
                    mark = (
                        await connection.execute(
                            text(
                                "SELECT withdrawn_reason FROM publicity.public_items "
                                "WHERE record_id = :id"
                            ),
                            {"id": record.record_id},
                        )
                    ).scalar_one()
                assert mark is None  # not marked yet: the query did it alone
            finally:
                clock.advance(-1)
    finally:
        await engine.dispose()


async def test_the_withdrawal_job_marks_items_when_the_clock_moves(
    database_url: str, kafka_bootstrap: str
) -> None:
    clock = Clock(TODAY)
    settings = publicity_settings(database_url, kafka_bootstrap, withdrawal_interval_seconds=0.2)
    uscc = new_uscc()
    ends_in_two_days = record_filed(
        uscc,
        "administrative_penalty",
        occurred_on=TODAY - timedelta(days=1095 - 2),
        period_days=1095,
    )
    shortened = record_filed(
        uscc,
        "administrative_penalty",
        occurred_on=TODAY - timedelta(days=100),
        period_days=1095,
        # The department's own end of publication (公示截止期): last day tomorrow.
        data={
            "decision_number": "渝市监罚〔2026〕8号",
            "publicity_until": str(TODAY + timedelta(days=1)),
        },
    )
    engine = create_async_engine(database_url)

    async def reasons() -> dict[uuid.UUID, str | None]:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT record_id, withdrawn_reason FROM publicity.public_items "
                    "WHERE uscc = :uscc"
                ),
                {"uscc": uscc},
            )
            return {row.record_id: row.withdrawn_reason for row in rows}

    try:
        async with running_publicity(settings, clock) as service:
            await service.apply(
                enterprise_changed(uscc, 1, f"重庆{unique_word()}定时有限公司"),
                ends_in_two_days,
                shortened,
            )
            assert set((await reasons()).values()) == {None}
            clock.advance(2)

            async def both_withdrawn() -> dict[uuid.UUID, str | None] | None:
                current = await reasons()
                return current if None not in current.values() else None

            marks = await eventually(both_withdrawn, within=15)
            assert set(marks.values()) == {"period_ended"}
            async with service.client("192.0.2.42") as client:
                profile = (await client.get(f"/v1/enterprises/{uscc}")).json()
                assert profile["sections"] == []
                statistics = (await client.get("/v1/statistics")).json()
                assert statistics["as_of"] == str(TODAY + timedelta(days=2))
    finally:
        await engine.dispose()
