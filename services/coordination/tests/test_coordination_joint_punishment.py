"""Joint punishment tasks end to end: CloudEvents on the `punishments` topic
open tasks; departments list, claim and report back over REST; every change
leaves the service as a TaskChanged event (change feed and `coordination` topic).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from ecips.testkit import SigningKeys, new_signing_keys, running_app, service_settings_kwargs
from ecips_common.contracts import (
    COORDINATION_TOPIC,
    PUNISHMENTS_TOPIC,
    TOPIC_PARTITIONS,
    PunishmentLifted,
    PunishmentTriggered,
    TaskChanged,
)
from ecips_common.events import CloudEvent, source_uri
from ecips_common.identifiers import USCC_ALPHABET, make_uscc
from ecips_common.outbox import ensure_topics
from ecips_coordination.main import create_app
from ecips_coordination.settings import CoordinationSettings
from ecips_coordination.working_days import add_working_days, china_today

T = TypeVar("T")

FIN = "CQ-FIN"
PRT = "CQ-PRT"
NDRC = "CQ-NDRC"
TAX = "CQ-TAX"

MEASURES = [
    {
        "measure": "government_procurement_ban",
        "title": "限制参与政府采购",
        "scenarios": ["government_procurement"],
        "department": FIN,
        "legal_basis": "《政府采购法》第二十二条",
    },
    {
        "measure": "fiscal_subsidy_restriction",
        "title": "限制申请财政补贴",
        "scenarios": ["fiscal_subsidy"],
        "department": FIN,
        "legal_basis": "国发〔2016〕33号",
    },
    {
        "measure": "public_bidding_ban",
        "title": "限制参与工程招投标",
        "scenarios": ["public_bidding"],
        "department": PRT,
        "legal_basis": "《招标投标法实施条例》",
    },
    # The same (department, measure) twice in one event is still one task.
    {
        "measure": "public_bidding_ban",
        "title": "限制参与工程招投标",
        "scenarios": ["public_bidding"],
        "department": PRT,
        "legal_basis": "《招标投标法实施条例》",
    },
]


def new_uscc() -> str:
    body = "".join(secrets.choice(USCC_ALPHABET) for _ in range(8))
    return make_uscc(org_body=body, division="500103")


def triggered(
    uscc: str,
    *,
    rule_id: str = "serious_illegal_list",
    since: date = date(2026, 3, 2),
    rule_version: int = 1,
    measures: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return PunishmentTriggered(
        uscc=uscc,
        enterprise_name="重庆测试失信企业有限公司",
        rule_id=rule_id,
        rule_version=rule_version,
        rule_title="严重违法失信企业联合惩戒",
        kind="punishment",
        measures=measures if measures is not None else MEASURES,
        legal_basis="国发〔2016〕33号",
        since=since,
        until=None,
        catalogue_version="test",
        decided_at=datetime.now(UTC),
    ).model_dump(mode="json")


def lifted(
    uscc: str,
    *,
    lifted_on: date = date(2026, 3, 20),
    rule_id: str = "serious_illegal_list",
    reason: str = "credit repair granted",
    continued: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return PunishmentLifted(
        uscc=uscc,
        enterprise_name="重庆测试失信企业有限公司",
        rule_id=rule_id,
        rule_version=1,
        kind="punishment",
        measures=MEASURES,
        reason=reason,
        lifted_on=lifted_on,
        catalogue_version="test",
        decided_at=datetime.now(UTC),
        continued_measures=continued or [],
    ).model_dump(mode="json")


def cloud_event(event_type: str, data: dict[str, Any], *, event_id: str | None = None) -> bytes:
    event = CloudEvent(
        id=event_id or str(uuid.uuid4()),
        source=source_uri("rules"),
        type=event_type,
        subject=data["uscc"],
        time=datetime.now(UTC),
        sequence=1,
        data=data,
    )
    return json.dumps(event.model_dump(mode="json"), ensure_ascii=False).encode()


async def eventually(
    probe: Callable[[], Awaitable[T]], accept: Callable[[T], bool], *, within: float = 30.0
) -> T:
    """Poll until ``accept(probe())``; fail with the last value after ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await probe()
        if accept(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"condition not met within {within}s; last value: {value!r}")
        await asyncio.sleep(0.2)


class Harness:
    def __init__(
        self, client: httpx.AsyncClient, keys: SigningKeys, producer: AIOKafkaProducer
    ) -> None:
        self.client = client
        self.keys = keys
        self.producer = producer

    def headers(self, department: str) -> dict[str, str]:
        return self.keys.headers(department, "tasks:handle")

    async def publish(
        self, event_type: str, data: dict[str, Any], event_id: str | None = None
    ) -> str:
        event_id = event_id or str(uuid.uuid4())
        await self.producer.send_and_wait(
            PUNISHMENTS_TOPIC,
            cloud_event(event_type, data, event_id=event_id),
            key=data["uscc"].encode(),
        )
        return event_id

    async def tasks(self, department: str, **params: str) -> list[dict[str, Any]]:
        response = await self.client.get(
            "/v1/tasks", params=params, headers=self.headers(department)
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def wait_for_tasks(
        self, department: str, count: int, **params: str
    ) -> list[dict[str, Any]]:
        async def probe() -> list[dict[str, Any]]:
            return await self.tasks(department, **params)

        return await eventually(probe, lambda items: len(items) >= count)


@pytest.fixture(scope="module")
async def harness(database_url: str, kafka_bootstrap: str) -> AsyncIterator[Harness]:
    keys = new_signing_keys()
    await ensure_topics(kafka_bootstrap, {PUNISHMENTS_TOPIC: TOPIC_PARTITIONS[PUNISHMENTS_TOPIC]})
    settings = CoordinationSettings(
        **service_settings_kwargs(
            database_url=database_url,
            kafka_bootstrap=kafka_bootstrap,
            keys=keys,
            # No rules or ledger service runs here: the Kafka path is under test, and
            # the feed followers must not find some other process on a default port.
            rules_url="http://127.0.0.1:9",
            ledger_url="http://127.0.0.1:9",
        )
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        async with running_app(lambda: create_app(settings)) as client:
            yield Harness(client, keys, producer)
    finally:
        await producer.stop()


async def test_triggered_punishment_opens_one_task_per_department_and_measure(
    harness: Harness,
) -> None:
    uscc = new_uscc()
    await harness.publish(PunishmentTriggered.event_type, triggered(uscc))

    fin = await harness.wait_for_tasks(FIN, 2, uscc=uscc)
    prt = await harness.wait_for_tasks(PRT, 1, uscc=uscc)

    assert sorted(t["measure"] for t in fin) == [
        "fiscal_subsidy_restriction",
        "government_procurement_ban",
    ]
    assert [t["measure"] for t in prt] == ["public_bidding_ban"]
    task = prt[0]
    assert task["type"] == "joint_punishment"
    assert task["action"] == "apply"
    assert task["status"] == "open"
    assert task["department"] == PRT
    assert task["uscc"] == uscc
    assert task["rule_id"] == "serious_illegal_list"
    assert task["measure_title"] == "限制参与工程招投标"
    assert task["scenarios"] == ["public_bidding"]
    assert task["legal_basis"] == "《招标投标法实施条例》"
    assert task["effective_on"] == "2026-03-02"
    assert task["overdue"] is False
    opened_on = date.fromisoformat(task["claim_due"])
    assert opened_on == add_working_days(china_today(), 3)
    assert date.fromisoformat(task["feedback_due"]) == add_working_days(china_today(), 10)
    # Departments with no measure in the event get nothing.
    assert await harness.tasks(NDRC, uscc=uscc) == []


async def test_the_department_claims_and_reports_back(harness: Harness) -> None:
    uscc = new_uscc()
    await harness.publish(PunishmentTriggered.event_type, triggered(uscc))
    (task,) = await harness.wait_for_tasks(PRT, 1, uscc=uscc)
    task_id = task["task_id"]
    own = harness.headers(PRT)

    response = await harness.client.get(f"/v1/tasks/{task_id}", headers=own)
    assert response.status_code == 200
    assert response.json()["status"] == "open"

    response = await harness.client.post(f"/v1/tasks/{task_id}/claim", headers=own)
    assert response.status_code == 200, response.text
    claimed = response.json()
    assert claimed["status"] == "claimed"
    assert claimed["claimed_by"] == f"department:{PRT}"
    assert claimed["claimed_at"] is not None

    # Claiming again is idempotent: same state, same claim time.
    again = await harness.client.post(f"/v1/tasks/{task_id}/claim", headers=own)
    assert again.status_code == 200
    assert again.json()["claimed_at"] == claimed["claimed_at"]

    listed = await harness.tasks(PRT, uscc=uscc, status="claimed", type="joint_punishment")
    assert [t["task_id"] for t in listed] == [task_id]
    assert await harness.tasks(PRT, uscc=uscc, status="open") == []

    # An outcome that belongs to another kind of task names the field.
    wrong = await harness.client.post(
        f"/v1/tasks/{task_id}/feedback",
        json={"outcome": "restriction_lifted", "note": "误报"},
        headers=own,
    )
    assert wrong.status_code == 422
    assert wrong.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in wrong.json()["errors"]] == ["outcome"]

    # Unknown fields are an error, not silently dropped.
    extra = await harness.client.post(
        f"/v1/tasks/{task_id}/feedback",
        json={"outcome": "measure_applied", "note": "已限制", "applied_by": "张三"},
        headers=own,
    )
    assert extra.status_code == 422
    assert [(e["field"], e["code"]) for e in extra.json()["errors"]] == [
        ("applied_by", "unknown_field")
    ]

    feedback = {
        "outcome": "measure_applied",
        "note": "已在工程招投标系统中限制投标资格",
        "applied_on": "2026-03-03",
        "case_reference": "渝公管〔2026〕7号",
    }
    done = await harness.client.post(f"/v1/tasks/{task_id}/feedback", json=feedback, headers=own)
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["status"] == "done"
    assert body["done_at"] is not None
    assert body["overdue"] is False
    assert {k: body["feedback"][k] for k in feedback} == feedback

    # The same report again (a retry) changes nothing; a different one conflicts.
    retry = await harness.client.post(f"/v1/tasks/{task_id}/feedback", json=feedback, headers=own)
    assert retry.status_code == 200
    assert retry.json()["done_at"] == body["done_at"]
    conflict = await harness.client.post(
        f"/v1/tasks/{task_id}/feedback",
        json={"outcome": "not_applicable", "note": "改口"},
        headers=own,
    )
    assert conflict.status_code == 409
    assert conflict.json()["code"] == "task_done"
    claim_done = await harness.client.post(f"/v1/tasks/{task_id}/claim", headers=own)
    assert claim_done.status_code == 409
    assert claim_done.json()["code"] == "task_done"

    # Its TaskChanged events: opened, claimed, done, in that order, nothing twice.
    statuses = await task_changes(harness, task_id, count=3)
    assert statuses == ["open", "claimed", "done"]


async def test_feedback_on_an_open_task_claims_it_implicitly(harness: Harness) -> None:
    uscc = new_uscc()
    await harness.publish(PunishmentTriggered.event_type, triggered(uscc))
    fin = await harness.wait_for_tasks(FIN, 2, uscc=uscc)
    task_id = fin[0]["task_id"]

    response = await harness.client.post(
        f"/v1/tasks/{task_id}/feedback",
        json={"outcome": "no_matching_case", "note": "该企业未申请财政补贴"},
        headers=harness.headers(FIN),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "done"
    assert body["claimed_at"] is not None
    assert body["claimed_by"] == f"department:{FIN}"
    assert await task_changes(harness, task_id, count=3) == ["open", "claimed", "done"]


async def test_another_department_cannot_see_or_touch_the_task(harness: Harness) -> None:
    uscc = new_uscc()
    await harness.publish(PunishmentTriggered.event_type, triggered(uscc))
    (task,) = await harness.wait_for_tasks(PRT, 1, uscc=uscc)
    task_id = task["task_id"]
    other = harness.headers(TAX)

    assert await harness.tasks(TAX, uscc=uscc) == []
    listed_all = await harness.tasks(TAX, limit="500")
    assert task_id not in {t["task_id"] for t in listed_all}

    for method, path, body in [
        ("GET", f"/v1/tasks/{task_id}", None),
        ("POST", f"/v1/tasks/{task_id}/claim", None),
        ("POST", f"/v1/tasks/{task_id}/feedback", {"outcome": "measure_applied", "note": "x"}),
    ]:
        response = await harness.client.request(method, path, json=body, headers=other)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["code"] == "not_own_task"

    # Still untouched for its own department.
    own = await harness.client.get(f"/v1/tasks/{task_id}", headers=harness.headers(PRT))
    assert own.json()["status"] == "open"

    unknown = await harness.client.get(f"/v1/tasks/{uuid.uuid4()}", headers=other)
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "task_not_found"


async def test_redelivered_or_reannounced_trigger_opens_nothing_new(harness: Harness) -> None:
    uscc = new_uscc()
    event_id = await harness.publish(PunishmentTriggered.event_type, triggered(uscc))
    await harness.wait_for_tasks(FIN, 2, uscc=uscc)

    # The same event again (at-least-once delivery) ...
    await harness.publish(PunishmentTriggered.event_type, triggered(uscc), event_id=event_id)
    # ... and the same punishment under a new event id and a new rule version.
    await harness.publish(PunishmentTriggered.event_type, triggered(uscc, rule_version=2))
    # A marker on the same key (same partition, so consumed after the two above):
    # once its task exists, the duplicates have been processed.
    await harness.publish(
        PunishmentTriggered.event_type,
        triggered(uscc, rule_id="tax_arrears_major", measures=MEASURES[:1]),
    )
    fin = await harness.wait_for_tasks(FIN, 3, uscc=uscc)
    prt = await harness.tasks(PRT, uscc=uscc)

    assert sorted((t["rule_id"], t["measure"]) for t in fin) == [
        ("serious_illegal_list", "fiscal_subsidy_restriction"),
        ("serious_illegal_list", "government_procurement_ban"),
        ("tax_arrears_major", "government_procurement_ban"),
    ]
    assert len(prt) == 1
    assert all(t["rule_version"] == 1 for t in fin if t["rule_id"] == "serious_illegal_list")


async def test_lifted_punishment_opens_release_tasks(harness: Harness) -> None:
    uscc = new_uscc()
    await harness.publish(PunishmentTriggered.event_type, triggered(uscc))
    await harness.wait_for_tasks(PRT, 1, uscc=uscc)
    lift_id = await harness.publish(PunishmentLifted.event_type, lifted(uscc))
    await harness.publish(PunishmentLifted.event_type, lifted(uscc), event_id=lift_id)

    fin = await harness.wait_for_tasks(FIN, 4, uscc=uscc)
    prt = await harness.wait_for_tasks(PRT, 2, uscc=uscc)
    releases = [t for t in fin + prt if t["action"] == "release"]
    assert sorted((t["department"], t["measure"]) for t in releases) == [
        (FIN, "fiscal_subsidy_restriction"),
        (FIN, "government_procurement_ban"),
        (PRT, "public_bidding_ban"),
    ]
    release = next(t for t in prt if t["action"] == "release")
    assert release["effective_on"] == "2026-03-20"
    assert release["reason"] == "credit repair granted"

    own = harness.headers(PRT)
    wrong = await harness.client.post(
        f"/v1/tasks/{release['task_id']}/feedback",
        json={"outcome": "measure_applied", "note": "已限制"},
        headers=own,
    )
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["field"] == "outcome"
    done = await harness.client.post(
        f"/v1/tasks/{release['task_id']}/feedback",
        json={
            "outcome": "restriction_lifted",
            "note": "已解除投标限制",
            "applied_on": "2026-03-20",
        },
        headers=own,
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "done"


@pytest.mark.parametrize("lift_first", [True, False])
async def test_a_revised_rule_releases_only_the_measures_it_drops(
    harness: Harness, lift_first: bool
) -> None:
    """Version 2 keeps procurement and bidding, drops subsidies and adds a new
    FIN measure: release subsidies, apply the new one, leave the rest alone."""
    uscc = new_uscc()
    await harness.publish(PunishmentTriggered.event_type, triggered(uscc))
    await harness.wait_for_tasks(PRT, 1, uscc=uscc)
    await harness.wait_for_tasks(FIN, 2, uscc=uscc)
    added = {**MEASURES[0], "measure": "honorary_title_ban", "title": "不予授予荣誉称号"}
    version_2 = [MEASURES[0], MEASURES[2], added]
    revision = [
        (
            PunishmentLifted.event_type,
            lifted(uscc, reason="rule_revised", continued=[MEASURES[0], MEASURES[2]]),
        ),
        (
            PunishmentTriggered.event_type,
            triggered(uscc, rule_version=2, measures=version_2),
        ),
    ]
    for event_type, data in revision if lift_first else reversed(revision):
        await harness.publish(event_type, data)
    # A later punishment under another rule on the same key marks both as consumed.
    await harness.publish(
        PunishmentTriggered.event_type,
        triggered(uscc, rule_id="tax_arrears_major", measures=MEASURES[2:3]),
    )
    await harness.wait_for_tasks(PRT, 2, uscc=uscc)
    fin = await harness.wait_for_tasks(FIN, 4, uscc=uscc)
    prt = await harness.tasks(PRT, uscc=uscc)
    assert sorted((t["rule_id"], t["action"], t["measure"]) for t in fin + prt) == [
        ("serious_illegal_list", "apply", "fiscal_subsidy_restriction"),
        ("serious_illegal_list", "apply", "government_procurement_ban"),
        ("serious_illegal_list", "apply", "honorary_title_ban"),
        ("serious_illegal_list", "apply", "public_bidding_ban"),
        ("serious_illegal_list", "release", "fiscal_subsidy_restriction"),
        ("tax_arrears_major", "apply", "public_bidding_ban"),
    ]


async def test_trigger_arriving_after_its_lifting_opens_no_apply_task(harness: Harness) -> None:
    uscc = new_uscc()
    # The change-feed follower can deliver an old trigger after the lifting.
    await harness.publish(PunishmentLifted.event_type, lifted(uscc, lifted_on=date(2026, 3, 20)))
    await harness.publish(PunishmentTriggered.event_type, triggered(uscc, since=date(2026, 3, 2)))
    # A later punishment under another rule is a marker that both were consumed.
    await harness.publish(
        PunishmentTriggered.event_type,
        triggered(uscc, rule_id="tax_arrears_major", measures=MEASURES[2:3]),
    )
    prt = await harness.wait_for_tasks(PRT, 2, uscc=uscc)
    assert sorted((t["rule_id"], t["action"]) for t in prt) == [
        ("serious_illegal_list", "release"),
        ("tax_arrears_major", "apply"),
    ]


async def test_task_changes_are_published_to_the_coordination_topic(
    harness: Harness, kafka_bootstrap: str
) -> None:
    uscc = new_uscc()
    await harness.publish(PunishmentTriggered.event_type, triggered(uscc, measures=MEASURES[2:3]))
    (task,) = await harness.wait_for_tasks(PRT, 1, uscc=uscc)

    consumer = AIOKafkaConsumer(
        COORDINATION_TOPIC,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"test-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        deadline = asyncio.get_running_loop().time() + 30
        found: dict[str, Any] | None = None
        while found is None and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for messages in batches.values():
                for message in messages:
                    event = json.loads(message.value)
                    if event["data"]["task_id"] == task["task_id"]:
                        found = event
                        assert message.key == uscc.encode()
        assert found is not None, "TaskChanged never reached the coordination topic"
        assert found["type"] == TaskChanged.event_type
        assert found["subject"] == uscc
        assert found["data"]["status"] == "open"
        assert found["data"]["department"] == PRT
    finally:
        await consumer.stop()


async def test_task_list_validation_names_the_field(harness: Harness) -> None:
    own = harness.headers(FIN)
    for params, field in [
        ({"status": "closed"}, "status"),
        ({"type": "penalty"}, "type"),
        ({"uscc": "91500000000000000X"}, "uscc"),
        ({"limit": "0"}, "limit"),
        ({"limit": "abc"}, "limit"),
        ({"after": "-1"}, "after"),
    ]:
        response = await harness.client.get("/v1/tasks", params=params, headers=own)
        assert response.status_code == 422, params
        assert response.headers["content-type"].startswith("application/problem+json")
        assert [e["field"] for e in response.json()["errors"]] == [field], params

    bad_id = await harness.client.get("/v1/tasks/not-a-uuid", headers=own)
    assert bad_id.status_code == 422
    assert bad_id.json()["errors"][0]["field"] == "task_id"


async def test_task_list_pages_with_a_cursor(harness: Harness) -> None:
    uscc = new_uscc()
    await harness.publish(PunishmentTriggered.event_type, triggered(uscc))
    expected = await harness.wait_for_tasks(FIN, 2, uscc=uscc)

    first = await harness.client.get(
        "/v1/tasks", params={"uscc": uscc, "limit": "1"}, headers=harness.headers(FIN)
    )
    page = first.json()
    assert len(page["items"]) == 1
    assert page["next_cursor"] is not None
    second = await harness.client.get(
        "/v1/tasks",
        params={"uscc": uscc, "limit": "1", "after": page["next_cursor"]},
        headers=harness.headers(FIN),
    )
    page2 = second.json()
    assert [t["task_id"] for t in page["items"] + page2["items"]] == [
        t["task_id"] for t in expected
    ]
    third = await harness.client.get(
        "/v1/tasks",
        params={"uscc": uscc, "limit": "1", "after": page2["next_cursor"]},
        headers=harness.headers(FIN),
    )
    assert third.json() == {"items": [], "next_cursor": None}


async def test_tasks_need_a_token_with_the_tasks_scope(harness: Harness) -> None:
    some_id = uuid.uuid4()
    for method, path in [
        ("GET", "/v1/tasks"),
        ("GET", f"/v1/tasks/{some_id}"),
        ("POST", f"/v1/tasks/{some_id}/claim"),
    ]:
        anonymous = await harness.client.request(method, path)
        assert anonymous.status_code == 401, path
        assert anonymous.json()["code"] == "missing_token"
        wrong_scope = await harness.client.request(
            method, path, headers=harness.keys.headers(FIN, "records:write")
        )
        assert wrong_scope.status_code == 403, path
        assert wrong_scope.json()["code"] == "insufficient_scope"
    feed = await harness.client.get("/v1/changes", headers=harness.headers(FIN))
    assert feed.status_code == 403


async def task_changes(harness: Harness, task_id: str, *, count: int) -> list[str]:
    """The statuses of a task's TaskChanged events in the change feed, in order."""
    headers = harness.keys.headers("system", "changes:read")

    async def probe() -> list[str]:
        statuses: list[str] = []
        cursor = 0
        while True:
            response = await harness.client.get(
                "/v1/changes", params={"after": cursor, "limit": 1000}, headers=headers
            )
            assert response.status_code == 200, response.text
            page = response.json()
            for event in page["items"]:
                assert event["type"] == TaskChanged.event_type
                if event["data"]["task_id"] == task_id:
                    statuses.append(event["data"]["status"])
            if not page["items"]:
                return statuses
            cursor = page["next_cursor"]

    return await eventually(probe, lambda statuses: len(statuses) >= count)
