"""The change feed held open: NDJSON and server-sent events, heartbeats,
and a consumer that drops the connection mid-stream and resumes from its
cursor receiving every change exactly once."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from ledger_support import (
    accepted,
    eventually,
    feed_events,
    feed_head,
    penalty_data,
    produce,
    random_uscc,
    registration_data,
)

from ecips.testkit import SigningKeys

FOLLOWER = "CQ-NATIONAL"


def _headers(keys: SigningKeys, scope: str = "changes:read") -> dict[str, str]:
    return keys.headers(FOLLOWER, scope)


async def _produce_enterprises(producer: AIOKafkaProducer, usccs: list[str]) -> None:
    for n, uscc in enumerate(usccs):
        await produce(
            producer,
            accepted("registration", registration_data(f"重庆流式{n:02d}有限公司"), uscc=uscc),
            accepted("administrative_penalty", penalty_data(f"流罚{n}"), uscc=uscc),
        )
        await asyncio.sleep(0.02)  # a steady trickle, so the stream is cut mid-flow


async def _open_streams(ledger: httpx.AsyncClient) -> float:
    metrics = (await ledger.get("/metrics")).text
    for line in metrics.splitlines():
        if line.startswith("ecips_ledger_open_change_streams "):
            return float(line.split()[1])
    raise AssertionError("no open-streams gauge")


async def _read_events(
    response: httpx.Response, *, until: int, out: list[dict[str, Any]], heartbeats: list[int]
) -> None:
    """Collect events (and heartbeats) until ``until`` events arrived."""
    async for line in response.aiter_lines():
        if not line:
            continue
        item = json.loads(line)
        if "specversion" not in item:
            heartbeats.append(item["next_cursor"])
            continue
        out.append(item)
        if len(out) >= until:
            return


async def test_a_consumer_that_disconnects_and_resumes_gets_every_change_once(
    ledger: httpx.AsyncClient, ledger_keys: SigningKeys, records_producer: AIOKafkaProducer
) -> None:
    headers = _headers(ledger_keys)
    start = await feed_head(ledger, headers)
    usccs = [random_uscc() for _ in range(12)]
    producing = asyncio.create_task(_produce_enterprises(records_producer, usccs))

    received: list[dict[str, Any]] = []
    heartbeats: list[int] = []
    # First connection: dropped after a handful of events, while events still flow.
    async with ledger.stream(
        "GET", "/v1/changes/stream", params={"after": start}, headers=headers
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        await asyncio.wait_for(
            _read_events(response, until=7, out=received, heartbeats=heartbeats), 30
        )
    cut_at = received[-1]["sequence"]

    async def stream_released() -> bool:
        return await _open_streams(ledger) == 0

    # The server noticed the client left and let go of the stream.
    await eventually(stream_released, within=10, what="the dropped stream released")
    await producing

    async def all_penalties_filed() -> list[dict[str, Any]] | None:
        events = await feed_events(ledger, headers, after=start)
        filed = {
            e["subject"]
            for e in events
            if e["type"] == "ecips.record.filed"
            and e["data"]["category"] == "administrative_penalty"
        }
        return events if filed >= set(usccs) else None

    expected = await eventually(all_penalties_filed, what="every enterprise's penalty filed")
    # Second connection: resumes from the last event processed.
    async with ledger.stream(
        "GET", "/v1/changes/stream", params={"after": cut_at}, headers=headers
    ) as response:
        rest: list[dict[str, Any]] = []
        lines = response.aiter_lines()

        async def until_caught_up() -> None:
            async for line in lines:
                item = json.loads(line)
                if "specversion" not in item:
                    heartbeats.append(item["next_cursor"])
                    continue
                rest.append(item)
                if item["sequence"] >= expected[-1]["sequence"]:
                    return

        await asyncio.wait_for(until_caught_up(), 30)

        # Idle now: the open stream says it is alive, and where it stands.
        async def one_heartbeat() -> None:
            async for line in lines:
                if "specversion" not in json.loads(line):
                    return

        await asyncio.wait_for(one_heartbeat(), 10)

    got = [e["id"] for e in received + rest]
    assert len(got) == len(set(got)), "an event arrived twice"
    assert got[: len(expected)] == [e["id"] for e in expected], "an event is missing"
    sequences = [e["sequence"] for e in received + rest]
    assert sequences == sorted(sequences)
    assert rest[0]["sequence"] > cut_at
    assert {e["subject"] for e in received + rest} >= set(usccs)


async def test_server_sent_events_resume_from_last_event_id(
    ledger: httpx.AsyncClient, ledger_keys: SigningKeys, records_producer: AIOKafkaProducer
) -> None:
    headers = _headers(ledger_keys, "ledger:read")
    uscc = random_uscc()
    await produce(
        records_producer,
        accepted("registration", registration_data("重庆事件流有限公司"), uscc=uscc),
        accepted("administrative_penalty", penalty_data("SSE罚1"), uscc=uscc),
    )

    async def mine() -> list[dict[str, Any]] | None:
        events = [e for e in await feed_events(ledger, headers) if e["subject"] == uscc]
        return events if len(events) == 4 else None

    events = await eventually(mine, what="the enterprise's four events")
    last_seen = events[1]["sequence"]
    response = await ledger.get(
        "/v1/changes/stream",
        params={"follow": "false"},
        headers={**headers, "Accept": "text/event-stream", "Last-Event-ID": str(last_seen)},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = [f for f in response.text.split("\n\n") if f.strip()]
    assert frames[0] == "retry: 1000"
    parsed = []
    for frame in frames[1:]:
        fields = dict(line.split(": ", 1) for line in frame.splitlines())
        event = json.loads(fields["data"])
        assert fields["id"] == str(event["sequence"])
        assert fields["event"] == event["type"]
        parsed.append(event)
    assert parsed[0]["sequence"] > last_seen
    assert [e["id"] for e in parsed if e["subject"] == uscc] == [e["id"] for e in events[2:]]
    # follow=false is the feed up to now in one response: the same events as the paged feed.
    expected = await feed_events(ledger, headers, after=last_seen)
    assert [e["id"] for e in parsed][: len(expected)] == [e["id"] for e in expected]


async def test_stream_and_snapshot_check_token_scope_and_cursor(
    ledger: httpx.AsyncClient, ledger_keys: SigningKeys
) -> None:
    for path in ("/v1/changes/stream", "/v1/snapshot"):
        response = await ledger.get(path, params={"follow": "false"})
        assert response.status_code == 401
        response = await ledger.get(
            path, params={"follow": "false"}, headers=_headers(ledger_keys, "records:write")
        )
        assert response.status_code == 403
        assert response.json()["code"] == "insufficient_scope"
    headers = _headers(ledger_keys)
    response = await ledger.get("/v1/changes/stream", params={"after": -1}, headers=headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "after"
    response = await ledger.get("/v1/changes/stream", headers={**headers, "Last-Event-ID": "abc"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "Last-Event-ID"
    response = await ledger.get("/v1/changes/stream", params={"format": "xml"}, headers=headers)
    assert response.status_code == 422
    # The stream and the snapshot are non-public reads: on record.
    audit = await ledger.get(
        "/v1/audit", headers=ledger_keys.headers(FOLLOWER, "ledger:read"), params={"limit": 50}
    )
    assert "/v1/changes/stream" in {e["path"] for e in audit.json()["items"]}
