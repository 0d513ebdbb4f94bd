"""Lookups by old registration number, the unmatched queue as ingest's
compliance report reads it, and the data-quality checks."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from ledger_support import (
    SAMR,
    accepted,
    eventually,
    listing_data,
    penalty_data,
    produce,
    random_registration_number,
    random_uscc,
    registration_data,
    revoked,
)

from ecips.testkit import SigningKeys


def _department() -> str:
    # A department of its own, so counts are not shared with other tests.
    return f"CQ-Q{uuid.uuid4().hex[:8].upper()}"


def _this_month() -> str:
    """Reporting months are in China Standard Time."""
    return datetime.now(timezone(timedelta(hours=8))).strftime("%Y-%m")


async def _get(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], **params: Any
) -> dict[str, Any]:
    response = await client.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_enterprise_found_by_its_old_registration_number(
    ledger: httpx.AsyncClient, ledger_keys: SigningKeys, records_producer: AIOKafkaProducer
) -> None:
    headers = ledger_keys.headers("SYSTEM", "ledger:read")
    uscc, number = random_uscc(), random_registration_number()
    await produce(
        records_producer,
        accepted(
            "registration",
            registration_data("重庆老号查询有限公司", registration_number=number),
            uscc=uscc,
        ),
    )

    async def found() -> list[dict[str, Any]] | None:
        body = await _get(ledger, "/v1/enterprises", headers, registration_number=number)
        items: list[dict[str, Any]] = body["items"]
        return items or None

    items = await eventually(found, what="the old number mapped")
    assert [(e["uscc"], e["registration_number"], e["name"]) for e in items] == [
        (uscc, number, "重庆老号查询有限公司")
    ]
    assert items[0]["status_code"] == "active"
    unknown = await _get(
        ledger, "/v1/enterprises", headers, registration_number=random_registration_number()
    )
    assert unknown == {"items": []}

    for bad, code in (("50010300000000", "invalid_length"), (number[:-1] + "X", None)):
        response = await ledger.get(
            "/v1/enterprises", params={"registration_number": bad}, headers=headers
        )
        assert response.status_code == 422, bad
        error = response.json()["errors"][0]
        assert error["field"] == "registration_number"
        assert code is None or error["code"] == code
    response = await ledger.get("/v1/enterprises", headers=headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "registration_number"
    response = await ledger.get(
        "/v1/enterprises",
        params={"registration_number": number},
        headers=ledger_keys.headers(SAMR, "reports:read"),
    )
    assert response.status_code == 403


async def test_waiting_records_and_their_wait_are_reported(
    ledger: httpx.AsyncClient, ledger_keys: SigningKeys, records_producer: AIOKafkaProducer
) -> None:
    reports = ledger_keys.headers("CQ-NDRC", "reports:read")
    department = _department()
    uscc, number = random_uscc(), random_registration_number()
    by_uscc = accepted(
        "administrative_penalty", penalty_data("等罚1"), uscc=uscc, department=department
    )
    by_number = accepted(
        "tax_arrears",
        {"tax_type": "增值税", "amount": {"value": "1000", "currency": "CNY"}},
        uscc=None,
        registration_number=number,
        department=department,
    )
    await produce(records_producer, by_uscc, by_number)

    # The page and its counts are two statements: wait until both see the records.
    async def both_waiting() -> dict[str, Any] | None:
        body = await _get(ledger, "/v1/unmatched", reports, department=department)
        return body if body["total"] == 2 and len(body["items"]) == 2 else None

    page = await eventually(both_waiting, what="two records waiting")
    assert page["counts"] == {department: 2}
    assert {item["record_id"] for item in page["items"]} == {
        str(by_uscc.data["record_id"]),
        str(by_number.data["record_id"]),
    }
    for item in page["items"]:
        assert item["waiting"] is True
        assert item["filed_at"] is None
        assert item["waited_days"] == 0
        assert item["department"] == department
        assert item["source_id"] in (by_uscc.data["source_id"], by_number.data["source_id"])
    this_month = await _get(
        ledger, "/v1/unmatched", reports, department=department, period=_this_month()
    )
    assert this_month["total"] == 2
    long_ago = await _get(ledger, "/v1/unmatched", reports, department=department, period="2001-01")
    assert (long_ago["total"], long_ago["items"], long_ago["counts"]) == (0, [], {})
    # By the month the records are about (their occurred_on, 2025-06-10).
    for occurred_period, total in (("2025-06", 2), ("2025-07", 0), ("2025-05", 0)):
        by_occurrence = await _get(
            ledger,
            "/v1/unmatched",
            reports,
            department=department,
            occurred_period=occurred_period,
        )
        assert by_occurrence["total"] == total, occurred_period
    first = await _get(ledger, "/v1/unmatched", reports, department=department, limit=1)
    second = await _get(
        ledger, "/v1/unmatched", reports, department=department, limit=1, after=first["next_cursor"]
    )
    assert {first["items"][0]["record_id"], second["items"][0]["record_id"]} == {
        item["record_id"] for item in page["items"]
    }

    # Other tests of the session leave unmatched records too: ask for the two
    # checks this test is about, with room for everyone's findings.
    quality = await _get(
        ledger,
        "/v1/quality",
        reports,
        older_than_days=0,
        check=["unmatched_overdue", "missing_registration"],
        limit=1000,
    )
    assert quality["unmatched_by_department"][department] == 2
    # The findings are capped per check, and the session's other tests leave
    # unmatched records too; when ours fit in the page they must be there.
    overdue = [f for f in quality["items"] if f["check"] == "unmatched_overdue"]
    if len(overdue) < 1000:
        assert str(by_uscc.data["record_id"]) in {f["record_id"] for f in overdue}
    missing = [f for f in quality["items"] if f["check"] == "missing_registration"]
    if len(missing) < 1000:
        assert any(f["uscc"] == uscc and f["departments"] == [department] for f in missing)
        assert any(f["registration_number"] == number and f["uscc"] is None for f in missing)

    # The registration arrives: both are filed, and the wait stays on record.
    await produce(
        records_producer,
        accepted(
            "registration",
            registration_data("重庆迟来登记有限公司", registration_number=number),
            uscc=uscc,
        ),
    )

    async def both_filed() -> dict[str, Any] | None:
        body = await _get(ledger, "/v1/unmatched", reports, department=department, state="filed")
        return body if body["total"] == 2 and len(body["items"]) == 2 else None

    filed = await eventually(both_filed, what="both filed after their wait")
    for item in filed["items"]:
        assert item["waiting"] is False
        assert item["filed_at"] >= item["received_at"]
        assert item["uscc"] == uscc
    waiting = await _get(ledger, "/v1/unmatched", reports, department=department)
    assert waiting["total"] == 0
    everything = await _get(ledger, "/v1/unmatched", reports, department=department, state="all")
    assert everything["total"] == 2


async def test_unmatched_and_quality_reject_bad_input(
    ledger: httpx.AsyncClient, ledger_keys: SigningKeys
) -> None:
    reports = ledger_keys.headers("CQ-NDRC", "reports:read")
    for params, field in (
        ({"period": "2025-13"}, "period"),
        ({"period": "May"}, "period"),
        ({"occurred_period": "2025-00"}, "occurred_period"),
        ({"after": "garbage"}, "after"),
        ({"state": "lost"}, "state"),
    ):
        response = await ledger.get("/v1/unmatched", params=params, headers=reports)
        assert response.status_code == 422, params
        assert response.json()["errors"][0]["field"] == field
    response = await ledger.get("/v1/quality", params={"check": "nonsense"}, headers=reports)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "check"
    for path in ("/v1/unmatched", "/v1/quality"):
        assert (await ledger.get(path)).status_code == 401
        response = await ledger.get(path, headers=ledger_keys.headers(SAMR, "records:write"))
        assert response.status_code == 403


async def test_quality_checks_find_what_is_wrong(
    ledger: httpx.AsyncClient, ledger_keys: SigningKeys, records_producer: AIOKafkaProducer
) -> None:
    reader = ledger_keys.headers("CQ-NDRC", "ledger:read")
    uscc, revoked_uscc = random_uscc(), random_uscc()
    shared_source = f"共用文号-{uuid.uuid4().hex[:6]}"
    old_name, new_name = "重庆质检旧名有限公司", "重庆质检新名（渝中）有限公司"
    registration = accepted("registration", registration_data(old_name), uscc=uscc, name=old_name)
    rename = accepted(
        "registration_change",
        {"changed_on": "2022-01-01", "changes": [{"item": "name", "after": new_name}]},
        uscc=uscc,
        occurred_on=date(2022, 1, 1),
        name=old_name,
    )
    # Named by its former name (fine), by a stranger's name (a finding); with
    # half-width brackets for full-width ones (fine).
    by_former = accepted("administrative_penalty", penalty_data("质罚1"), uscc=uscc, name=old_name)
    by_stranger = accepted(
        "administrative_penalty", penalty_data("质罚2"), uscc=uscc, name="重庆别家有限公司"
    )
    long_listed = accepted(
        "abnormal_operation_listing",
        listing_data("质列1") | {"decided_on": "2020-03-01"},
        uscc=uscc,
        occurred_on=date(2020, 3, 1),
        name=new_name,
    )
    shared_a = accepted(
        "administrative_license",
        {"licence": "x"},
        uscc=uscc,
        source_id=shared_source,
        department="CQ-HEALTH",
        name=new_name,
    )
    shared_b = accepted(
        "administrative_penalty",
        penalty_data("质罚3"),
        uscc=uscc,
        source_id=shared_source,
        department="CQ-TAX",
        name=new_name.replace("（", "(").replace("）", ")"),
    )
    doomed_registration = accepted(
        "registration", registration_data("重庆质检撤销有限公司"), uscc=revoked_uscc
    )
    await produce(
        records_producer,
        registration,
        rename,
        by_former,
        by_stranger,
        long_listed,
        shared_a,
        shared_b,
    )
    await produce(records_producer, doomed_registration, revoked(doomed_registration))

    async def all_in() -> bool:
        response = await ledger.get(f"/v1/enterprises/{uscc}", headers=reader)
        other = await ledger.get(f"/v1/enterprises/{revoked_uscc}", headers=reader)
        return (
            response.is_success
            and sum(response.json()["record_counts"].values()) == 7
            and other.is_success
            and other.json()["registered"] is False
        )

    await eventually(all_in, what="the enterprises and their records")
    report = await _get(ledger, "/v1/quality", reader, limit=1000)
    findings = report["items"]

    def of(check: str) -> list[dict[str, Any]]:
        return [f for f in findings if f["check"] == check]

    mismatched = {f["record_id"] for f in of("name_mismatch") if f["uscc"] == uscc}
    assert mismatched == {str(by_stranger.data["record_id"])}
    shared = [f for f in of("duplicate_source_id") if f["source_id"] == shared_source]
    assert [(f["departments"], f["records"]) for f in shared] == [(["CQ-HEALTH", "CQ-TAX"], 2)]
    assert revoked_uscc in {f["uscc"] for f in of("registration_revoked")}
    due = [f for f in of("abnormal_over_three_years") if f["uscc"] == uscc]
    assert [f["since"] for f in due] == ["2020-03-01"]
    for check, found in report["counts"].items():
        assert found >= len(of(check))

    only = await _get(ledger, "/v1/quality", reader, check="duplicate_source_id")
    assert set(only["counts"]) == {"duplicate_source_id"}
    assert {f["check"] for f in only["items"]} <= {"duplicate_source_id"}
    capped = await _get(ledger, "/v1/quality", reader, limit=1)
    assert all(
        len([f for f in capped["items"] if f["check"] == check]) <= 1 for check in capped["counts"]
    )
