"""The pure fold from records to master data, status and list flags."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ecips_ledger.master_data import (
    active_freezes,
    active_registrations_of,
    fold_master_data,
    list_flag,
    render_capital,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Rec:
    category: str
    occurred_on: date
    data: dict[str, Any] = field(default_factory=dict)
    status: str = "active"
    revision: int = 1
    accepted_at: datetime = T0
    enterprise_name: str = "重庆测试有限公司"
    registration_number: str | None = None
    record_id: uuid.UUID = field(default_factory=uuid.uuid4)


def test_registered_capital_is_rendered_in_wan() -> None:
    assert render_capital({"value": "5000000", "currency": "CNY"}) == "500万元人民币"
    assert render_capital({"value": "1234567.5", "currency": "CNY"}) == "123.45675万元人民币"
    assert render_capital({"value": "100000", "currency": "USD"}) == "10万美元"
    assert render_capital("300万元人民币") == "300万元人民币"
    assert render_capital({"value": "x"}) is None
    assert render_capital(None) is None


def test_same_day_listing_and_removal_are_ordered_by_acceptance() -> None:
    day = date(2025, 1, 10)
    listing = Rec("abnormal_operation_listing", day, {"reason": "失联"}, accepted_at=T0)
    removal = Rec("abnormal_operation_removal", day, accepted_at=T0 + timedelta(seconds=1))
    for records in ([listing, removal], [removal, listing]):
        flag = list_flag(records, "abnormal_operation_listing", "abnormal_operation_removal")
        assert flag.listed is False
    later_listing = Rec("abnormal_operation_listing", date(2025, 2, 1), {"reason": "失联"})
    flag = list_flag(
        [removal, later_listing, listing],
        "abnormal_operation_listing",
        "abnormal_operation_removal",
    )
    assert (flag.listed, flag.since, flag.reason) == (True, date(2025, 2, 1), "失联")


def test_no_active_registration_leaves_the_enterprise_unregistered() -> None:
    registration = Rec(
        "registration", date(2020, 1, 1), {"name": "重庆甲有限公司"}, status="revoked"
    )
    folded = fold_master_data([registration], {})
    assert folded is not None
    assert (folded.registered, folded.name) == (False, "重庆甲有限公司")
    assert fold_master_data([], {}) is None


def test_successive_name_changes_build_the_name_history() -> None:
    records = [
        Rec(
            "registration_change",
            date(2024, 1, 1),
            {"changed_on": "2024-01-01", "changes": [{"item": "name", "after": "重庆丙有限公司"}]},
        ),
        Rec("registration", date(2020, 1, 1), {"name": "重庆甲有限公司"}),
        Rec(
            "registration_change",
            date(2022, 1, 1),
            {"changed_on": "2022-01-01", "changes": [{"item": "name", "after": "重庆乙有限公司"}]},
        ),
        Rec(
            "deregistration",
            date(2025, 1, 1),
            {"kind": "moved_out", "deregistered_on": "2025-01-02"},
        ),
    ]
    folded = fold_master_data(records, {"registration": 1})
    assert folded is not None
    assert folded.name == "重庆丙有限公司"
    assert folded.former_names == (
        ("重庆甲有限公司", date(2022, 1, 1)),
        ("重庆乙有限公司", date(2024, 1, 1)),
    )
    assert (folded.status, folded.status_since) == ("迁出", date(2025, 1, 2))


def _freeze(kind: str, on: date, court: str = "渝中区法院", **data: Any) -> Rec:
    return Rec(
        "judicial_assistance",
        on,
        {
            "notice_number": f"执{on.isoformat()}",
            "court": court,
            "kind": kind,
            "subject_person": "王五",
            "amount": {"value": "1000000", "currency": "CNY"},
            "from_date": on.isoformat(),
            **data,
        },
    )


def test_a_freeze_holds_until_released_and_a_continuation_extends_it() -> None:
    frozen = _freeze("股权冻结", date(2023, 1, 5), to_date="2026-01-04")
    continued = _freeze("续行冻结", date(2025, 12, 20), to_date="2028-12-19")
    other_court = _freeze("股权冻结", date(2024, 2, 1), court="五中院")
    released = _freeze("解除冻结", date(2026, 3, 1))
    for records in ([frozen, continued, other_court], [other_court, continued, frozen]):
        freezes = active_freezes(records)
        assert [(f.holder, f.since, f.until) for f in freezes] == [
            ("渝中区法院", date(2023, 1, 5), date(2028, 12, 19)),
            ("五中院", date(2024, 2, 1), None),
        ]
        assert freezes[0].reference == "执2025-12-20"
        assert freezes[0].amount == "100万元人民币"
    assert [f.holder for f in active_freezes([released, frozen, other_court, continued])] == [
        "五中院"
    ]
    # Frozen again after a release: a new freeze, from its own date.
    again = _freeze("股权冻结", date(2026, 6, 1))
    assert [f.since for f in active_freezes([frozen, released, again])] == [date(2026, 6, 1)]


def test_a_mortgage_or_pledge_ends_with_a_cancellation_of_its_number() -> None:
    def mortgage(on: date, state: str, minute: int) -> Rec:
        return Rec(
            "chattel_mortgage",
            on,
            {
                "registration_number": "抵001",
                "registered_on": "2023-03-01",
                "mortgagee": "重庆银行",
                "secured_amount": {"value": "2000000", "currency": "CNY"},
                "state": state,
            },
            accepted_at=T0 + timedelta(minutes=minute),
        )

    registered = mortgage(date(2023, 3, 1), "有效", 1)
    cancelled = mortgage(date(2024, 3, 1), "注销", 2)
    assert [
        m.reference
        for m in active_registrations_of(
            [registered],
            "chattel_mortgage",
            holder="mortgagee",
            party=None,
            amount="secured_amount",
        )
    ] == ["抵001"]
    for records in ([registered, cancelled], [cancelled, registered]):
        assert (
            active_registrations_of(
                records,
                "chattel_mortgage",
                holder="mortgagee",
                party=None,
                amount="secured_amount",
            )
            == ()
        )
    folded = fold_master_data(
        [Rec("registration", date(2020, 1, 1), {"name": "重庆甲有限公司"}), registered], {}
    )
    assert folded is not None
    assert [(m.holder, m.amount, m.since) for m in folded.chattel_mortgages] == [
        ("重庆银行", "200万元人民币", date(2023, 3, 1))
    ]
