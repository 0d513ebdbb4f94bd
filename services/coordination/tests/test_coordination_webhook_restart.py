"""A delivery waiting for its retry survives a restart of the service: it is a
row in the deliveries table, and the next process sends it."""

from __future__ import annotations

from typing import Any

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
)

from ecips.testkit import new_signing_keys
from ecips_common.contracts import PUNISHMENTS_TOPIC, TOPIC_PARTITIONS, PunishmentTriggered
from ecips_common.outbox import ensure_topics
from ecips_coordination.main import create_app
from ecips_coordination.settings import CoordinationSettings

DEPARTMENT = "CQ-IP"
MEASURE = {
    "measure": "patent_funding_restriction",
    "title": "限制申请专利资助",
    "scenarios": ["fiscal_subsidy"],
    "department": DEPARTMENT,
    "legal_basis": "国发〔2016〕33号",
}


async def test_a_pending_delivery_is_sent_after_a_restart(
    database_url: str, kafka_bootstrap: str
) -> None:
    keys = new_signing_keys()
    headers = keys.headers(DEPARTMENT, "tasks:handle")
    await ensure_topics(kafka_bootstrap, {PUNISHMENTS_TOPIC: TOPIC_PARTITIONS[PUNISHMENTS_TOPIC]})
    receiver = WebhookReceiver()  # not listening yet: the first attempt fails
    uscc = new_uscc()

    def settings(**extra: Any) -> CoordinationSettings:
        return CoordinationSettings(**settings_kwargs(database_url, kafka_bootstrap, keys, **extra))

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        slow = settings(webhook_retry_base_seconds=4.0, webhook_retry_max_seconds=8.0)
        async with started(create_app(slow)) as app, client_for(app) as client:
            created = await client.post(
                "/v1/subscriptions", json={"url": receiver.url}, headers=headers
            )
            assert created.status_code == 201, created.text
            receiver.secret = created.json()["secret"]
            subscription = created.json()["subscription_id"]
            await publish(
                producer,
                PUNISHMENTS_TOPIC,
                "rules",
                PunishmentTriggered.event_type,
                punishment_triggered(uscc, [MEASURE]),
            )

            async def waiting() -> list[dict[str, Any]]:
                response = await client.get(
                    "/v1/deliveries",
                    params={"subscription_id": subscription, "status": "pending"},
                    headers=headers,
                )
                items: list[dict[str, Any]] = response.json()["items"]
                return items

            # Attempted once, failed (connection refused), retry scheduled.
            (pending,) = await eventually(
                waiting,
                lambda items: (
                    len(items) == 1
                    and items[0]["attempts"] == 1
                    and items[0]["last_error"] is not None
                ),
            )
        # The service is down; the receiver comes up; a new process takes over.
        await receiver.start()
        async with started(create_app(settings())) as app, client_for(app) as client:

            async def delivered() -> list[dict[str, Any]]:
                response = await client.get(
                    "/v1/deliveries",
                    params={"subscription_id": subscription, "status": "delivered"},
                    headers=headers,
                )
                items: list[dict[str, Any]] = response.json()["items"]
                return items

            (done,) = await eventually(delivered, lambda items: len(items) == 1)
        assert done["delivery_id"] == pending["delivery_id"]
        assert done["attempts"] == 2
        assert [r.delivery_id for r in receiver.delivered()] == [pending["delivery_id"]]
        assert receiver.delivered()[0].verified
        assert receiver.delivered()[0].body["data"]["task"]["uscc"] == uscc
    finally:
        await receiver.stop()
        await producer.stop()
