"""Out-of-order and duplicate delivery, produced straight onto the records
topic: the ledger ends in the same state whatever order events arrive in."""

from __future__ import annotations

import uuid
from datetime import date
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


async def _all_changes(ledger: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    cursor = 0
    while True:
        page = (
            await ledger.get(
                "/v1/changes", params={"after": cursor, "limit": 1000}, headers=headers
            )
        ).json()
        if not page["items"]:
            return events
        events.extend(page["items"])
        cursor = page["next_cursor"]


class Ledger:
    def __init__(self, client: httpx.AsyncClient, keys: SigningKeys) -> None:
        self.client = client
        self.headers = keys.headers(SAMR, "ledger:read")

    async def enterprise(self, uscc: str) -> dict[str, Any] | None:
        response = await self.client.get(f"/v1/enterprises/{uscc}", headers=self.headers)
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def records(self, uscc: str, **params: str) -> list[dict[str, Any]]:
        response = await self.client.get(
            f"/v1/enterprises/{uscc}/records", params=params, headers=self.headers
        )
        if response.status_code == 404:
            return []
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def record(self, uscc: str, record_id: uuid.UUID | str) -> dict[str, Any] | None:
        for item in await self.records(uscc):
            if item["record_id"] == str(record_id):
                return item
        return None

    async def wait_record(self, uscc: str, record_id: uuid.UUID | str) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            return await self.record(uscc, record_id)

        return await eventually(probe, what=f"record {record_id} filed under {uscc}")

    async def changes(self) -> list[dict[str, Any]]:
        return await _all_changes(self.client, self.headers)


def _rid(event: Any) -> str:
    return str(event.data["record_id"])


async def test_record_before_registration_is_filed_when_it_arrives(
    ledger: httpx.AsyncClient, ledger_keys: SigningKeys, records_producer: AIOKafkaProducer
) -> None:
    view = Ledger(ledger, ledger_keys)
    uscc = random_uscc()
    penalty = accepted("administrative_penalty", penalty_data("罚1"), uscc=uscc)
    registration = accepted(
        "registration", registration_data("重庆迟到登记有限公司"), uscc=uscc, accepted_minute=5
    )
    await produce(records_producer, penalty)
    # Processed but waiting: the enterprise does not exist yet.
    await produce(records_producer, registration)

    record = await view.wait_record(uscc, _rid(penalty))
    assert record["status"] == "active"
    enterprise = await view.enterprise(uscc)
    assert enterprise is not None
    assert enterprise["record_counts"] == {"registration": 1, "administrative_penalty": 1}

    filed = [
        e
        for e in await view.changes()
        if e["type"] == "ecips.record.filed" and e["data"]["record_id"] == _rid(penalty)
    ]
    assert len(filed) == 1
    assert filed[0]["subject"] == uscc


async def test_record_by_registration_number_is_filed_through_the_mapping(
    ledger: httpx.AsyncClient, ledger_keys: SigningKeys, records_producer: AIOKafkaProducer
) -> None:
    view = Ledger(ledger, ledger_keys)
    uscc = random_uscc()
    number = random_registration_number()
    # Keyed by the old number: a different partition, so either order may happen.
    old = accepted(
        "administrative_penalty", penalty_data("罚2"), uscc=None, registration_number=number
    )
    registration = accepted(
        "registration",
        registration_data("重庆老注册号有限公司", registration_number=number),
        uscc=uscc,
    )
    await produce(records_producer, old, registration)
    record = await view.wait_record(uscc, _rid(old))
    assert record["registration_number"] == number
    enterprise = await view.enterprise(uscc)
    assert enterprise is not None
    assert enterprise["registration_number"] == number

    # Once the mapping is known, a later record by number is filed at once.
    later = accepted(
        "administrative_penalty", penalty_data("罚3"), uscc=None, registration_number=number
    )
    await produce(records_producer, later)
    await view.wait_record(uscc, _rid(later))


async def test_revocation_before_its_record_ends_revoked(
    ledger: httpx.AsyncClient, ledger_keys: SigningKeys, records_producer: AIOKafkaProducer
) -> None:
    view = Ledger(ledger, ledger_keys)
    uscc = random_uscc()
    registration = accepted("registration", registration_data("重庆撤销先到有限公司"), uscc=uscc)
    penalty = accepted("administrative_penalty", penalty_data("罚4"), uscc=uscc)
    await produce(records_producer, registration, revoked(penalty, "先撤后到"), penalty)

    record = await view.wait_record(uscc, _rid(penalty))
    assert record["status"] == "revoked"
    assert record["revocation_reason"] == "先撤后到"
    enterprise = await view.enterprise(uscc)
    assert enterprise is not None
    assert "administrative_penalty" not in enterprise["record_counts"]


async def test_late_lower_revision_is_history_not_head(
    ledger: httpx.AsyncClient, ledger_keys: SigningKeys, records_producer: AIOKafkaProducer
) -> None:
    view = Ledger(ledger, ledger_keys)
    uscc = random_uscc()
    record_id = uuid.uuid4()
    second = penalty_data("罚5") | {"content": "更正后"}
    await produce(
        records_producer,
        accepted("registration", registration_data("重庆版本有限公司"), uscc=uscc),
        accepted("administrative_penalty", second, uscc=uscc, record_id=record_id, revision=2),
        accepted("administrative_penalty", penalty_data("罚5"), uscc=uscc, record_id=record_id),
    )

    async def both_revisions() -> dict[str, Any] | None:
        record = await view.record(uscc, record_id)
        return record if record and len(record["revisions"]) == 2 else None

    record = await eventually(both_revisions, what="both revisions in the history")
    assert record["revision"] == 2
    assert record["data"]["content"] == "更正后"
    assert record["version"] == 2  # created, then filed: the late revision changed nothing


async def test_listing_then_removal_delivered_reversed_ends_not_listed(
    ledger: httpx.AsyncClient, ledger_keys: SigningKeys, records_producer: AIOKafkaProducer
) -> None:
    view = Ledger(ledger, ledger_keys)
    uscc = random_uscc()
    listing = accepted(
        "abnormal_operation_listing",
        listing_data("列1"),
        uscc=uscc,
        occurred_on=date(2025, 1, 10),
        accepted_minute=1,
    )
    removal = accepted(
        "abnormal_operation_removal",
        listing_data("移1", "已补报年度报告"),
        uscc=uscc,
        occurred_on=date(2025, 3, 1),
        accepted_minute=2,
    )
    await produce(
        records_producer,
        accepted("registration", registration_data("重庆异常名录有限公司"), uscc=uscc),
        removal,
        listing,
    )
    await view.wait_record(uscc, _rid(listing))
    enterprise = await view.enterprise(uscc)
    assert enterprise is not None
    assert enterprise["flags"]["abnormal_operation"] is False

    # Revoking the removal puts the listing back in force.
    await produce(records_producer, revoked(removal))

    async def listed() -> dict[str, Any] | None:
        found = await view.enterprise(uscc)
        return found if found and found["flags"]["abnormal_operation"] else None

    enterprise = await eventually(listed, what="the listing back in force")
    assert enterprise["flags"]["abnormal_operation_since"] == "2025-01-10"
    assert enterprise["flags"]["abnormal_operation_reason"] == "未按规定报送年度报告"
    assert enterprise["flags"]["serious_illegal"] is False


async def test_master_data_folds_changes_whatever_the_order(
    ledger: httpx.AsyncClient, ledger_keys: SigningKeys, records_producer: AIOKafkaProducer
) -> None:
    view = Ledger(ledger, ledger_keys)
    uscc = random_uscc()
    change = accepted(
        "registration_change",
        {
            "changed_on": "2023-04-01",
            "changes": [
                {"item": "name", "before": "重庆旧名有限公司", "after": "重庆新名有限公司"},
                {"item": "address", "after": "重庆市江北区观音桥1号"},
            ],
        },
        uscc=uscc,
        occurred_on=date(2023, 4, 1),
    )
    deregistration = accepted(
        "deregistration",
        {"deregistered_on": "2025-02-01", "kind": "revoked", "reason": "长期未经营"},
        uscc=uscc,
        occurred_on=date(2025, 2, 1),
    )
    registration = accepted(
        "registration",
        registration_data("重庆旧名有限公司"),
        uscc=uscc,
        occurred_on=date(2020, 5, 1),
    )
    await produce(records_producer, deregistration, change, registration)

    async def folded() -> dict[str, Any] | None:
        found = await view.enterprise(uscc)
        return found if found and found["status"] == "吊销" else None

    enterprise = await eventually(folded, what="status and name change folded in")
    assert enterprise["name"] == "重庆新名有限公司"
    assert enterprise["former_names"] == [{"name": "重庆旧名有限公司", "until": "2023-04-01"}]
    assert enterprise["address"] == "重庆市江北区观音桥1号"
    assert enterprise["status_code"] == "revoked"
    assert enterprise["status_since"] == "2025-02-01"

    snapshots = [
        e["data"]
        for e in await view.changes()
        if e["type"] == "ecips.enterprise.changed" and e["subject"] == uscc
    ]
    versions = [s["version"] for s in snapshots]
    assert versions == list(range(1, len(versions) + 1))
    assert snapshots[-1]["version"] == enterprise["version"]
    assert snapshots[-1]["status"] == "吊销"


async def test_duplicate_delivery_applies_once(
    ledger: httpx.AsyncClient, ledger_keys: SigningKeys, records_producer: AIOKafkaProducer
) -> None:
    view = Ledger(ledger, ledger_keys)
    uscc = random_uscc()
    registration = accepted("registration", registration_data("重庆重复投递有限公司"), uscc=uscc)
    penalty = accepted("administrative_penalty", penalty_data("罚6"), uscc=uscc)
    sentinel = accepted("administrative_penalty", penalty_data("罚7"), uscc=uscc)
    await produce(records_producer, registration, registration, penalty, penalty, penalty, sentinel)
    # Same key, same partition: once the sentinel is filed the duplicates were seen.
    await view.wait_record(uscc, _rid(sentinel))

    record = await view.record(uscc, _rid(penalty))
    assert record is not None
    assert record["version"] == 2
    assert len(record["revisions"]) == 1
    enterprise = await view.enterprise(uscc)
    assert enterprise is not None
    assert enterprise["record_counts"] == {"registration": 1, "administrative_penalty": 2}
    changes = await view.changes()
    filed = [e for e in changes if e["data"].get("record_id") == _rid(penalty)]
    assert len(filed) == 1
    snapshots = [
        e for e in changes if e["type"] == "ecips.enterprise.changed" and e["subject"] == uscc
    ]
    assert len(snapshots) == 3  # registration, penalty, sentinel


async def test_a_registration_number_claimed_twice_stays_with_the_first(
    ledger: httpx.AsyncClient, ledger_keys: SigningKeys, records_producer: AIOKafkaProducer
) -> None:
    view = Ledger(ledger, ledger_keys)
    first, second = random_uscc(), random_uscc()
    number = random_registration_number()
    await produce(
        records_producer,
        accepted(
            "registration",
            registration_data("重庆甲有限公司", registration_number=number),
            uscc=first,
        ),
    )
    await eventually(lambda: view.enterprise(first), what="the first enterprise")
    sentinel = accepted("administrative_penalty", penalty_data("罚9"), uscc=second)
    await produce(
        records_producer,
        accepted(
            "registration",
            registration_data("重庆乙有限公司", registration_number=number),
            uscc=second,
        ),
        sentinel,
    )
    await view.wait_record(second, _rid(sentinel))
    enterprise = await view.enterprise(second)
    assert enterprise is not None
    assert enterprise["registration_number"] is None
    assert enterprise["version"] == 2  # registration, then the sentinel's count
    first_enterprise = await view.enterprise(first)
    assert first_enterprise is not None
    assert first_enterprise["registration_number"] == number
