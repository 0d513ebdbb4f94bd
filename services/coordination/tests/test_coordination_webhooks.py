"""Webhooks against a real HTTP receiver: signed pushes, retries with backoff,
per-enterprise order, the dead-letter list and redelivery, and a joint
punishment round trip (pushed, then claimed and reported back over the API)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from coordination_support import (
    WebhookReceiver,
    client_for,
    eventually,
    new_uscc,
    publish,
    punishment_triggered,
    settings_kwargs,
    started,
    tasks_of,
)

from ecips.testkit import SigningKeys, new_signing_keys
from ecips_common.contracts import (
    LEDGER_TOPIC,
    PUNISHMENTS_TOPIC,
    TOPIC_PARTITIONS,
    PunishmentTriggered,
)
from ecips_common.outbox import ensure_topics
from ecips_coordination.main import create_app
from ecips_coordination.settings import CoordinationSettings
from ecips_coordination.webhooks import RetryPolicy, check_target, sign, verify_signature

SASAC = "CQ-SASAC"
ECONINFO = "CQ-ECONINFO"


def measures() -> list[dict[str, Any]]:
    return [
        {"measure": "honorary_title_ban", "title": "限制参评评优评先", "scenarios": ["honorary_title"],
         "department": SASAC, "legal_basis": "国发〔2016〕33号"},
        {"measure": "state_investment_restriction", "title": "限制国有资本投资合作",
         "scenarios": [], "department": SASAC, "legal_basis": "国发〔2016〕33号"},
        {"measure": "industry_support_restriction", "title": "限制产业扶持资金",
         "scenarios": ["fiscal_subsidy"], "department": ECONINFO, "legal_basis": "国发〔2016〕33号"},
    ]  # fmt: skip


@dataclass
class Harness:
    client: httpx.AsyncClient
    keys: SigningKeys
    producer: AIOKafkaProducer

    def headers(self, department: str) -> dict[str, str]:
        return self.keys.headers(department, "tasks:handle")

    async def subscribe(self, department: str, receiver: WebhookReceiver, **extra: Any) -> str:
        response = await self.client.post(
            "/v1/subscriptions",
            json={"url": receiver.url, **extra},
            headers=self.headers(department),
        )
        assert response.status_code == 201, response.text
        body = response.json()
        receiver.secret = body["secret"]
        return str(body["subscription_id"])

    async def trigger(self, uscc: str, measure_list: list[dict[str, Any]]) -> None:
        await publish(
            self.producer,
            PUNISHMENTS_TOPIC,
            "rules",
            PunishmentTriggered.event_type,
            punishment_triggered(uscc, measure_list),
        )

    async def deliveries(self, department: str, **params: str) -> list[dict[str, Any]]:
        response = await self.client.get(
            "/v1/deliveries", params=params, headers=self.headers(department)
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items


@pytest.fixture(scope="module")
async def harness(database_url: str, kafka_bootstrap: str) -> AsyncIterator[Harness]:
    keys = new_signing_keys()
    await ensure_topics(
        kafka_bootstrap,
        {topic: TOPIC_PARTITIONS[topic] for topic in (LEDGER_TOPIC, PUNISHMENTS_TOPIC)},
    )
    settings = CoordinationSettings(
        **settings_kwargs(database_url, kafka_bootstrap, keys, webhook_max_attempts=4)
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        async with started(create_app(settings)) as app, client_for(app) as client:
            yield Harness(client, keys, producer)
    finally:
        await producer.stop()


async def test_pushed_once_each_in_order_through_failures_and_a_round_trip(
    harness: Harness,
) -> None:
    receiver = WebhookReceiver(fail_first=2)
    await receiver.start()
    try:
        subscription = await harness.subscribe(SASAC, receiver, types=["joint_punishment"])
        uscc = new_uscc()
        await harness.trigger(uscc, measures())

        def pushed(status: str) -> list[dict[str, Any]]:
            return [
                r.body["data"]["task"]
                for r in receiver.delivered()
                if r.body["subject"] == uscc and r.body["data"]["status"] == status
            ]

        async def opened() -> list[dict[str, Any]]:
            return pushed("open")

        tasks = await eventually(opened, lambda items: len(items) == 2)
        # The department's system acts on what it was pushed: claim, then report back.
        for task in tasks:
            url = f"/v1/tasks/{task['task_id']}"
            claimed = await harness.client.post(f"{url}/claim", headers=harness.headers(SASAC))
            assert claimed.status_code == 200, claimed.text
            done = await harness.client.post(
                f"{url}/feedback",
                json={"outcome": "measure_applied", "note": "已在评优评先系统中限制",
                      "applied_on": "2026-09-02", "case_reference": "渝国资评〔2026〕3号"},
                headers=harness.headers(SASAC),
            )  # fmt: skip
            assert done.status_code == 200, done.text

        async def all_pushed() -> int:
            return len([r for r in receiver.delivered() if r.body["subject"] == uscc])

        await eventually(all_pushed, lambda n: n == 6)

        # The receiver failed twice: both on the first delivery, which held back
        # the rest of the enterprise's stream until it went through.
        assert [r.answered for r in receiver.requests[:3]] == [500, 500, 204]
        assert len({r.delivery_id for r in receiver.requests[:3]}) == 1
        assert all(r.verified for r in receiver.requests)
        delivered_ids = [r.delivery_id for r in receiver.delivered()]
        assert len(delivered_ids) == len(set(delivered_ids)), "a delivery arrived twice"

        # In order: exactly the order the changes were made in.
        made = await harness.deliveries(SASAC, subscription_id=subscription)
        assert [d["delivery_id"] for d in made] == delivered_ids
        assert all(d["status"] == "delivered" for d in made)
        assert made[0]["attempts"] == 3
        for task in tasks:
            statuses = [
                r.body["data"]["status"]
                for r in receiver.delivered()
                if r.body["data"]["task"]["task_id"] == task["task_id"]
            ]
            assert statuses == ["open", "claimed", "done"]
        done_payload = next(
            r.body for r in receiver.delivered() if r.body["data"]["status"] == "done"
        )
        assert done_payload["type"] == "ecips.task.changed"
        assert done_payload["data"]["task"]["feedback"]["outcome"] == "measure_applied"
        assert all(r.body["id"] == r.delivery_id for r in receiver.requests)

        # The other department's task never reached this department's webhook,
        # and it has its own tasks to pull.
        assert all(t["department"] == SASAC for t in pushed("open"))
        econinfo = await tasks_of(harness.client, harness.headers(ECONINFO), uscc=uscc)
        assert [t["measure"] for t in econinfo] == ["industry_support_restriction"]
    finally:
        await receiver.stop()


async def test_dead_letters_are_listed_for_their_department_and_redelivered(
    harness: Harness,
) -> None:
    receiver = WebhookReceiver(always_fail=True)
    await receiver.start()
    try:
        subscription = await harness.subscribe(ECONINFO, receiver)
        uscc = new_uscc()
        await harness.trigger(uscc, measures()[2:])

        async def opened() -> list[dict[str, Any]]:
            return await tasks_of(harness.client, harness.headers(ECONINFO), uscc=uscc)

        await eventually(opened, lambda items: len(items) == 1)

        async def dead() -> list[dict[str, Any]]:
            return await harness.deliveries(ECONINFO, status="dead", subscription_id=subscription)

        (letter,) = await eventually(dead, lambda items: len(items) == 1)
        assert letter["attempts"] == 4
        assert letter["last_status_code"] == 500
        assert letter["uscc"] == uscc
        assert len(receiver.requests) == 4

        listed = await harness.client.get("/v1/subscriptions", headers=harness.headers(ECONINFO))
        mine = next(s for s in listed.json()["items"] if s["subscription_id"] == subscription)
        assert mine["dead"] == 1
        assert "secret" not in mine

        # Another department sees none of it and can touch none of it.
        other = harness.headers(SASAC)
        assert letter["delivery_id"] not in {
            d["delivery_id"] for d in await harness.deliveries(SASAC, status="dead")
        }
        peek = await harness.client.get(
            "/v1/deliveries", params={"subscription_id": subscription}, headers=other
        )
        assert peek.status_code == 403
        assert peek.json()["code"] == "not_own_subscription"
        steal = await harness.client.post(
            f"/v1/deliveries/{letter['delivery_id']}/redeliver", headers=other
        )
        assert steal.status_code == 403
        assert steal.json()["code"] == "not_own_delivery"
        drop = await harness.client.delete(f"/v1/subscriptions/{subscription}", headers=other)
        assert drop.status_code == 403
        assert drop.json()["code"] == "not_own_subscription"

        # The receiver is fixed; the department asks for the letter again.
        receiver.always_fail = False
        again = await harness.client.post(
            f"/v1/deliveries/{letter['delivery_id']}/redeliver",
            headers=harness.headers(ECONINFO),
        )
        assert again.status_code == 200, again.text
        assert again.json()["status"] == "pending"

        async def delivered() -> list[dict[str, Any]]:
            return await harness.deliveries(
                ECONINFO, status="delivered", subscription_id=subscription
            )

        (done,) = await eventually(delivered, lambda items: len(items) == 1)
        assert done["delivery_id"] == letter["delivery_id"]
        assert receiver.delivered()[-1].delivery_id == letter["delivery_id"]
        assert receiver.delivered()[-1].verified

        gone = await harness.client.delete(
            f"/v1/subscriptions/{subscription}", headers=harness.headers(ECONINFO)
        )
        assert gone.status_code == 204
        listed = await harness.client.get("/v1/subscriptions", headers=harness.headers(ECONINFO))
        assert subscription not in {s["subscription_id"] for s in listed.json()["items"]}
    finally:
        await receiver.stop()


async def test_subscription_requests_are_validated(harness: Harness) -> None:
    own = harness.headers(SASAC)
    for body, field in [
        ({"url": "ftp://dept.example.gov.cn/hooks"}, "url"),
        ({"url": "https://user:pw@dept.example.gov.cn/hooks"}, "url"),
        ({"url": "https://dept.example.gov.cn/hooks", "types": ["penalty"]}, "types[0]"),
        ({"url": "https://dept.example.gov.cn/hooks", "secret": "mine"}, "secret"),
    ]:
        response = await harness.client.post("/v1/subscriptions", json=body, headers=own)
        assert response.status_code == 422, (body, response.text)
        assert [e["field"] for e in response.json()["errors"]] == [field], body
    for params, field in [
        ({"status": "lost"}, "status"),
        ({"subscription_id": "nope"}, "subscription_id"),
        ({"limit": "0"}, "limit"),
    ]:
        response = await harness.client.get("/v1/deliveries", params=params, headers=own)
        assert response.status_code == 422, params
        assert [e["field"] for e in response.json()["errors"]] == [field]
    anonymous = await harness.client.get("/v1/subscriptions")
    assert anonymous.status_code == 401
    wrong = await harness.client.get(
        "/v1/subscriptions", headers=harness.keys.headers(SASAC, "records:write")
    )
    assert wrong.status_code == 403


def test_signatures_verify_and_refuse_tampering_and_replays() -> None:
    body = b'{"id":"d1","data":{"status":"open"}}'
    signature = sign("whsec_test", 1_764_145_200, body)
    assert verify_signature(
        "whsec_test", timestamp="1764145200", signature=signature, body=body, now=1_764_145_260
    )
    # Secret rotation: any of several signatures may match.
    assert verify_signature(
        "whsec_test",
        timestamp="1764145200",
        signature=f"v1=deadbeef, {signature}",
        body=body,
        now=1_764_145_200,
    )
    for secret, timestamp, tampered, now in [
        ("whsec_other", "1764145200", body, 1_764_145_200),  # wrong secret
        ("whsec_test", "1764145200", body + b" ", 1_764_145_200),  # changed body
        ("whsec_test", "1764145201", body, 1_764_145_200),  # changed timestamp
        ("whsec_test", "1764145200", body, 1_764_145_200 + 301),  # replayed too late
        ("whsec_test", "soon", body, 1_764_145_200),
    ]:
        assert not verify_signature(
            secret, timestamp=timestamp, signature=signature, body=tampered, now=now
        )


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://dept.example.gov.cn/hooks", True),
        ("https://8.8.8.8/hooks", True),
        ("https://203.0.113.10/hooks", False),  # a documentation range
        ("http://127.0.0.1:8002/v1/changes", False),
        ("http://localhost/hooks", False),
        ("http://10.1.2.3/hooks", False),
        ("http://169.254.169.254/latest/meta-data", False),
        ("http://[::1]/hooks", False),
        ("http://ledger.ecips.svc/hooks", False),
    ],
)
def test_webhook_targets_stay_outside_the_cluster(url: str, allowed: bool) -> None:
    if allowed:
        assert check_target(url, allow_private=False) == url
    else:
        with pytest.raises(ValueError):
            check_target(url, allow_private=False)
        assert check_target(url, allow_private=True) == url


def test_backoff_grows_exponentially_with_jitter_and_a_ceiling() -> None:
    policy = RetryPolicy(base_seconds=2, max_seconds=60, max_attempts=10)
    for attempt, ceiling in [(1, 2), (2, 4), (3, 8), (4, 16), (6, 60), (9, 60)]:
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), attempt
        assert len(set(delays)) > 1  # jittered, so retries of many hooks spread out
