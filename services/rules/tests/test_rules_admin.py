"""Managing the catalogue: a rule change as a new version, its dry run, its
enactment — whose emitted differences must equal the dry run's exactly —
and every version kept."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import pytest
from rules_testkit import FakeClock, RunningRules, eventually, new_uscc, rules_app, snapshot

from ecips_rules.models import CatalogueJob

TODAY = date(2026, 3, 2)

NEW_RULE = {
    "id": "tax_arrears_outstanding",
    "title": "欠缴税款的企业不予评先评优",
    "kind": "punishment",
    "condition": "enterprise.record_counts.tax_arrears > 0",
    "duration": {"type": "while_condition"},
    "legal_basis": "《中华人民共和国税收征收管理法》",
    "measures": [
        {
            "key": "revoke_honorary_titles",
            "title": "不予授予荣誉称号",
            "scenarios": ["honorary_title"],
            "department": "CQ-NDRC",
            "legal_basis": "《中华人民共和国税收征收管理法》",
        }
    ],
}


def listed(flag: str, since: str) -> dict[str, Any]:
    return {flag: True, f"{flag}_since": since}


@pytest.fixture(scope="module")
async def rules(rules_database_url: str) -> AsyncIterator[RunningRules]:
    async with rules_app(
        rules_database_url, FakeClock(TODAY), reevaluation_chunk_size=3
    ) as running:
        yield running


async def job_done(rules: RunningRules, job_id: str) -> dict[str, Any]:
    async def get() -> dict[str, Any]:
        response = await rules.client.get(f"/v1/catalogue/jobs/{job_id}", headers=rules.admin())
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    job = await eventually(get, lambda j: j["status"] != "running")
    assert job["status"] == "done", job
    return job


async def all_changes(rules: RunningRules, job_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    after = 0
    while True:
        response = await rules.client.get(
            f"/v1/catalogue/jobs/{job_id}/changes",
            params={"after": after, "limit": 2},
            headers=rules.admin(),
        )
        assert response.status_code == 200, response.text
        page = response.json()
        if not page["items"]:
            return found
        found += page["items"]
        after = page["next_cursor"]


def as_difference(item: dict[str, Any]) -> tuple[Any, ...]:
    """A job change or an emitted event, reduced to what both state."""
    if item.get("type") == "ecips.punishment.triggered" or item.get("action") == "triggered":
        data = item.get("data", item)
        return (
            data["uscc"],
            data["rule_id"],
            data["rule_version"],
            "triggered",
            data["since"],
            data["until"],
        )
    data = item.get("data", item)
    return (data["uscc"], data["rule_id"], data["rule_version"], "lifted", data["reason"])


async def test_managing_the_catalogue_needs_the_admin_scope(rules: RunningRules) -> None:
    response = await rules.client.get("/v1/catalogue/versions")
    assert response.status_code == 401
    other = rules.keys.headers("CQ-FIN", "tasks:handle")
    response = await rules.client.post(
        "/v1/catalogue/versions", json={"note": "x", "changes": {}}, headers=other
    )
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"


async def test_a_bad_rule_is_refused_naming_rule_and_field(rules: RunningRules) -> None:
    bad = {**NEW_RULE, "condition": "enterprise.record_counts.tax > 0"}
    response = await rules.client.post(
        "/v1/catalogue/versions",
        json={"note": "typo", "changes": {"upsert": [bad]}},
        headers=rules.admin(),
    )
    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert error["field"] == "changes.upsert[0].condition"
    assert error["code"] == "invalid_condition"
    assert "tax_arrears_outstanding" in error["message"]
    assert "enterprise.record_counts.tax" in error["message"]
    response = await rules.client.post(
        "/v1/catalogue/versions",
        json={"note": "x", "changes": {"withdraw": ["no_such_rule"]}},
        headers=rules.admin(),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "changes.withdraw[0]"
    response = await rules.client.post(
        "/v1/catalogue/versions", json={"note": "nothing", "changes": {}}, headers=rules.admin()
    )
    assert response.status_code == 409
    assert response.json()["code"] == "no_change"


async def test_dry_run_then_enactment_emits_exactly_the_dry_run(rules: RunningRules) -> None:
    abnormal = [new_uscc() for _ in range(3)]
    owing, repeated, serious, clean = new_uscc(), new_uscc(), new_uscc(), new_uscc()
    for uscc in abnormal:
        await rules.apply(snapshot(uscc, 1, flags=listed("abnormal_operation", "2025-06-01")))
    await rules.apply(snapshot(owing, 1, record_counts={"tax_arrears": 1}))
    await rules.apply(
        snapshot(
            repeated,
            1,
            record_counts={"administrative_penalty": 3},
            penalty_counts_by_year={"2025": 3},
        )
    )
    await rules.apply(snapshot(serious, 1, flags=listed("serious_illegal", "2025-01-01")))
    await rules.apply(snapshot(clean, 1))

    catalogue = (await rules.client.get("/v1/rules")).json()
    abnormal_rule = next(r for r in catalogue["items"] if r["id"] == "abnormal_operation_list")
    # Revised: no more extra inspections for the abnormal list.
    revised = {
        **abnormal_rule,
        "measures": [m for m in abnormal_rule["measures"] if m["key"] != "increased_inspections"],
    }
    del revised["version"]
    response = await rules.client.post(
        "/v1/catalogue/versions",
        json={
            "note": "欠税企业不予评先评优；经营异常名录不再提高抽查频次；取消一年三罚规则",
            "changes": {
                "upsert": [NEW_RULE, revised],
                "withdraw": ["repeated_penalties_in_one_year"],
            },
        },
        headers=rules.admin(),
    )
    assert response.status_code == 201, response.text
    draft = response.json()
    assert (draft["number"], draft["status"], draft["based_on"]) == (2, "draft", 1)
    assert response.headers["location"] == "/v1/catalogue/versions/2"
    differences = {d["rule_id"]: d for d in draft["differences"]}
    assert differences["abnormal_operation_list"] == {
        "rule_id": "abnormal_operation_list",
        "change": "revised",
        "from_version": 2,
        "to_version": 3,
    }
    assert differences["tax_arrears_outstanding"]["change"] == "added"
    assert differences["repeated_penalties_in_one_year"]["change"] == "withdrawn"
    assert differences["serious_illegal_dishonest"]["change"] == "unchanged"

    # Nothing applies before a dry run and an enactment.
    response = await rules.client.post("/v1/catalogue/versions/2/enactment", headers=rules.admin())
    assert response.status_code == 409
    assert response.json()["code"] == "dry_run_required"
    honours = await rules.client.get(f"/v1/checks/{owing}", params={"scenario": "honorary_title"})
    assert honours.json()["allowed"] is True

    response = await rules.client.post("/v1/catalogue/versions/2/dry-runs", headers=rules.admin())
    assert response.status_code == 202, response.text
    dry_run = await job_done(rules, response.json()["job_id"])
    assert dry_run["evaluated"] == 7
    summary = dry_run["summary"]
    assert summary["newly_restricted"] == 1
    assert [e["uscc"] for e in summary["examples"]["newly_restricted"]] == [owing]
    # Released: the abnormal ones from extra inspections, the repeated one from its rule.
    assert summary["released"] == 4
    assert {e["uscc"] for e in summary["examples"]["released"]} == {*abnormal, repeated}
    assert summary["by_rule"] == {
        "abnormal_operation_list": {"lifted": 3, "triggered": 3},
        "tax_arrears_outstanding": {"triggered": 1},
        "repeated_penalties_in_one_year": {"lifted": 1},
    }
    planned = await all_changes(rules, dry_run["job_id"])
    assert len(planned) == 8
    assert all(c["uscc"] not in (serious, clean) for c in planned)

    events_before = len(await rules.events())
    response = await rules.client.post("/v1/catalogue/versions/2/enactment", headers=rules.admin())
    assert response.status_code == 202, response.text
    enactment = await job_done(rules, response.json()["job_id"])
    assert enactment["matches_dry_run"] is True
    assert enactment["dry_run_job_id"] == dry_run["job_id"]
    assert enactment["summary"]["by_rule"] == summary["by_rule"]
    made = await all_changes(rules, enactment["job_id"])
    emitted = (await rules.events())[events_before:]
    assert sorted(map(as_difference, emitted)) == sorted(map(as_difference, planned))
    assert sorted(map(as_difference, made)) == sorted(map(as_difference, planned))
    assert {e["data"]["catalogue_version"] for e in emitted} == {"2"}

    # In force now, and the checks (cached or not) follow.
    assert (await rules.client.get("/v1/rules")).json()["version"] == "2"
    honours = await eventually(
        lambda: rules.client.get(f"/v1/checks/{owing}", params={"scenario": "honorary_title"}),
        lambda r: r.json()["allowed"] is False,
    )
    assert honours.json()["restrictions"][0]["rule_id"] == "tax_arrears_outstanding"
    assert honours.json()["catalogue_version"] == "2"
    # New snapshots are evaluated under version 2.
    newcomer = new_uscc()
    (event,) = await rules.apply(snapshot(newcomer, 1, record_counts={"tax_arrears": 2}))
    assert event.catalogue_version == "2"  # type: ignore[attr-defined]

    # Every version kept.
    versions = (await rules.client.get("/v1/catalogue/versions", headers=rules.admin())).json()
    assert versions["in_force"] == 2
    assert [(v["number"], v["status"]) for v in versions["items"]] == [
        (2, "enacted"),
        (1, "superseded"),
    ]
    first = (await rules.client.get("/v1/catalogue/versions/1", headers=rules.admin())).json()
    assert "repeated_penalties_in_one_year" in {r["id"] for r in first["document"]["rules"]}
    second = (await rules.client.get("/v1/catalogue/versions/2", headers=rules.admin())).json()
    assert [j["kind"] for j in second["jobs"]] == ["dry_run", "enactment"]
    response = await rules.client.post("/v1/catalogue/versions/2/enactment", headers=rules.admin())
    assert response.status_code == 409
    assert response.json()["code"] == "not_a_draft"
    response = await rules.client.get("/v1/catalogue/versions/9", headers=rules.admin())
    assert response.status_code == 404


async def test_an_interrupted_job_is_taken_over(rules: RunningRules) -> None:
    """A job whose process stopped (no heartbeat for minutes) is picked up on
    the scheduler's beat: the enactment runs to the end, the dry run is failed."""
    in_force = (await rules.client.get("/v1/rules")).json()["version"]
    long_ago = rules.clock() - timedelta(minutes=10)
    ids = {"enactment": uuid.uuid4(), "dry_run": uuid.uuid4()}
    async with rules.database.unit_of_work() as uow:
        for kind, job_id in ids.items():
            uow.session.add(
                CatalogueJob(
                    job_id=job_id,
                    kind=kind,
                    catalogue_number=int(in_force),
                    status="running",
                    as_of=TODAY,
                    requested_by="CQ-NDRC/a process that stopped",
                    started_at=long_ago,
                    heartbeat_at=long_ago,
                    evaluated=0,
                    summary={},
                )
            )
    enactment = await job_done(rules, str(ids["enactment"]))
    assert enactment["evaluated"] > 0

    async def dry_run() -> dict[str, Any]:
        response = await rules.client.get(
            f"/v1/catalogue/jobs/{ids['dry_run']}", headers=rules.admin()
        )
        body: dict[str, Any] = response.json()
        return body

    failed = await eventually(dry_run, lambda j: j["status"] == "failed")
    assert "interrupted" in failed["error"]
