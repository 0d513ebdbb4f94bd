"""The life of an enterprise replayed in any order, with duplicated
deliveries, ends in the same ledger state as replayed in order.

Property-style: hypothesis draws the arrival order and the duplicates; each
example is a fresh enterprise applied through the ledger's real event
processor (inbox, handlers, outbox) on the real database. One more run goes
through the broker, where the record filed by its old registration number
travels on another partition than the rest.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from ledger_support import (
    accepted,
    eventually,
    feed_events,
    listing_data,
    penalty_data,
    produce,
    random_registration_number,
    random_uscc,
    registration_data,
    revoked,
)
from sqlalchemy import text

from ecips.testkit import SigningKeys
from ecips_common.consumer import EventProcessor
from ecips_common.db import Database, create_engine
from ecips_common.events import CloudEvent
from ecips_ledger.consumers import HANDLERS
from ecips_ledger.models import OUTBOX
from ecips_ledger.service import refold_outdated

OLD_NAME = "重庆山城渝味餐饮有限公司"
NEW_NAME = "重庆渝味餐饮管理有限公司"
COURT_A = "重庆市渝中区人民法院"
COURT_B = "重庆市第五中级人民法院"


def _money(value: str) -> dict[str, str]:
    return {"value": value, "currency": "CNY"}


def enterprise_life(uscc: str, number: str) -> list[tuple[str, CloudEvent]]:
    """Registration, name change, a penalty and its correction, a revoked
    penalty, a record filed by the old number, listing and removal, freezes,
    a mortgage, a pledge cancelled by correction, deregistration — in the
    order the departments submitted them."""
    ids = {role: uuid.uuid4() for role in ("pen_a", "pledge")}
    minute = iter(range(1, 100))

    def rec(category: str, data: dict[str, Any], on: date, **kw: Any) -> CloudEvent:
        kw.setdefault("uscc", uscc)
        kw.setdefault("name", NEW_NAME if on >= date(2021, 6, 1) else OLD_NAME)
        return accepted(category, data, occurred_on=on, accepted_minute=next(minute), **kw)

    registration = rec(
        "registration",
        registration_data(OLD_NAME, registration_number=number, established_on="2019-03-01"),
        date(2019, 3, 1),
    )
    rename = rec(
        "registration_change",
        {
            "changed_on": "2021-06-01",
            "changes": [
                {"item": "name", "before": OLD_NAME, "after": NEW_NAME},
                {"item": "legal_representative", "before": "张三", "after": "王五"},
            ],
        },
        date(2021, 6, 1),
    )
    penalty = rec(
        "administrative_penalty",
        penalty_data("渝中市监罚〔2022〕18号"),
        date(2022, 5, 1),
        record_id=ids["pen_a"],
        source_id="渝中市监罚〔2022〕18号",
    )
    correction = rec(
        "administrative_penalty",
        penalty_data("渝中市监罚〔2022〕18号") | {"fine": _money("30000")},
        date(2022, 5, 1),
        record_id=ids["pen_a"],
        revision=2,
        source_id="渝中市监罚〔2022〕18号",
    )
    doomed = rec("administrative_penalty", penalty_data("渝中市监罚〔2022〕31号"), date(2022, 8, 1))
    by_number = rec(
        "administrative_inspection",
        {"authority": "重庆市渝中区市场监督管理局", "result": "未发现问题"},
        date(2022, 9, 1),
        uscc=None,
        registration_number=number,
    )
    freeze = {"subject_person": "王五", "amount": _money("1000000")}
    freeze_a = rec(
        "judicial_assistance",
        freeze
        | {"notice_number": "(2023)渝0103执12号", "court": COURT_A, "kind": "股权冻结"}
        | {"from_date": "2023-01-05", "to_date": "2026-01-04"},
        date(2023, 1, 5),
    )
    mortgage = rec(
        "chattel_mortgage",
        {
            "registration_number": "渝中抵2023001",
            "registered_on": "2023-03-01",
            "mortgagee": "重庆农村商业银行股份有限公司",
            "secured_amount": _money("2000000"),
            "state": "有效",
        },
        date(2023, 3, 1),
    )
    listing = rec(
        "abnormal_operation_listing", listing_data("渝中市监列〔2023〕5号"), date(2023, 4, 1)
    )
    pledge_data = {
        "registration_number": "渝中质2023007",
        "registered_on": "2023-05-01",
        "pledgor": "王五",
        "pledgee": "重庆银行股份有限公司",
        "amount": _money("500000"),
        "state": "有效",
    }
    pledge = rec("equity_pledge", pledge_data, date(2023, 5, 1), record_id=ids["pledge"])
    pledge_cancelled = rec(
        "equity_pledge",
        pledge_data | {"state": "注销"},
        date(2023, 5, 1),
        record_id=ids["pledge"],
        revision=2,
    )
    release_a = rec(
        "judicial_assistance",
        freeze
        | {"notice_number": "(2023)渝0103执12号之一", "court": COURT_A, "kind": "解除冻结"}
        | {"from_date": "2023-07-05"},
        date(2023, 7, 5),
    )
    removal = rec(
        "abnormal_operation_removal",
        listing_data("渝中市监移〔2023〕9号", "已补报年度报告"),
        date(2023, 10, 1),
    )
    freeze_b = rec(
        "judicial_assistance",
        freeze
        | {"notice_number": "(2024)渝05执88号", "court": COURT_B, "kind": "股权冻结"}
        | {"from_date": "2024-02-01", "to_date": "2027-01-31"},
        date(2024, 2, 1),
    )
    deregistration = rec(
        "deregistration",
        {"deregistered_on": "2025-02-01", "kind": "deregistered", "reason": "决议解散"},
        date(2025, 2, 1),
    )
    return [
        ("registration", registration),
        ("rename", rename),
        ("penalty", penalty),
        ("correction", correction),
        ("doomed_penalty", doomed),
        ("doomed_revoked", revoked(doomed, "行政复议撤销", revoked_minute=next(minute))),
        ("by_number", by_number),
        ("freeze_a", freeze_a),
        ("mortgage", mortgage),
        ("listing", listing),
        ("pledge", pledge),
        ("pledge_cancelled", pledge_cancelled),
        ("release_a", release_a),
        ("removal", removal),
        ("freeze_b", freeze_b),
        ("deregistration", deregistration),
    ]


def record_roles(life: list[tuple[str, CloudEvent]], uscc: str, number: str) -> dict[str, str]:
    """Run-specific identifiers -> stable names: each record id by the role of
    its first event, the USCC and the old registration number."""
    roles: dict[str, str] = {uscc: "USCC", number: "OLD-NUMBER"}
    for role, event in life:
        roles.setdefault(str(event.data["record_id"]), role)
    return roles


def _stable(value: Any, roles: dict[str, str]) -> Any:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    for identifier, role in roles.items():
        text = text.replace(identifier, role)
    return json.loads(text)


ENTERPRISE_FIELDS = (
    "registered",
    "name",
    "former_names",
    "registration_number",
    "legal_representative",
    "status",
    "status_code",
    "status_since",
    "flags",
    "record_counts",
    "equity_freezes",
    "chattel_mortgages",
    "equity_pledges",
)
RECORD_FIELDS = (
    "category",
    "status",
    "revision",
    "data",
    "occurred_on",
    "enterprise_name",
    "registration_number",
    "revocation_reason",
    "revoked_at",
)


class LedgerView:
    def __init__(self, client: httpx.AsyncClient, keys: SigningKeys) -> None:
        self.client = client
        self.headers = keys.headers("CQ-NDRC", "ledger:read")
        self.feed: list[dict[str, Any]] = []

    async def _follow_feed(self) -> None:
        after = self.feed[-1]["sequence"] if self.feed else 0
        self.feed += await feed_events(self.client, self.headers, after=after)

    async def state(self, uscc: str, roles: dict[str, str]) -> dict[str, Any] | None:
        """Everything the ledger holds about the enterprise, with run-specific
        ids replaced by stable names and bookkeeping (versions, times) left out."""
        response = await self.client.get(f"/v1/enterprises/{uscc}", headers=self.headers)
        if response.status_code == 404:
            return None
        enterprise = response.json()
        page = (
            await self.client.get(
                f"/v1/enterprises/{uscc}/records", params={"limit": 200}, headers=self.headers
            )
        ).json()
        records = {
            item["record_id"]: {key: item[key] for key in RECORD_FIELDS}
            | {"revisions": [(r["revision"], r["data"]) for r in item["revisions"]]}
            for item in page["items"]
        }
        waiting = (
            await self.client.get("/v1/unmatched", params={"limit": 1000}, headers=self.headers)
        ).json()["items"]
        await self._follow_feed()
        snapshots = [
            e["data"]
            for e in self.feed
            if e["type"] == "ecips.enterprise.changed" and e["subject"] == uscc
        ]
        return _stable(
            {
                "enterprise": {key: enterprise[key] for key in ENTERPRISE_FIELDS},
                "records": records,
                "waiting": [
                    w for w in waiting if {w["uscc"], w["registration_number"]} & set(roles)
                ],
                "last_event": {key: snapshots[-1][key] for key in ENTERPRISE_FIELDS}
                if snapshots
                else None,
                "last_event_is_current": bool(snapshots)
                and snapshots[-1]["version"] == enterprise["version"],
            },
            roles,
        )


@pytest.fixture(scope="module")
async def ledger_database(ledger: httpx.AsyncClient, database_url: str) -> AsyncIterator[Database]:
    """The ledger's database (the running app migrated its schema)."""
    database = Database(create_engine(database_url, application_name="ledger-replay"), OUTBOX)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture(scope="module")
def processor(ledger_database: Database) -> EventProcessor:
    """The ledger's own event processor, fed directly."""
    return EventProcessor(service="ledger", database=ledger_database, handlers=HANDLERS)


@pytest.fixture(scope="module")
def view(ledger: httpx.AsyncClient, ledger_keys: SigningKeys) -> LedgerView:
    return LedgerView(ledger, ledger_keys)


async def _replay(
    processor: EventProcessor, events: list[CloudEvent], *, per_transaction: int = 1
) -> list[str]:
    """Apply the events in transactions of ``per_transaction`` (as the consumer
    batches a partition's messages)."""
    if per_transaction == 1:
        return [await processor.process(event) for event in events]
    outcomes: list[str] = []
    for start in range(0, len(events), per_transaction):
        outcomes += await processor.process_batch(events[start : start + per_transaction])
    return outcomes


_in_order: dict[str, Any] = {}


async def _expected(processor: EventProcessor, view: LedgerView) -> dict[str, Any]:
    """The state after the life replayed in order (computed once)."""
    if not _in_order:
        uscc, number = random_uscc(), random_registration_number()
        life = enterprise_life(uscc, number)
        outcomes = await _replay(processor, [event for _, event in life])
        assert outcomes == ["applied"] * len(life)
        state = await view.state(uscc, record_roles(life, uscc, number))
        assert state is not None
        _in_order.update(state)
    return _in_order


async def test_the_life_in_order_is_right(processor: EventProcessor, view: LedgerView) -> None:
    state = await _expected(processor, view)
    enterprise, records = state["enterprise"], state["records"]
    assert enterprise["name"] == NEW_NAME
    assert enterprise["former_names"] == [{"name": OLD_NAME, "until": "2021-06-01"}]
    assert enterprise["legal_representative"] == "王五"
    assert enterprise["registration_number"] == "OLD-NUMBER"
    assert (enterprise["status"], enterprise["status_code"]) == ("注销", "deregistered")
    assert enterprise["status_since"] == "2025-02-01"
    assert enterprise["flags"]["abnormal_operation"] is False
    assert [f["record_id"] for f in enterprise["equity_freezes"]] == ["freeze_b"]
    assert enterprise["equity_freezes"][0]["holder"] == COURT_B
    assert enterprise["equity_freezes"][0]["amount"] == "100万元人民币"
    assert [m["reference"] for m in enterprise["chattel_mortgages"]] == ["渝中抵2023001"]
    assert enterprise["equity_pledges"] == []
    assert enterprise["record_counts"]["administrative_penalty"] == 1
    assert records["penalty"]["revision"] == 2
    assert records["penalty"]["data"]["fine"]["value"] == "30000"
    assert [r for r, _ in records["penalty"]["revisions"]] == [1, 2]
    assert records["doomed_penalty"]["status"] == "revoked"
    assert records["by_number"]["registration_number"] == "OLD-NUMBER"
    assert state["waiting"] == []
    assert state["last_event_is_current"]
    assert state["last_event"] == enterprise


@settings(
    max_examples=10,
    deadline=None,
    database=None,
    print_blob=True,
    # Each example is a database round trip; a failure is reported as drawn
    # (reproducible with the printed blob) rather than shrunk at length.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_any_arrival_order_with_duplicates_ends_in_the_same_state(
    data: st.DataObject, processor: EventProcessor, view: LedgerView
) -> None:
    expected = await _expected(processor, view)
    uscc, number = random_uscc(), random_registration_number()
    life = enterprise_life(uscc, number)
    events = [event for _, event in life]
    order = data.draw(st.permutations(events), label="arrival order")
    duplicates = data.draw(
        st.lists(st.tuples(st.sampled_from(events), st.integers(0, len(events))), max_size=6),
        label="redeliveries (event, position)",
    )
    arrivals = list(order)
    for event, position in duplicates:
        arrivals.insert(position, event)
    per_transaction = data.draw(st.sampled_from([1, 2, 5, 100]), label="events per transaction")

    outcomes = await _replay(processor, arrivals, per_transaction=per_transaction)
    assert outcomes.count("applied") == len(events)
    assert outcomes.count("duplicate") == len(duplicates)
    assert await view.state(uscc, record_roles(life, uscc, number)) == expected


async def test_through_the_broker_shuffled_and_redelivered(
    processor: EventProcessor, view: LedgerView, records_producer: AIOKafkaProducer
) -> None:
    expected = await _expected(processor, view)
    runs = []
    for seed in (7, 11, 13):
        rng = random.Random(seed)
        uscc, number = random_uscc(), random_registration_number()
        life = enterprise_life(uscc, number)
        events = [event for _, event in life]
        arrivals = rng.sample(events, len(events))
        for event in rng.sample(events, 4):
            arrivals.insert(rng.randrange(len(arrivals) + 1), event)
        # Keyed by USCC, except the record filed by the old number: another partition.
        await produce(records_producer, *arrivals)
        runs.append((uscc, record_roles(life, uscc, number)))

    for uscc, roles in runs:

        async def settled(uscc: str = uscc, roles: dict[str, str] = roles) -> bool:
            return await view.state(uscc, roles) == expected

        await eventually(settled, within=30, what=f"{uscc} in the in-order state")


async def test_enterprises_folded_by_older_rules_are_derived_again(
    processor: EventProcessor, view: LedgerView, ledger_database: Database
) -> None:
    expected = await _expected(processor, view)
    uscc, number = random_uscc(), random_registration_number()
    life = enterprise_life(uscc, number)
    await _replay(processor, [event for _, event in life])
    roles = record_roles(life, uscc, number)
    # As a row written before the rules knew freezes and mortgages.
    async with ledger_database.unit_of_work() as uow:
        await uow.session.execute(
            text(
                "UPDATE ledger.enterprises SET fold_version = 0, equity_freezes = '[]', "
                "chattel_mortgages = '[]' WHERE uscc = :uscc"
            ),
            {"uscc": uscc},
        )
    stale = await view.state(uscc, roles)
    assert stale is not None
    assert stale["enterprise"]["equity_freezes"] == []

    assert await refold_outdated(ledger_database) >= 1
    assert await view.state(uscc, roles) == expected  # the event that says so included
    assert await refold_outdated(ledger_database) == 0
