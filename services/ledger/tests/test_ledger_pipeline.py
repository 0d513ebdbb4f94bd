"""ingest -> records topic -> ledger, over the real broker: what a
department submits to ingest shows up, filed, in the ledger's API."""

from __future__ import annotations

from typing import Any

import httpx
from ledger_support import SAMR, eventually, random_uscc

from ecips.testkit import SigningKeys


def _registration(uscc: str, name: str) -> dict[str, Any]:
    return {
        "category": "registration",
        "source_id": f"REG-{uscc}",
        "uscc": uscc,
        "enterprise_name": name,
        "occurred_on": "2024-03-01",
        "data": {
            "name": name,
            "legal_representative": "张三",
            "enterprise_type": "有限责任公司（自然人投资或控股）",
            "registered_capital": {"value": "5000000", "currency": "CNY"},
            "established_on": "2024-03-01",
            "address": "重庆市渝中区解放碑民族路188号",
            "business_scope": "许可项目：餐饮服务。一般项目：食品销售（仅销售预包装食品）",
            "registration_authority": "重庆市渝中区市场监督管理局",
        },
    }


def _penalty(uscc: str, source_id: str, fine: str) -> dict[str, Any]:
    return {
        "category": "administrative_penalty",
        "source_id": source_id,
        "uscc": uscc,
        "enterprise_name": "重庆山城火锅餐饮有限公司",
        "occurred_on": "2025-06-10",
        "data": {
            "decision_number": source_id,
            "authority": "重庆市渝中区市场监督管理局",
            "violation_type": "食品安全",
            "facts": "经营超过保质期的食品原料",
            "penalty_kinds": ["警告", "罚款"],
            "content": "警告，并处罚款",
            "fine": {"value": fine, "currency": "CNY"},
            "decided_on": "2025-06-10",
        },
    }


async def test_submitted_to_ingest_appears_in_ledger(
    ingest: httpx.AsyncClient, ledger: httpx.AsyncClient, ledger_keys: SigningKeys
) -> None:
    writer = ledger_keys.headers(SAMR, "records:write")
    reader = ledger_keys.headers(SAMR, "ledger:read")
    uscc = random_uscc()
    name = "重庆山城火锅餐饮有限公司"

    response = await ingest.post("/v1/records", json=_registration(uscc, name), headers=writer)
    assert response.status_code == 202, response.text
    source_id = f"渝中市监罚〔2025〕{uscc[-6:]}号"
    response = await ingest.post(
        "/v1/records", json=_penalty(uscc, source_id, "20000"), headers=writer
    )
    assert response.status_code == 202, response.text
    penalty_id = response.json()["record_id"]

    async def filed() -> dict[str, Any] | None:
        got = await ledger.get(f"/v1/enterprises/{uscc}", headers=reader)
        if got.status_code != 200:
            return None
        body: dict[str, Any] = got.json()
        return body if body["record_counts"].get("administrative_penalty") == 1 else None

    enterprise = await eventually(filed, what="registration and penalty in the ledger")
    assert enterprise["name"] == name
    assert enterprise["registered"] is True
    assert enterprise["status"] == "存续"
    assert enterprise["status_code"] == "active"
    assert enterprise["registered_capital"] == "500万元人民币"
    assert enterprise["division_code"] == "500103"
    assert enterprise["record_counts"] == {"registration": 1, "administrative_penalty": 1}

    # A correction (same source_id, new content) becomes revision 2; then a revocation.
    response = await ingest.post(
        "/v1/records", json=_penalty(uscc, source_id, "30000"), headers=writer
    )
    assert response.status_code == 202, response.text
    assert response.json()["revision"] == 2
    response = await ingest.post(
        f"/v1/records/{penalty_id}/revocation", json={"reason": "复议撤销"}, headers=writer
    )
    assert response.status_code == 200, response.text

    async def revoked_penalty() -> dict[str, Any] | None:
        got = await ledger.get(
            f"/v1/enterprises/{uscc}/records",
            params={"category": "administrative_penalty"},
            headers=reader,
        )
        assert got.status_code == 200, got.text
        items = got.json()["items"]
        return items[0] if items and items[0]["status"] == "revoked" else None

    record = await eventually(revoked_penalty, what="the revocation in the ledger")
    assert record["record_id"] == penalty_id
    assert record["revision"] == 2
    assert record["revocation_reason"] == "复议撤销"
    assert record["data"]["fine"]["value"] == "30000"
    assert [r["revision"] for r in record["revisions"]] == [1, 2]
    assert record["revisions"][0]["data"]["fine"]["value"] == "20000"

    enterprise = (await ledger.get(f"/v1/enterprises/{uscc}", headers=reader)).json()
    assert "administrative_penalty" not in enterprise["record_counts"]
