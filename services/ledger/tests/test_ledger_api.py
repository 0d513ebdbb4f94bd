"""The ledger's read API: authorization, problems, audit, paging and the change feed."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from ledger_support import (
    SAMR,
    accepted,
    eventually,
    penalty_data,
    produce,
    random_registration_number,
    random_uscc,
    registration_data,
)

from ecips.testkit import SigningKeys


async def test_token_and_scope_are_required(
    ledger: httpx.AsyncClient, ledger_keys: SigningKeys
) -> None:
    uscc = random_uscc()
    for path in (f"/v1/enterprises/{uscc}", f"/v1/enterprises/{uscc}/records", "/v1/audit"):
        response = await ledger.get(path)
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        response = await ledger.get(path, headers=ledger_keys.headers(SAMR, "records:write"))
        assert response.status_code == 403, path
        assert response.json()["code"] == "insufficient_scope"
    response = await ledger.get("/v1/changes")
    assert response.status_code == 401
    response = await ledger.get("/v1/changes", headers=ledger_keys.headers(SAMR, "records:write"))
    assert response.status_code == 403


async def test_unknown_and_malformed_uscc(
    ledger: httpx.AsyncClient, ledger_keys: SigningKeys
) -> None:
    headers = ledger_keys.headers(SAMR, "ledger:read")
    response = await ledger.get(f"/v1/enterprises/{random_uscc()}", headers=headers)
    assert response.status_code == 404
    assert response.json()["code"] == "enterprise_not_found"
    for bad in ("91500000MA5U0F8X2", "91500000MA5U0F8X2Z", "not-a-uscc"):
        for suffix in ("", "/records"):
            response = await ledger.get(f"/v1/enterprises/{bad}{suffix}", headers=headers)
            assert response.status_code == 422, response.text
            assert response.json()["errors"][0]["field"] == "uscc"
    uscc = random_uscc()
    response = await ledger.get(
        f"/v1/enterprises/{uscc}/records", params={"after": "garbage"}, headers=headers
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "after"
    response = await ledger.get(
        f"/v1/enterprises/{uscc}/records", params={"from": "2025-13-01"}, headers=headers
    )
    assert response.status_code == 422
    response = await ledger.get(
        f"/v1/enterprises/{uscc}/records",
        params={"from": "2025-02-01", "to": "2025-01-01"},
        headers=headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "from"


async def test_records_are_filtered_and_paged(
    ledger: httpx.AsyncClient, ledger_keys: SigningKeys, records_producer: AIOKafkaProducer
) -> None:
    headers = ledger_keys.headers(SAMR, "ledger:read")
    uscc = random_uscc()
    penalties = [
        accepted(
            "administrative_penalty",
            penalty_data(f"罚{i}"),
            uscc=uscc,
            occurred_on=date(2025, 1, i),
        )
        for i in range(1, 6)
    ]
    await produce(
        records_producer,
        accepted("registration", registration_data("重庆分页有限公司"), uscc=uscc),
        *penalties,
    )

    async def all_filed() -> dict[str, Any] | None:
        response = await ledger.get(f"/v1/enterprises/{uscc}", headers=headers)
        if response.status_code != 200:
            return None
        body: dict[str, Any] = response.json()
        return body if body["record_counts"].get("administrative_penalty") == 5 else None

    await eventually(all_filed, what="five penalties filed")
    seen: list[str] = []
    params: dict[str, Any] = {"category": "administrative_penalty", "limit": 2}
    while True:
        page = (
            await ledger.get(f"/v1/enterprises/{uscc}/records", params=params, headers=headers)
        ).json()
        assert page["total"] == 5
        seen.extend(item["occurred_on"] for item in page["items"])
        if page["next_cursor"] is None:
            break
        params["after"] = page["next_cursor"]
    assert seen == [f"2025-01-0{i}" for i in range(5, 0, -1)]

    window = (
        await ledger.get(
            f"/v1/enterprises/{uscc}/records",
            params={"from": "2025-01-02", "to": "2025-01-03"},
            headers=headers,
        )
    ).json()
    assert window["total"] == 2
    assert {item["occurred_on"] for item in window["items"]} == {"2025-01-02", "2025-01-03"}


async def test_reads_are_audited_per_department(
    ledger: httpx.AsyncClient, ledger_keys: SigningKeys
) -> None:
    uscc = random_uscc()
    await ledger.get(
        f"/v1/enterprises/{uscc}", headers=ledger_keys.headers("CQ-TAX", "ledger:read")
    )
    await ledger.get(
        f"/v1/enterprises/{uscc}/records", headers=ledger_keys.headers("CQ-FIN", "ledger:read")
    )

    own = (
        await ledger.get(
            "/v1/audit", params={"uscc": uscc}, headers=ledger_keys.headers("CQ-TAX", "ledger:read")
        )
    ).json()
    assert [(e["department"], e["path"]) for e in own["items"]] == [
        ("CQ-TAX", f"/v1/enterprises/{uscc}")
    ]
    assert own["items"][0]["subject"] == "department:CQ-TAX"

    everyone = (
        await ledger.get(
            "/v1/audit",
            params={"uscc": uscc},
            headers=ledger_keys.headers("CQ-NDRC", "reports:read"),
        )
    ).json()
    assert [e["department"] for e in everyone["items"]] == ["CQ-FIN", "CQ-TAX"]


async def test_change_feed_is_ordered_and_resumable(
    ledger: httpx.AsyncClient, ledger_keys: SigningKeys, records_producer: AIOKafkaProducer
) -> None:
    headers = ledger_keys.headers("CQ-NDRC", "changes:read")
    uscc = random_uscc()
    registration = accepted("registration", registration_data("重庆变更流有限公司"), uscc=uscc)
    penalty = accepted("administrative_penalty", penalty_data("罚8"), uscc=uscc)
    await produce(records_producer, registration, penalty)

    async def own_events() -> list[dict[str, Any]] | None:
        events: list[dict[str, Any]] = []
        cursor = 0
        while True:
            response = await ledger.get(
                "/v1/changes", params={"after": cursor, "limit": 50}, headers=headers
            )
            assert response.status_code == 200, response.text
            page = response.json()
            if not page["items"]:
                break
            events.extend(page["items"])
            cursor = page["next_cursor"]
        mine = [e for e in events if e["subject"] == uscc]
        return mine if len(mine) == 4 else None

    mine = await eventually(own_events, what="the enterprise's four ledger events")
    assert [e["type"] for e in mine] == [
        "ecips.record.filed",
        "ecips.enterprise.changed",
        "ecips.record.filed",
        "ecips.enterprise.changed",
    ]
    sequences = [e["sequence"] for e in mine]
    assert sequences == sorted(sequences)
    assert [e["data"]["version"] for e in mine if e["type"] == "ecips.enterprise.changed"] == [1, 2]
    assert mine[-1]["data"]["record_counts"] == {"registration": 1, "administrative_penalty": 1}

    resumed = (
        await ledger.get(
            "/v1/changes", params={"after": sequences[1], "limit": 1000}, headers=headers
        )
    ).json()
    assert resumed["items"][0]["sequence"] > sequences[1]
    assert [e["id"] for e in resumed["items"] if e["subject"] == uscc] == [
        e["id"] for e in mine[2:]
    ]


async def test_many_enterprises_are_looked_up_at_once_and_each_read_is_audited(
    ledger: httpx.AsyncClient, ledger_keys: SigningKeys, records_producer: AIOKafkaProducer
) -> None:
    known, unknown = random_uscc(), random_uscc()
    number, other_number = random_registration_number(), random_registration_number()
    await produce(
        records_producer,
        accepted(
            "registration",
            registration_data("重庆批查有限公司", registration_number=number),
            uscc=known,
        ),
    )
    headers = ledger_keys.headers("CQ-TAX", "ledger:read")

    async def found() -> dict[str, Any] | None:
        response = await ledger.post(
            "/v1/enterprises/lookup",
            json={"usccs": [known, unknown], "registration_numbers": [number, other_number]},
            headers=headers,
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body if body["items"] else None

    body = await eventually(found, what="the registered enterprise in a lookup")
    assert [e["uscc"] for e in body["items"]] == [known]
    assert body["items"][0]["name"] == "重庆批查有限公司"
    assert body["registration_numbers"] == {number: known}

    audit = (await ledger.get("/v1/audit", params={"uscc": unknown}, headers=headers)).json()[
        "items"
    ]
    assert audit and {(e["department"], e["path"]) for e in audit} == {
        ("CQ-TAX", "/v1/enterprises/lookup")
    }

    bad = await ledger.post(
        "/v1/enterprises/lookup",
        json={"usccs": [known, "not-a-uscc"], "registration_numbers": ["12"]},
        headers=headers,
    )
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["errors"]] == ["usccs.1", "registration_numbers.0"]
    too_many = await ledger.post(
        "/v1/enterprises/lookup", json={"usccs": [known] * 1001}, headers=headers
    )
    assert too_many.status_code == 422
    assert (
        await ledger.post(
            "/v1/enterprises/lookup",
            json={"usccs": [known]},
            headers=ledger_keys.headers("CQ-TAX", "records:write"),
        )
    ).status_code == 403
