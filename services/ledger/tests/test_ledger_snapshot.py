"""The bulk snapshot: gzip NDJSON consistent with the cursor it states, so a
snapshot plus the feed after its cursor equals the live state — taken while
events keep arriving."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from ledger_support import (
    accepted,
    eventually,
    listing_data,
    parse_snapshot,
    penalty_data,
    produce,
    random_uscc,
    registration_data,
    revoked,
)

from ecips.testkit import SigningKeys

State = tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]


def _apply(state: State, kind: str, data: dict[str, Any]) -> None:
    """What a downstream consumer does with one line or event: keep the newest version."""
    enterprises, records = state
    if kind == "ecips.enterprise.changed":
        current = enterprises.get(data["uscc"])
        if current is None or current["version"] < data["version"]:
            enterprises[data["uscc"]] = data
    elif kind == "ecips.record.filed":
        current = records.get(data["record_id"])
        if current is None or current["version"] < data["version"]:
            records[data["record_id"]] = data


async def _snapshot(ledger: httpx.AsyncClient, headers: dict[str, str]) -> tuple[int, State]:
    response = await ledger.get("/v1/snapshot", params={"include": "records"}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/gzip"
    cursor = int(response.headers["x-snapshot-cursor"])
    assert f"ledger-snapshot-{cursor}.ndjson.gz" in response.headers["content-disposition"]
    lines = parse_snapshot(response.content)
    header, body, trailer = lines[0]["snapshot"], lines[1:-1], lines[-1]["end"]
    assert header["cursor"] == trailer["cursor"] == cursor
    assert header["includes"] == ["enterprises", "records"]
    kinds = [line["type"] for line in body]
    assert kinds.count("ecips.enterprise.changed") == header["enterprises"]
    assert kinds.count("ecips.enterprise.changed") == trailer["enterprises"]
    assert kinds.count("ecips.record.filed") == trailer["records"]
    state: State = ({}, {})
    for line in body:
        assert line["subject"] == line["data"]["uscc"]
        _apply(state, line["type"], line["data"])
    return cursor, state


async def _life(producer: AIOKafkaProducer, uscc: str, n: int) -> None:
    penalty = accepted("administrative_penalty", penalty_data(f"快照罚{n}"), uscc=uscc)
    listing = accepted(
        "abnormal_operation_listing", listing_data(f"快照列{n}"), uscc=uscc, accepted_minute=3
    )
    await produce(
        producer,
        accepted("registration", registration_data(f"重庆快照{n:02d}有限公司"), uscc=uscc),
        penalty,
        listing,
    )
    await asyncio.sleep(0.03)
    await produce(
        producer,
        revoked(penalty, "复议撤销"),
        accepted(
            "abnormal_operation_removal",
            listing_data(f"快照移{n}", "已补报"),
            uscc=uscc,
            occurred_on=date(2025, 8, 1),
            accepted_minute=5,
        ),
    )


async def test_snapshot_plus_the_feed_after_its_cursor_is_the_live_state(
    ledger: httpx.AsyncClient, ledger_keys: SigningKeys, records_producer: AIOKafkaProducer
) -> None:
    headers = ledger_keys.headers("CQ-NATIONAL", "changes:read")
    reader = ledger_keys.headers("CQ-NATIONAL", "ledger:read")
    # The consumer is up (it joins its group once per session) before the clock starts.
    warmup = random_uscc()
    await produce(
        records_producer,
        accepted("registration", registration_data("重庆快照预热有限公司"), uscc=warmup),
    )

    async def warmed_up() -> bool:
        return (await ledger.get(f"/v1/enterprises/{warmup}", headers=reader)).is_success

    await eventually(warmed_up, what="the consumer at work")
    usccs = [random_uscc() for _ in range(10)]

    async def produce_all() -> None:
        for n, uscc in enumerate(usccs):
            await _life(records_producer, uscc, n)

    producing = asyncio.create_task(produce_all())

    async def some_filed() -> bool:
        return (await ledger.get(f"/v1/enterprises/{usccs[2]}", headers=reader)).is_success

    # Taken mid-flow: some enterprises are in, others still arriving.
    await eventually(some_filed, what="the first enterprises filed")
    first_cursor, state = await _snapshot(ledger, headers)
    await producing

    async def settled() -> bool:
        for uscc in usccs:
            response = await ledger.get(f"/v1/enterprises/{uscc}", headers=reader)
            if not response.is_success or response.json()["flags"]["abnormal_operation"]:
                return False
        return True

    await eventually(settled, what="every enterprise's removal applied")
    live_cursor, live = await _snapshot(ledger, headers)
    assert live_cursor > first_cursor

    # Follow the feed from the first snapshot's cursor up to the live one's.
    response = await ledger.get(
        "/v1/changes/stream", params={"after": first_cursor, "follow": "false"}, headers=headers
    )
    followed = [json.loads(line) for line in response.text.splitlines()]
    followed = [e for e in followed if e["sequence"] <= live_cursor]
    assert followed, "nothing happened after the first snapshot"
    assert all(e["sequence"] > first_cursor for e in followed)
    for event in followed:
        _apply(state, event["type"], event["data"])

    enterprises, records = state
    live_enterprises, live_records = live
    assert set(enterprises) >= set(usccs)
    assert enterprises == live_enterprises
    assert records == live_records

    # And the live snapshot is what the API answers.
    for uscc in usccs[:3]:
        api = (await ledger.get(f"/v1/enterprises/{uscc}", headers=reader)).json()
        snap = live_enterprises[uscc]
        assert (api["version"], api["name"], api["record_counts"]) == (
            snap["version"],
            snap["name"],
            snap["record_counts"],
        )
        assert api["status_code"] == snap["status_code"] == "active"
