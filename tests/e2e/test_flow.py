"""End to end: the system started the way `make run` does (`ecips up`),
driven over HTTP only through the records flow; then stopped, started again
on the same data directory, and the data is found again."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.system import SERVICES, RunningSystem, eventually, new_uscc

pytestmark = pytest.mark.e2e


def listing(category: str, uscc: str, source_id: str, on: str) -> dict[str, Any]:
    return {
        "category": category,
        "source_id": source_id,
        "uscc": uscc,
        "enterprise_name": "重庆渝信建材贸易有限公司",
        "occurred_on": on,
        "data": {
            "decision_number": source_id,
            "authority": "重庆市市场监督管理局",
            "decided_on": on,
            "reason": "被列入经营异常名录届满3年仍未履行相关义务",
        },
    }


def test_records_flow_end_to_end(system: RunningSystem) -> None:
    samr = system.token("CQ-SAMR", "records:write")
    uscc = new_uscc()
    name = "重庆渝信建材贸易有限公司"
    with httpx.Client(timeout=10) as http:
        ingest, publicity = system.url("ingest"), system.url("publicity")
        rules, coordination = system.url("rules"), system.url("coordination")

        registration = {
            "category": "registration",
            "source_id": f"渝中市监设字〔2025〕{uscc[-6:]}号",
            "uscc": uscc,
            "enterprise_name": name,
            "occurred_on": "2025-02-14",
            "data": {
                "name": name,
                "legal_representative": "李四",
                "enterprise_type": "有限责任公司（自然人投资或控股）",
                "registered_capital": {"value": "2000000", "currency": "CNY"},
                "established_on": "2025-02-14",
                "address": "重庆市渝中区上清寺路9号",
                "business_scope": "一般项目：建筑材料销售；五金产品零售",
                "registration_authority": "重庆市渝中区市场监督管理局",
            },
        }
        posted = time.monotonic()
        response = http.post(f"{ingest}/v1/records", json=registration, headers=samr)
        assert response.status_code == 202, response.text

        def search(q: str) -> list[dict[str, Any]]:
            found = http.get(f"{publicity}/v1/search", params={"q": q})
            assert found.status_code == 200, found.text
            return [i for i in found.json()["items"] if i["uscc"] == uscc]

        eventually(lambda: search(uscc))
        print(f"registration public {time.monotonic() - posted:.3f} s after the POST")
        assert search("渝信建材")[0]["name"] == name

        penalty = {
            "category": "administrative_penalty",
            "source_id": f"渝市监罚〔2025〕{uscc[-5:]}号",
            "uscc": uscc,
            "enterprise_name": name,
            "occurred_on": "2025-08-01",
            "data": {
                "decision_number": f"渝市监罚〔2025〕{uscc[-5:]}号",
                "authority": "重庆市市场监督管理局",
                "violation_type": "产品质量",
                "facts": "销售不合格建筑材料",
                "penalty_kinds": ["罚款"],
                "content": "罚款人民币叁万元",
                "fine": {"value": "30000", "currency": "CNY"},
                "decided_on": "2025-08-01",
            },
        }
        receipt = http.post(f"{ingest}/v1/records", json=penalty, headers=samr).json()

        def public_penalties() -> list[dict[str, Any]]:
            items = http.get(
                f"{publicity}/v1/enterprises/{uscc}/records",
                params={"category": "administrative_penalty"},
            )
            return items.json()["items"] if items.status_code == 200 else []

        eventually(public_penalties)
        profile = http.get(f"{publicity}/v1/enterprises/{uscc}").json()
        sections = {s["key"]: s["count"] for s in profile["sections"]}
        assert sections["administrative_penalty"] == 1

        revoked = http.post(
            f"{ingest}/v1/records/{receipt['record_id']}/revocation",
            json={"reason": "行政复议决定撤销"},
            headers=samr,
        )
        assert revoked.status_code == 200, revoked.text
        eventually(lambda: public_penalties() == [])

        def check() -> dict[str, Any]:
            answer = http.get(
                f"{rules}/v1/checks/{uscc}", params={"scenario": "government_procurement"}
            )
            assert answer.status_code == 200, answer.text
            result: dict[str, Any] = answer.json()
            return result

        assert check()["allowed"] is True
        listed = http.post(
            f"{ingest}/v1/records",
            headers=samr,
            json=listing(
                "serious_illegal_listing", uscc, f"渝市监严列〔2025〕{uscc[-4:]}号", "2025-09-01"
            ),
        )
        assert listed.status_code == 202, listed.text
        restricted = eventually(lambda: (c := check())["allowed"] is False and c)
        restriction = restricted["restrictions"][0]
        assert restriction["rule_id"] and restriction["legal_basis"]
        assert restriction["department"]

        finance = system.token("CQ-FIN", "tasks:handle")

        def punishment_tasks(action: str) -> list[dict[str, Any]]:
            listed_tasks = http.get(
                f"{coordination}/v1/tasks",
                headers=finance,
                params={"type": "joint_punishment", "limit": 200},
            )
            assert listed_tasks.status_code == 200, listed_tasks.text
            return [
                t
                for t in listed_tasks.json()["items"]
                if t["uscc"] == uscc and t["action"] == action
            ]

        tasks = eventually(lambda: punishment_tasks("apply"))
        assert all(t["department"] == "CQ-FIN" for t in tasks)

        removed = http.post(
            f"{ingest}/v1/records",
            headers=samr,
            json=listing(
                "serious_illegal_removal", uscc, f"渝市监严移〔2025〕{uscc[-4:]}号", "2025-10-01"
            ),
        )
        assert removed.status_code == 202, removed.text
        eventually(lambda: check()["allowed"] is True)
        eventually(lambda: punishment_tasks("release"))

        # Authorization and validation over the wire.
        no_scope = system.token("CQ-SAMR", "ledger:read")
        assert http.post(f"{ingest}/v1/records", json=penalty, headers=no_scope).status_code == 403
        bad = dict(registration, uscc="91500103MA5U8DPE2X", source_id="bad-uscc")
        problem = http.post(f"{ingest}/v1/records", json=bad, headers=samr)
        assert problem.status_code == 422
        assert problem.json()["errors"][0]["field"] == "uscc"

        for service in SERVICES:
            assert http.get(f"{system.url(service)}/readyz").status_code == 200

    # Stop cleanly, start again on the same data directory: the data is still there.
    assert system.stop() == 0
    system.start()
    with httpx.Client(timeout=10) as http:
        found = http.get(f"{system.url('publicity')}/v1/search", params={"q": uscc}).json()
        assert [i["uscc"] for i in found["items"]] == [uscc]
        ledger = http.get(
            f"{system.url('ledger')}/v1/enterprises/{uscc}",
            headers=system.token("CQ-NDRC", "ledger:read"),
        )
        assert ledger.status_code == 200, ledger.text
        assert ledger.json()["name"] == name
