"""The evaluation rules in detail, driven directly through the service on the
real database with small catalogues: fixed durations, rule revisions and
withdrawals, duplicates."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import yaml

from ecips_common.contracts import EnterpriseChanged, PunishmentLifted, PunishmentTriggered
from ecips_common.db import Database, create_engine
from ecips_common.events import EventPayload
from ecips_common.identifiers import USCC_ALPHABET, make_uscc
from ecips_common.migrations import upgrade_to_head_async
from ecips_rules.catalogue import Catalogue, parse_catalogue
from ecips_rules.models import OUTBOX
from ecips_rules.service import CheckService, EvaluationService

DAY0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Chongqing


def at(days: int) -> datetime:
    return DAY0 + timedelta(days=days)


def catalogue(*rules: dict[str, Any], version: str = "t.1") -> Catalogue:
    return parse_catalogue(
        yaml.safe_dump(
            {
                "version": version,
                "scenarios": [{"key": "fiscal_subsidy", "title": "财政补助"}],
                "departments": [{"code": "CQ-FIN", "name": "重庆市财政局"}],
                "rules": list(rules),
            },
            allow_unicode=True,
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


def snapshot(uscc: str, version: int, **fields: Any) -> EnterpriseChanged:
    return EnterpriseChanged.model_validate(
        {
            "uscc": uscc,
            "version": version,
            "registered": True,
            "name": "重庆测试有限公司",
            "division_code": "500103",
            "status": "active",
            "flags": {},
            "changed_at": datetime.now(UTC),
            **fields,
        }
    )


def new_uscc() -> str:
    body = "".join(random.choices(USCC_ALPHABET, k=8))
    return make_uscc(org_body=body, division="500105")


@pytest.fixture(scope="module")
async def database(database_url: str) -> AsyncIterator[Database]:
    await upgrade_to_head_async("ecips_rules", database_url, "rules")
    db = Database(create_engine(database_url, application_name="rules-tests"), OUTBOX)
    try:
        yield db
    finally:
        await db.dispose()


async def apply(
    database: Database, cat: Catalogue, snap: EnterpriseChanged, now: datetime
) -> list[EventPayload]:
    async with database.unit_of_work() as uow:
        await EvaluationService(uow, cat).apply(snap, now=now)
        return [p.payload for p in uow.pending]


async def allowed(database: Database, cat: Catalogue, uscc: str, now: datetime) -> bool:
    async with database.read_only() as session:
        (result,) = await CheckService(session, cat).check([uscc], "fiscal_subsidy", now=now)
    return result.allowed


async def test_fixed_duration_runs_its_days_once_per_onset(database: Database) -> None:
    cat = catalogue(
        rule(
            "tax_arrears_30_days",
            "enterprise.record_counts.tax_arrears > 0",
            duration={"type": "fixed", "days": 30},
        )
    )
    uscc = new_uscc()
    owing = {"record_counts": {"tax_arrears": 1}}

    (event,) = await apply(database, cat, snapshot(uscc, 1, **owing), at(0))
    assert isinstance(event, PunishmentTriggered)
    assert (event.since, event.until) == (date(2026, 3, 2), date(2026, 3, 31))
    # The condition ending does not end a fixed-duration punishment ...
    assert await apply(database, cat, snapshot(uscc, 2), at(5)) == []
    assert await allowed(database, cat, uscc, at(5)) is False
    # ... nor does it holding again restart it.
    assert await apply(database, cat, snapshot(uscc, 3, **owing), at(10)) == []
    # After the last day the check answers allowed even before any event arrives.
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


async def test_fixed_duration_already_served_is_not_triggered(database: Database) -> None:
    cat = catalogue(
        rule(
            "serious_illegal_one_year",
            "enterprise.flags.serious_illegal",
            duration={"type": "fixed", "days": 365},
            since_from="flags.serious_illegal_since",
        )
    )
    flags = {"serious_illegal": True, "serious_illegal_since": "2020-01-01"}
    assert await apply(database, cat, snapshot(new_uscc(), 1, flags=flags), at(0)) == []


async def test_revised_rule_is_reissued_and_withdrawn_rule_is_lifted(database: Database) -> None:
    uscc = new_uscc()
    flags = {"abnormal_operation": True, "abnormal_operation_since": "2026-01-05"}
    condition = "enterprise.flags.abnormal_operation"
    first = catalogue(rule("abnormal", condition, since_from="flags.abnormal_operation_since"))
    (event,) = await apply(database, first, snapshot(uscc, 1, flags=flags), at(0))
    assert isinstance(event, PunishmentTriggered)
    assert event.since == date(2026, 1, 5)

    revised = catalogue(rule("abnormal", condition, version=2), version="t.2")
    lifted, reissued = await apply(database, revised, snapshot(uscc, 2, flags=flags), at(1))
    assert isinstance(lifted, PunishmentLifted)
    assert (lifted.reason, lifted.rule_version) == ("rule_revised", 1)
    assert isinstance(reissued, PunishmentTriggered)
    assert (reissued.rule_version, reissued.since) == (2, date(2026, 1, 5))

    withdrawn = catalogue(rule("other", "false"), version="t.3")
    (event,) = await apply(database, withdrawn, snapshot(uscc, 3, flags=flags), at(2))
    assert isinstance(event, PunishmentLifted)
    assert event.reason == "rule_withdrawn"
    assert await allowed(database, withdrawn, uscc, at(2)) is True


async def test_same_or_older_version_changes_nothing(database: Database) -> None:
    cat = catalogue(rule("serious", "enterprise.flags.serious_illegal"))
    uscc = new_uscc()
    assert len(await apply(database, cat, snapshot(uscc, 5), at(0))) == 0
    flagged = snapshot(uscc, 5, flags={"serious_illegal": True})
    assert await apply(database, cat, flagged, at(0)) == []
    assert (
        await apply(database, cat, snapshot(uscc, 4, flags={"serious_illegal": True}), at(0)) == []
    )
    assert await allowed(database, cat, uscc, at(0)) is True
    (event,) = await apply(database, cat, snapshot(uscc, 6, flags={"serious_illegal": True}), at(0))
    assert isinstance(event, PunishmentTriggered)
