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


def test_tax_court_and_penalty_records_reach_the_credit_check(system: RunningSystem) -> None:
    """The lists kept outside the registration authority (重大税收违法失信,
    失信被执行人) and repeated penalties restrict through the shipped catalogue,
    from the departments' records alone."""
    samr = system.token("CQ-SAMR", "records:write")
    tax = system.token("CQ-TAX", "records:write")
    court = system.token("CQ-COURT", "records:write")
    uscc = new_uscc()
    name = "重庆渝北区诚达机电设备有限公司"
    this_year = time.gmtime().tm_year

    def record(category: str, source_id: str, on: str, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "category": category,
            "source_id": source_id,
            "uscc": uscc,
            "enterprise_name": name,
            "occurred_on": on,
            "data": data,
        }

    with httpx.Client(timeout=10) as http:
        ingest, rules = system.url("ingest"), system.url("rules")

        def submit(token: dict[str, str], body: dict[str, Any]) -> None:
            answer = http.post(f"{ingest}/v1/records", json=body, headers=token)
            assert answer.status_code == 202, answer.text

        def restricting(scenario: str) -> set[str]:
            answer = http.get(f"{rules}/v1/checks/{uscc}", params={"scenario": scenario})
            assert answer.status_code == 200, answer.text
            return {r["rule_id"] for r in answer.json()["restrictions"]}

        submit(
            samr,
            record(
                "registration",
                f"渝北市监设字〔2024〕{uscc[-6:]}号",
                "2024-03-01",
                {
                    "name": name,
                    "legal_representative": "周敏",
                    "enterprise_type": "有限责任公司（自然人投资或控股）",
                    "registered_capital": {"value": "1000000", "currency": "CNY"},
                    "established_on": "2024-03-01",
                    "address": "重庆市渝北区龙溪街道金山路18号",
                    "business_scope": "一般项目：机械设备销售；五金产品批发",
                    "registration_authority": "重庆市渝北区市场监督管理局",
                },
            ),
        )

        def known() -> bool:
            answer = http.get(
                f"{rules}/v1/checks/{uscc}", params={"scenario": "government_procurement"}
            )
            return answer.status_code == 200 and answer.json()["known"] is True

        eventually(known)
        assert restricting("government_procurement") == set()

        arrears = f"渝税欠〔{this_year}〕{uscc[-5:]}号"
        submit(
            tax,
            record(
                "tax_arrears",
                arrears,
                f"{this_year}-01-31",
                {
                    "tax_type": "增值税",
                    "amount": {"value": "860000", "currency": "CNY"},
                    "as_of": f"{this_year}-01-31",
                    "authority": "国家税务总局重庆市渝北区税务局",
                    "announcement_number": arrears,
                    "major_violation": True,
                },
            ),
        )
        eventually(lambda: "major_tax_violation" in restricting("government_procurement"))

        case = f"({this_year})渝01执{uscc[-4:]}号"
        submit(
            court,
            record(
                "judgment",
                case,
                f"{this_year}-02-10",
                {
                    "case_number": case,
                    "court": "重庆市第一中级人民法院",
                    "decided_on": f"{this_year}-02-10",
                    "kind": "失信被执行人",
                    "summary": "被执行人有履行能力而拒不履行生效法律文书确定的义务",
                },
            ),
        )
        eventually(lambda: "dishonest_judgment_debtor" in restricting("high_consumption"))

        for month in (1, 2, 3):
            number = f"渝北市监罚〔{this_year}〕{uscc[-4:]}{month}号"
            submit(
                samr,
                record(
                    "administrative_penalty",
                    number,
                    f"{this_year}-0{month}-15",
                    {
                        "decision_number": number,
                        "authority": "重庆市渝北区市场监督管理局",
                        "violation_type": "产品质量",
                        "facts": "销售不合格机电产品",
                        "penalty_kinds": ["警告"],
                        "content": "警告",
                        "decided_on": f"{this_year}-0{month}-15",
                    },
                ),
            )
        eventually(lambda: "repeated_penalties_in_one_year" in restricting("green_channel"))

        # The court records the debt paid: the listing and its measures end.
        submit(
            court,
            record(
                "judgment",
                f"{case}-履行",
                f"{this_year}-03-20",
                {
                    "case_number": case,
                    "court": "重庆市第一中级人民法院",
                    "decided_on": f"{this_year}-03-20",
                    "kind": "失信被执行人",
                    "performance": "全部履行",
                    "summary": "被执行人已全部履行生效法律文书确定的义务",
                },
            ),
        )
        eventually(lambda: "dishonest_judgment_debtor" not in restricting("high_consumption"))
        assert "major_tax_violation" in restricting("government_procurement")
