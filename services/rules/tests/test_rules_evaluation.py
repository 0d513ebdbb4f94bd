"""The evaluation rules in detail, driven directly through the service on the
real database with small catalogues: fixed durations, delays, rule revisions
and withdrawals, duplicates, and skipping rules whose inputs did not change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from rules_testkit import apply, migrated_database, new_uscc, snapshot
from sqlalchemy import select

from ecips_common.contracts import PunishmentLifted, PunishmentTriggered
from ecips_common.db import Database
from ecips_rules.catalogue import parse_catalogue
from ecips_rules.models import Enterprise
from ecips_rules.registry import CatalogueRegistry
from ecips_rules.repository import RulesRepository
from ecips_rules.service import CheckService, EvaluationService

DAY0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Chongqing


def at(days: int) -> datetime:
    return DAY0 + timedelta(days=days)


def catalogue(*rules: dict[str, Any], number: int) -> CatalogueRegistry:
    """A registry holding a small catalogue (this module's database has none
    enacted, so the registry's own is the one in force)."""
    return CatalogueRegistry(
        parse_catalogue(
            {
                "scenarios": [{"key": "fiscal_subsidy", "title": "财政补助"}],
                "departments": [{"code": "CQ-FIN", "name": "重庆市财政局"}],
                "rules": list(rules),
            },
            number=number,
        )
    )


def rule(rule_id: str, condition: str, *, version: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "id": rule_id,
        "version": version,
        "title": "测试规则",
        "kind": "punishment",
        "condition": condition,
        "duration": {"type": "while_condition"},
        "legal_basis": "测试依据",
        "measures": [
            {
                "key": "restrict_fiscal_funds",
                "title": "限制申请财政性资金",
                "scenarios": ["fiscal_subsidy"],
                "department": "CQ-FIN",
                "legal_basis": "测试依据",
            }
        ],
        **extra,
    }


@pytest.fixture(scope="module")
async def database(rules_database_url: str) -> AsyncIterator[Database]:
    db = await migrated_database(rules_database_url)
    try:
        yield db
    finally:
        await db.dispose()


async def allowed(
    database: Database, registry: CatalogueRegistry, uscc: str, now: datetime
) -> bool:
    async with database.read_only() as session:
        (result,) = await CheckService(RulesRepository(session).check_rows, registry.current).check(
            [uscc], "fiscal_subsidy", now=now
        )
    return result.allowed


async def stored(database: Database, uscc: str) -> Enterprise:
    async with database.read_only() as session:
        return (
            await session.execute(select(Enterprise).where(Enterprise.uscc == uscc))
        ).scalar_one()


async def test_fixed_duration_runs_its_days_once_per_onset(database: Database) -> None:
    cat = catalogue(
        rule(
            "tax_arrears_30_days",
            "enterprise.record_counts.tax_arrears > 0",
            duration={"type": "fixed", "days": 30},
        ),
        number=101,
    )
    uscc = new_uscc()
    owing = {"record_counts": {"tax_arrears": 1}}

    (event,) = await apply(database, cat, snapshot(uscc, 1, **owing), at(0))
    assert isinstance(event, PunishmentTriggered)
    assert (event.since, event.until) == (date(2026, 3, 2), date(2026, 3, 31))
    # The day it ends is the day it must be looked at again.
    assert (await stored(database, uscc)).next_evaluation_on == date(2026, 4, 1)
    # The condition ending does not end a fixed-duration punishment ...
    assert await apply(database, cat, snapshot(uscc, 2), at(5)) == []
    assert await allowed(database, cat, uscc, at(5)) is False
    # ... nor does it holding again restart it.
    assert await apply(database, cat, snapshot(uscc, 3, **owing), at(10)) == []
    # After the last day the check answers allowed even before anything is recorded.
    assert await allowed(database, cat, uscc, at(29)) is False
    assert await allowed(database, cat, uscc, at(30)) is True
    # The next change records the end; the condition still holding is the same onset.
    (event,) = await apply(database, cat, snapshot(uscc, 4, **owing), at(40))
    assert isinstance(event, PunishmentLifted)
    assert event.reason == "duration_elapsed"
    assert await apply(database, cat, snapshot(uscc, 5), at(41)) == []
    # A new onset starts a new period.
    (event,) = await apply(database, cat, snapshot(uscc, 6, **owing), at(42))
    assert isinstance(event, PunishmentTriggered)
    assert event.since == date(2026, 4, 13)


async def test_fixed_duration_ends_on_its_day_when_the_scheduler_looks(database: Database) -> None:
    cat = catalogue(
        rule(
            "tax_listed_one_year",
            "enterprise.flags.major_tax_violation",
            since_from="flags.major_tax_violation_since",
            duration={"type": "fixed", "years": 1},
        ),
        number=102,
    )
    uscc = new_uscc()
    flags = {"major_tax_violation": True, "major_tax_violation_since": "2025-06-10"}
    (event,) = await apply(database, cat, snapshot(uscc, 1, flags=flags), at(0))
    assert isinstance(event, PunishmentTriggered)
    assert (event.since, event.until) == (date(2025, 6, 10), date(2026, 6, 9))
    assert (await stored(database, uscc)).next_evaluation_on == date(2026, 6, 10)
    # No new snapshot: the re-evaluation the scheduler runs on the day lifts it.
    async with database.unit_of_work() as uow:
        before = await EvaluationService(
            uow, cat, now=datetime(2026, 6, 9, 2, tzinfo=UTC)
        ).reevaluate([uscc])
        assert before.changes == []
    async with database.unit_of_work() as uow:
        result = await EvaluationService(
            uow, cat, now=datetime(2026, 6, 10, 2, tzinfo=UTC)
        ).reevaluate([uscc])
        (lifted,) = [p.payload for p in uow.pending]
    assert isinstance(lifted, PunishmentLifted)
    assert (lifted.reason, lifted.lifted_on) == ("duration_elapsed", date(2026, 6, 10))
    assert [(c.action, c.reason) for c in result.changes] == [("lifted", "duration_elapsed")]
    # The listing still stands, but this onset has been served.
    assert (await stored(database, uscc)).next_evaluation_on is None


async def test_fixed_duration_already_served_is_not_triggered(database: Database) -> None:
    cat = catalogue(
        rule(
            "serious_illegal_one_year",
            "enterprise.flags.serious_illegal",
            duration={"type": "fixed", "days": 365},
            since_from="flags.serious_illegal_since",
        ),
        number=103,
    )
    flags = {"serious_illegal": True, "serious_illegal_since": "2020-01-01"}
    assert await apply(database, cat, snapshot(new_uscc(), 1, flags=flags), at(0)) == []


async def test_a_delay_is_noticed_on_its_day(database: Database) -> None:
    cat = catalogue(
        rule(
            "abnormal_three_years",
            "enterprise.flags.abnormal_operation",
            since_from="flags.abnormal_operation_since",
            delay={"years": 3},
        ),
        number=104,
    )
    uscc = new_uscc()
    flags = {"abnormal_operation": True, "abnormal_operation_since": "2023-03-02"}
    # Three years from the day after the listing run out on 2026-03-02: it applies from the 3rd.
    assert await apply(database, cat, snapshot(uscc, 1, flags=flags), at(0)) == []
    assert (await stored(database, uscc)).next_evaluation_on == date(2026, 3, 3)
    async with database.unit_of_work() as uow:
        await EvaluationService(uow, cat, now=at(1)).reevaluate([uscc])
        (event,) = [p.payload for p in uow.pending]
    assert isinstance(event, PunishmentTriggered)
    assert (event.rule_id, event.since, event.until) == (
        "abnormal_three_years",
        date(2026, 3, 3),
        None,
    )
    # Removal from the list lifts it.
    (event,) = await apply(database, cat, snapshot(uscc, 2, flags={}), at(2))
    assert isinstance(event, PunishmentLifted)
    assert event.reason == "condition_no_longer_holds"


async def test_revised_rule_is_reissued_and_withdrawn_rule_is_lifted(database: Database) -> None:
    uscc = new_uscc()
    flags = {"abnormal_operation": True, "abnormal_operation_since": "2026-01-05"}
    condition = "enterprise.flags.abnormal_operation"
    first = catalogue(
        rule("abnormal", condition, since_from="flags.abnormal_operation_since"), number=105
    )
    (event,) = await apply(database, first, snapshot(uscc, 1, flags=flags), at(0))
    assert isinstance(event, PunishmentTriggered)
    assert event.since == date(2026, 1, 5)

    # Version 2 keeps the fiscal measure and adds one: the kept one continues.
    kept = rule("abnormal", condition)["measures"][0]
    added = {**kept, "key": "restrict_fiscal_support", "title": "限制政策性扶持"}
    revised = catalogue(rule("abnormal", condition, version=2, measures=[kept, added]), number=106)
    lifted, reissued = await apply(database, revised, snapshot(uscc, 2, flags=flags), at(1))
    assert isinstance(lifted, PunishmentLifted)
    assert (lifted.reason, lifted.rule_version) == ("rule_revised", 1)
    assert [(m.department, m.measure) for m in lifted.continued_measures] == [
        ("CQ-FIN", "restrict_fiscal_funds")
    ]
    assert isinstance(reissued, PunishmentTriggered)
    assert (reissued.rule_version, reissued.since) == (2, date(2026, 1, 5))
    assert reissued.catalogue_version == "106"

    withdrawn = catalogue(rule("other", "false"), number=107)
    (event,) = await apply(database, withdrawn, snapshot(uscc, 3, flags=flags), at(2))
    assert isinstance(event, PunishmentLifted)
    assert event.reason == "rule_withdrawn"
    assert event.continued_measures == []
    assert await allowed(database, withdrawn, uscc, at(2)) is True


async def test_same_or_older_version_changes_nothing(database: Database) -> None:
    cat = catalogue(rule("serious", "enterprise.flags.serious_illegal"), number=108)
    uscc = new_uscc()
    assert await apply(database, cat, snapshot(uscc, 5), at(0)) == []
    listed = {"serious_illegal": True}
    assert await apply(database, cat, snapshot(uscc, 5, flags=listed), at(0)) == []
    assert await apply(database, cat, snapshot(uscc, 4, flags=listed), at(0)) == []
    assert await allowed(database, cat, uscc, at(0)) is True
    (event,) = await apply(database, cat, snapshot(uscc, 6, flags=listed), at(0))
    assert isinstance(event, PunishmentTriggered)


async def test_only_rules_whose_inputs_changed_are_evaluated(database: Database) -> None:
    cat = catalogue(
        rule("serious", "enterprise.flags.serious_illegal"),
        rule("owing", "enterprise.record_counts.tax_arrears > 0"),
        rule("repeated", "enterprise.penalties.this_year >= 3"),
        number=109,
    )
    uscc = new_uscc()

    async def evaluate(version: int, now: datetime, **fields: Any) -> tuple[int, int]:
        async with database.unit_of_work() as uow:
            service = EvaluationService(uow, cat, now=now)
            outcome = await service.apply(snapshot(uscc, version, **fields))
            assert outcome.applied
        row = await stored(database, uscc)
        state = row.rule_state
        return len(state), row.evaluated_catalogue or 0

    async def counted(version: int, now: datetime, **fields: Any) -> tuple[float, float]:
        from ecips_rules.service import RULES_EVALUATED

        before = (
            RULES_EVALUATED.labels("evaluated")._value.get(),
            RULES_EVALUATED.labels("skipped")._value.get(),
        )
        await evaluate(version, now, **fields)
        return (
            RULES_EVALUATED.labels("evaluated")._value.get() - before[0],
            RULES_EVALUATED.labels("skipped")._value.get() - before[1],
        )

    by_year = {"penalty_counts_by_year": {"2026": 3}}
    assert await counted(1, at(0), **by_year) == (3, 0)  # first sight: every rule
    # A new name changes no input: nothing is evaluated, the answers stand.
    assert await counted(2, at(1), name="重庆改名有限公司", **by_year) == (0, 3)
    # Tax arrears: only the rule reading them.
    assert await counted(3, at(2), record_counts={"tax_arrears": 1}, **by_year) == (1, 2)
    # The year turned: the per-year figures changed with no new record.
    assert await counted(
        4, datetime(2027, 1, 2, 2, tzinfo=UTC), record_counts={"tax_arrears": 1}, **by_year
    ) == (1, 2)
    async with database.read_only() as session:
        (result,) = await CheckService(RulesRepository(session).check_rows, cat.current).check(
            [uscc], "fiscal_subsidy", now=datetime(2027, 1, 2, 2, tzinfo=UTC)
        )
    assert {r.rule_id for r in result.restrictions} == {"owing"}
