"""Time alone changes answers: the service's scheduler, with its clock moved
forward, lifts a fixed-duration measure on its day and notices "listed for
three years" on its day, with no new record and no new snapshot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest
from rules_testkit import FakeClock, RunningRules, eventually, new_uscc, rules_app, snapshot

START = date(2026, 3, 2)


@pytest.fixture(scope="module")
async def rules(rules_database_url: str) -> AsyncIterator[RunningRules]:
    async with rules_app(rules_database_url, FakeClock(START)) as running:
        yield running


async def answer(rules: RunningRules, uscc: str, scenario: str) -> dict[str, Any]:
    response = await rules.client.get(f"/v1/checks/{uscc}", params={"scenario": scenario})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def events_of(rules: RunningRules, uscc: str) -> list[dict[str, Any]]:
    return [e for e in await rules.events() if e["subject"] == uscc]


async def test_time_alone_lifts_and_triggers_on_the_day(rules: RunningRules) -> None:
    tax, abnormal, penalised = new_uscc(), new_uscc(), new_uscc()
    # Published 2023-03-10 for three years: the last day is 2026-03-09.
    await rules.apply(
        snapshot(
            tax, 1, flags={"major_tax_violation": True, "major_tax_violation_since": "2023-03-10"}
        )
    )
    # Listed 2023-03-05: three years have run at the end of 2026-03-05.
    await rules.apply(
        snapshot(
            abnormal,
            1,
            flags={"abnormal_operation": True, "abnormal_operation_since": "2023-03-05"},
        )
    )
    # Three penalties in 2025: key supervision through 2026.
    await rules.apply(
        snapshot(
            penalised,
            1,
            record_counts={"administrative_penalty": 3},
            penalty_counts_by_year={"2025": 3},
        )
    )
    blocked = await answer(rules, tax, "government_procurement")
    assert blocked["allowed"] is False
    assert blocked["restrictions"][0]["until"] == "2026-03-09"
    assert (await answer(rules, abnormal, "government_procurement"))["allowed"] is True
    assert (await answer(rules, penalised, "honorary_title"))["allowed"] is False

    # The day before: nothing changes.
    rules.clock.set(date(2026, 3, 9))
    await eventually(lambda: scheduled_up_to(rules, date(2026, 3, 9)), bool)
    assert [e["type"] for e in await events_of(rules, tax)] == ["ecips.punishment.triggered"]
    assert (await answer(rules, tax, "government_procurement"))["allowed"] is False

    # Its day: lifted by the scheduler, with no new record.
    rules.clock.set(date(2026, 3, 10))
    events = await eventually(lambda: events_of(rules, tax), lambda e: len(e) == 2)
    assert events[1]["type"] == "ecips.punishment.lifted"
    assert events[1]["data"]["reason"] == "duration_elapsed"
    assert events[1]["data"]["lifted_on"] == "2026-03-10"
    assert (await answer(rules, tax, "government_procurement"))["allowed"] is True

    # Listed for three years: noticed on its day (the 6th), measures from that day.
    events = await eventually(lambda: events_of(rules, abnormal), lambda e: len(e) == 2)
    moved = events[1]["data"]
    assert (moved["rule_id"], moved["since"]) == ("abnormal_operation_three_years", "2026-03-06")
    assert "transfer_to_serious_illegal_list" in {m["measure"] for m in moved["measures"]}
    procurement = await answer(rules, abnormal, "government_procurement")
    assert procurement["allowed"] is False
    assert procurement["restrictions"][0]["rule_id"] == "abnormal_operation_three_years"

    # New Year's Day 2027: last year's penalties are the year before's.
    rules.clock.set(date(2027, 1, 1))
    events = await eventually(lambda: events_of(rules, penalised), lambda e: len(e) == 2)
    assert events[1]["data"]["rule_id"] == "repeated_penalties_in_one_year"
    assert events[1]["data"]["reason"] == "condition_no_longer_holds"
    assert (await answer(rules, penalised, "honorary_title"))["allowed"] is True


async def scheduled_up_to(rules: RunningRules, day: date) -> bool:
    """Whether no enterprise is due on or before ``day`` any more."""
    from sqlalchemy import func, select

    from ecips_rules.models import Enterprise

    async with rules.database.read_only() as session:
        due = await session.execute(
            select(func.count()).select_from(Enterprise).where(Enterprise.next_evaluation_on <= day)
        )
        return due.scalar_one() == 0
