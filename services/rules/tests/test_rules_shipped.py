"""The shipped catalogue, situation by situation: enterprises in each
situation it knows, then every scenario's answer and explanation through the
credit-check API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest
from rules_testkit import FakeClock, RunningRules, new_uscc, rules_app, snapshot
from sqlalchemy import select

from ecips_rules.models import Enterprise

TODAY = date(2026, 3, 2)


@dataclass
class Situation:
    name: str
    fields: dict[str, Any]
    # rule id -> (since, until) of what applies today
    applies: dict[str, tuple[str, str | None]]
    next_evaluation_on: date | None = None
    uscc: str = field(default_factory=new_uscc)


def listed(flag: str, since: str) -> dict[str, Any]:
    return {flag: True, f"{flag}_since": since, f"{flag}_reason": "测试"}


SITUATIONS = [
    Situation("clean, young, nothing on record", {"established_on": "2024-05-01"}, {}),
    Situation(
        "trustworthy: in business since 2015, commended, nothing adverse",
        {"record_counts": {"registration": 1, "commendation": 1}},
        {"trustworthy_enterprise_incentives": ("2018-03-02", None)},
    ),
    Situation(
        "commended but not yet three years in business",
        {"established_on": "2024-05-01", "record_counts": {"commendation": 2}},
        {},
        next_evaluation_on=date(2027, 5, 2),
    ),
    Situation(
        "commended, but a penalty last year",
        {
            "record_counts": {"commendation": 1, "administrative_penalty": 1},
            "penalty_counts_by_year": {"2025": 1},
        },
        {},
        # The figures change by themselves each New Year's Day (last year's penalty
        # becomes the year before's; it leaves "the last three years" in 2029).
        next_evaluation_on=date(2027, 1, 1),
    ),
    Situation(
        "commended, deregistered",
        {"record_counts": {"commendation": 1}, "status": "注销", "status_code": "deregistered"},
        {},
    ),
    Situation(
        "serious illegal list",
        {"flags": listed("serious_illegal", "2025-04-01")},
        {"serious_illegal_dishonest": ("2025-04-01", None)},
    ),
    Situation(
        "abnormal operation list, listed last year",
        {"flags": listed("abnormal_operation", "2025-06-01")},
        {"abnormal_operation_list": ("2025-06-01", None)},
        next_evaluation_on=date(2028, 6, 2),
    ),
    Situation(
        "abnormal operation list for more than three years",
        {"flags": listed("abnormal_operation", "2023-01-10")},
        {
            "abnormal_operation_list": ("2023-01-10", None),
            "abnormal_operation_three_years": ("2026-01-11", None),
        },
    ),
    Situation(
        "abnormal for three years and since moved to the serious illegal list",
        {
            "flags": {
                **listed("abnormal_operation", "2023-01-10"),
                **listed("serious_illegal", "2026-02-01"),
            }
        },
        {
            "abnormal_operation_list": ("2023-01-10", None),
            "serious_illegal_dishonest": ("2026-02-01", None),
        },
    ),
    Situation(
        "major tax violation, published 2024",
        {"flags": listed("major_tax_violation", "2024-05-10")},
        {"major_tax_violation": ("2024-05-10", "2027-05-09")},
        next_evaluation_on=date(2027, 5, 10),
    ),
    Situation(
        "major tax violation published more than three years ago",
        {"flags": listed("major_tax_violation", "2022-03-01")},
        {},
    ),
    Situation(
        "dishonest judgment debtor",
        {"flags": listed("dishonest_judgment_debtor", "2025-11-20")},
        {"dishonest_judgment_debtor": ("2025-11-20", None)},
    ),
    Situation(
        "three penalties last year",
        {
            "record_counts": {"administrative_penalty": 3},
            "penalty_counts_by_year": {"2025": 3},
        },
        {"repeated_penalties_in_one_year": ("2026-03-02", None)},
        next_evaluation_on=date(2027, 1, 1),
    ),
    Situation(
        "three penalties over two years",
        {
            "record_counts": {"administrative_penalty": 3},
            "penalty_counts_by_year": {"2025": 2, "2026": 1},
        },
        {},
        next_evaluation_on=date(2027, 1, 1),
    ),
]


@pytest.fixture(scope="module")
async def rules(rules_database_url: str) -> AsyncIterator[RunningRules]:
    async with rules_app(rules_database_url, FakeClock(TODAY)) as running:
        for situation in SITUATIONS:
            await running.apply(snapshot(situation.uscc, 1, **situation.fields))
        yield running


async def test_every_scenario_answers_with_its_explanation(rules: RunningRules) -> None:
    catalogue = (await rules.client.get("/v1/rules")).json()
    assert catalogue["version"] == "1"
    rules_by_id = {r["id"]: r for r in catalogue["items"]}
    departments = {d["code"]: d["name"] for d in catalogue["departments"]}
    unknown = new_uscc()
    usccs = [s.uscc for s in SITUATIONS] + [unknown]
    for scenario in catalogue["scenarios"]:
        key, incentive = scenario["key"], scenario["kind"] == "incentive"
        response = await rules.client.post("/v1/checks", json={"scenario": key, "usccs": usccs})
        assert response.status_code == 200, response.text
        answers = response.json()["items"]
        assert [a["uscc"] for a in answers] == usccs
        for situation, answer in zip(SITUATIONS, answers, strict=False):
            where = f"{situation.name} / {key}"
            assert answer["known"] is True, where
            assert answer["scenario_kind"] == scenario["kind"], where
            assert answer["catalogue_version"] == "1", where
            expected: dict[str, list[tuple[str, str, str, str | None]]] = {
                "punishment": [],
                "incentive": [],
            }
            for rule_id, (since, until) in situation.applies.items():
                rule = rules_by_id[rule_id]
                for measure in rule["measures"]:
                    if key in measure["scenarios"]:
                        expected[rule["kind"]].append((rule_id, measure["key"], since, until))
            for kind, listed_as in (("punishment", "restrictions"), ("incentive", "benefits")):
                got = answer[listed_as]
                assert sorted(
                    (g["rule_id"], g["measure"], g["since"], g["until"]) for g in got
                ) == sorted(expected[kind]), where
                # Each item explains itself from the catalogue.
                for item in got:
                    rule = rules_by_id[item["rule_id"]]
                    (measure,) = [m for m in rule["measures"] if m["key"] == item["measure"]]
                    assert item["rule_title"] == rule["title"], where
                    assert item["title"] == measure["title"], where
                    assert item["department"] == measure["department"], where
                    assert item["department_name"] == departments[measure["department"]], where
                    assert item["legal_basis"] == measure["legal_basis"], where
            blocked = bool(expected["punishment"])
            granted = bool(expected["incentive"])
            assert answer["allowed"] is (not blocked and (granted or not incentive)), where
        stranger = answers[-1]
        assert stranger["known"] is False
        assert stranger["allowed"] is (not incentive)
        assert stranger["restrictions"] == stranger["benefits"] == []


async def test_some_answers_spelled_out(rules: RunningRules) -> None:
    """A few answers written out in full, independently of the catalogue file."""
    serious = next(s for s in SITUATIONS if s.name == "serious illegal list").uscc
    answer = (
        await rules.client.get(f"/v1/checks/{serious}", params={"scenario": "public_bidding"})
    ).json()
    assert answer["allowed"] is False
    assert {(r["measure"], r["department"]) for r in answer["restrictions"]} == {
        ("restrict_public_resource_trading", "CQ-PRT"),
        ("restrict_construction_bidding", "CQ-HURD"),
    }
    tax = next(s for s in SITUATIONS if s.name == "major tax violation, published 2024").uscc
    answer = (
        await rules.client.get(f"/v1/checks/{tax}", params={"scenario": "government_procurement"})
    ).json()
    (restriction,) = answer["restrictions"]
    assert restriction["department"] == "CQ-FIN"
    assert restriction["department_name"] == "重庆市财政局"
    assert "政府采购法" in restriction["legal_basis"]
    assert (restriction["since"], restriction["until"]) == ("2024-05-10", "2027-05-09")
    debtor = next(s for s in SITUATIONS if s.name == "dishonest judgment debtor").uscc
    answer = (
        await rules.client.get(f"/v1/checks/{debtor}", params={"scenario": "high_consumption"})
    ).json()
    assert [(r["rule_id"], r["department"]) for r in answer["restrictions"]] == [
        ("dishonest_judgment_debtor", "CQ-COURT")
    ]
    trustworthy = SITUATIONS[1].uscc
    answer = (
        await rules.client.get(f"/v1/checks/{trustworthy}", params={"scenario": "green_channel"})
    ).json()
    assert answer["allowed"] is True
    assert [(b["measure"], b["department"]) for b in answer["benefits"]] == [
        ("green_channel", "CQ-BIGDATA")
    ]


async def test_each_enterprise_knows_when_to_look_again(rules: RunningRules) -> None:
    async with rules.database.read_only() as session:
        rows = dict(
            (
                await session.execute(
                    select(Enterprise.uscc, Enterprise.next_evaluation_on).where(
                        Enterprise.uscc.in_([s.uscc for s in SITUATIONS])
                    )
                )
            ).all()
        )
    for situation in SITUATIONS:
        assert rows[situation.uscc] == situation.next_evaluation_on, situation.name
