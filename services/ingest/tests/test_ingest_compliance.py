"""The compliance report for a month built the way departments really behave:
one on time and complete, one late, one missing a category, one with many
rejected rows, one whose records the ledger could not match, and one that
sent nil returns after the deadline. The service's clock is set, so "the 3rd"
and "the 12th" of the following month are real moments for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from ingest_support import (
    StubLedger,
    csv_bytes,
    finished_batch,
    private_database,
    random_uscc,
    read_csv,
    settings,
    unique,
)

from ecips.testkit import SigningKeys, new_signing_keys, running_app
from ecips_ingest.catalogue import load_catalogue
from ecips_ingest.main import create_app
from ecips_ingest.settings import CATALOGUE_DIR

BEIJING = timezone(timedelta(hours=8))
PERIOD = "2025-10"
EXAMPLES = load_catalogue(CATALOGUE_DIR).examples


@dataclass
class SettableClock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def keys() -> SigningKeys:
    return new_signing_keys()


@pytest.fixture(scope="module")
def clock() -> SettableClock:
    return SettableClock(datetime(2025, 11, 3, 10, 0, tzinfo=BEIJING))


@pytest.fixture(scope="module")
async def ledger() -> AsyncIterator[StubLedger]:
    stub = StubLedger()
    stub.unmatched[("CQ-HURD", PERIOD)] = 2
    await stub.start()
    yield stub
    await stub.stop()


@pytest.fixture(scope="module")
async def client(
    database_url: str,
    kafka_bootstrap: str,
    keys: SigningKeys,
    ledger: StubLedger,
    clock: SettableClock,
) -> AsyncIterator[Any]:
    async with private_database(database_url) as own_url:
        app_settings = settings(own_url, kafka_bootstrap, keys, ledger_url=ledger.url)
        async with running_app(lambda: create_app(app_settings, clock=clock)) as http:
            yield http


def record(category: str, day: int, **data: Any) -> dict[str, Any]:
    """The category's example, as a fresh record of 2025-10-<day>."""
    example = EXAMPLES[category].record
    on = f"2025-10-{day:02d}"
    body = dict(example, source_id=unique(category), uscc=random_uscc(), occurred_on=on)
    body.pop("registration_number", None)
    body["data"] = dict(example["data"], **data)
    for field in ("decided_on", "inspected_on"):
        if field in body["data"]:
            body["data"][field] = on
    if category == "administrative_license":
        body["data"].update(valid_from=on, valid_to="2029-10-01")
    return body


async def submit(client: Any, keys: SigningKeys, department: str, body: dict[str, Any]) -> int:
    response = await client.post(
        "/v1/records", json=body, headers=keys.headers(department, "records:write")
    )
    status: int = response.status_code
    return status


async def build_the_month(client: Any, keys: SigningKeys, clock: SettableClock) -> None:
    # The 3rd of November: most departments send October's records.
    for department in ("CQ-HEALTH", "CQ-TRANSPORT", "CQ-CULTURE", "CQ-ECOENV", "CQ-HURD"):
        assert await submit(client, keys, department, record("administrative_license", 8)) == 202
    for department in ("CQ-HEALTH", "CQ-ECOENV", "CQ-HURD"):
        assert await submit(client, keys, department, record("administrative_penalty", 21)) == 202
    # Ecology and environment: no inspections in October, and a sloppy file.
    nil = await client.post(
        "/v1/nil-returns",
        json={"period": PERIOD, "categories": ["administrative_inspection"]},
        headers=keys.headers("CQ-ECOENV", "records:write"),
    )
    assert nil.status_code == 200, nil.text
    header = ["业务编号", "统一社会信用代码", "行政相对人名称", "行政许可决定文书号", "许可类别",
              "许可证书名称", "许可编号", "许可内容", "许可决定日期", "有效期自", "许可机关"]  # fmt: skip
    rows = [
        [
            unique("环许"),
            random_uscc(),
            "重庆江津德感化工有限公司",
            f"渝环许〔2025〕{n}号",
            "普通" if n % 2 else "一般",
            "排污许可证",
            f"PW{n}",
            "排放大气污染物",
            "2025-10-15",
            "2025-10-15" if n < 8 else "2025-10-32",
            "重庆市生态环境局",
        ]
        for n in range(10)
    ]
    uploaded = await client.post(
        "/v1/batches",
        headers=keys.headers("CQ-ECOENV", "records:write"),
        files={"file": ("排污许可.csv", csv_bytes([header, *rows]))},
        data={"category": "administrative_license"},
    )
    batch = await finished_batch(
        client, uploaded.json()["batch_id"], keys.headers("CQ-ECOENV", "records:write")
    )
    assert (batch["accepted"], batch["rejected"]) == (4, 6)
    # And two rejected single submissions, one before FastAPI even reaches the endpoint.
    bad_uscc = dict(record("administrative_penalty", 9), uscc="91500116MA60TNJ850")
    assert await submit(client, keys, "CQ-ECOENV", bad_uscc) == 422
    no_fine = record("administrative_penalty", 9)
    del no_fine["data"]["fine"]
    assert await submit(client, keys, "CQ-ECOENV", no_fine) == 422

    # The 12th: the transport commission's penalties arrive a week late; the court
    # declares it had nothing — also late.
    clock.now = datetime(2025, 11, 12, 9, 30, tzinfo=BEIJING)
    assert await submit(client, keys, "CQ-TRANSPORT", record("administrative_penalty", 30)) == 202
    late_nil = await client.post(
        "/v1/nil-returns",
        json={"period": PERIOD, "categories": ["judgment", "judicial_assistance"]},
        headers=keys.headers("CQ-COURT", "records:write"),
    )
    assert late_nil.status_code == 200


async def test_the_report_before_and_after_the_deadline(
    client: Any, keys: SigningKeys, clock: SettableClock, ledger: StubLedger
) -> None:
    supervisor = keys.headers("CQ-SUPERVISION", "reports:read")
    await build_the_month(client, keys, clock)

    clock.now = datetime(2025, 11, 4, 12, 0, tzinfo=BEIJING)
    early = (
        await client.get("/v1/reports/compliance", params={"period": PERIOD}, headers=supervisor)
    ).json()
    assert early["deadline"] == "2025-11-05T23:59:59.999999+08:00"
    assert early["deadline_passed"] is False
    culture = next(i for i in early["items"] if i["department"] == "CQ-CULTURE")
    assert culture["on_time"] is None and culture["findings"] == []
    assert culture["missing_categories"] == ["administrative_penalty"]

    clock.now = datetime(2025, 11, 20, 9, 0, tzinfo=BEIJING)
    response = await client.get(
        "/v1/reports/compliance", params={"period": PERIOD}, headers=supervisor
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["deadline_passed"] is True
    assert report["notes"] == []
    items = {i["department"]: i for i in report["items"]}
    assert len(items) == report["total"] == len(load_catalogue(CATALOGUE_DIR).departments)

    health = items["CQ-HEALTH"]
    assert (health["on_time"], health["complete"], health["accurate"]) == (True, True, True)
    assert health["findings"] == []
    assert (health["records"], health["late_records"], health["rows_received"]) == (2, 0, 2)

    transport = items["CQ-TRANSPORT"]
    assert transport["findings"] == ["late"]
    assert (transport["records"], transport["late_records"], transport["complete"]) == (2, 1, True)
    assert transport["received_by_deadline"] == ["administrative_license"]

    culture = items["CQ-CULTURE"]
    assert culture["findings"] == ["late", "incomplete"]
    assert culture["missing_categories"] == ["administrative_penalty"]

    ecology = items["CQ-ECOENV"]
    assert ecology["findings"] == ["inaccurate"]
    assert ecology["on_time"] is True and ecology["complete"] is True
    assert ecology["nil_returns"] == ["administrative_inspection"]
    # 2 single records and 4 batch rows accepted; 6 batch rows and 2 single records rejected.
    assert (ecology["rows_received"], ecology["rows_rejected"]) == (14, 8)
    assert ecology["rejected_share"] == round(8 / 14, 4)
    assert ecology["top_rejection_codes"] == [
        {"code": "not_allowed", "rows": 5},
        {"code": "invalid_date", "rows": 2},
        {"code": "invalid_check_character", "rows": 1},
        {"code": "required", "rows": 1},
    ]

    hurd = items["CQ-HURD"]
    assert (hurd["unmatched_records"], hurd["findings"]) == (2, ["inaccurate"])
    assert items["CQ-HEALTH"]["unmatched_records"] == 0

    court = items["CQ-COURT"]
    assert court["received_categories"] == ["judgment", "judicial_assistance"]
    assert court["received_by_deadline"] == []
    assert court["findings"] == ["late"]

    # Nothing expected, nothing sent: nothing to find.
    assert items["CQ-SUPERVISION"]["findings"] == []
    assert items["CQ-SUPERVISION"]["on_time"] is True

    as_csv = await client.get(
        "/v1/reports/compliance",
        params={"period": PERIOD, "format": "csv"},
        headers=supervisor,
    )
    assert as_csv.headers["content-type"].startswith("text/csv")
    table = read_csv(as_csv.content)
    rows = {r[0]: dict(zip(table[0], r, strict=True)) for r in table[1:]}
    assert rows["CQ-TRANSPORT"]["on_time"] == "False"
    assert rows["CQ-CULTURE"]["missing_categories"] == "administrative_penalty"
    assert rows["CQ-ECOENV"]["findings"] == "inaccurate"


async def test_the_ledger_not_offering_unmatched_gives_null_and_a_note(
    client: Any, keys: SigningKeys, ledger: StubLedger
) -> None:
    ledger.offer_unmatched = False
    try:
        report = (
            await client.get(
                "/v1/reports/compliance",
                params={"period": PERIOD, "department": "CQ-HURD"},
                headers=keys.headers("CQ-SUPERVISION", "reports:read"),
            )
        ).json()
    finally:
        ledger.offer_unmatched = True
    (hurd,) = report["items"]
    assert hurd["unmatched_records"] is None
    assert hurd["findings"] == []
    assert "GET /v1/unmatched" in report["notes"][0]


async def test_access_and_bad_periods(client: Any, keys: SigningKeys) -> None:
    writer = keys.headers("CQ-HEALTH", "records:write")
    denied = await client.get("/v1/reports/compliance", params={"period": PERIOD}, headers=writer)
    assert (denied.status_code, denied.json()["code"]) == (403, "insufficient_scope")
    reader = keys.headers("CQ-SUPERVISION", "reports:read")
    for period, code in (("2025-13", "string_pattern_mismatch"), ("2099-01", "period_in_future")):
        bad = await client.get("/v1/reports/compliance", params={"period": period}, headers=reader)
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == "period"
        assert bad.json()["errors"][0]["code"] == code
    nil = await client.post(
        "/v1/nil-returns",
        json={"period": PERIOD, "categories": ["judgment"]},
        headers=writer,
    )
    assert (nil.status_code, nil.json()["code"]) == (403, "category_not_permitted")
