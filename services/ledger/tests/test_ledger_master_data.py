"""The pure fold from records to master data, status and list flags."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ecips_ledger.master_data import (
    active_freezes,
    active_registrations_of,
    dishonest_judgment_debtor,
    fold_master_data,
    list_flag,
    major_tax_violation,
    penalty_counts_by_year,
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


def _arrears(as_of: str, *, major: bool, tax: str = "增值税", number: str | None = None) -> Rec:
    data: dict[str, Any] = {
        "tax_type": tax,
        "amount": {"value": "100000", "currency": "CNY"},
        "as_of": as_of,
        "authority": "国家税务总局重庆市税务局",
        "major_violation": major,
    }
    if number:
        data["announcement_number"] = number
    return Rec("tax_arrears", date.fromisoformat(as_of), data)


def test_major_tax_violation_follows_the_latest_record_of_each_tax() -> None:
    assert major_tax_violation([_arrears("2025-01-31", major=False)]).listed is False
    first = _arrears("2025-03-31", major=True, number="渝税公告〔2025〕3号")
    again = _arrears("2025-06-30", major=True)
    flag = major_tax_violation([again, _arrears("2025-01-31", major=False), first])
    assert (flag.listed, flag.since) == (True, date(2025, 3, 31))
    assert flag.reason == "国家税务总局重庆市税务局，增值税"
    # Paid off: a later record without the mark takes the enterprise off.
    paid = _arrears("2025-09-30", major=False)
    assert major_tax_violation([first, again, paid]).listed is False
    # Another tax still marked keeps it listed, since that tax's first mark.
    other = _arrears("2025-05-31", major=True, tax="企业所得税", number="渝税公告〔2025〕9号")
    flag = major_tax_violation([first, again, paid, other])
    assert (flag.listed, flag.since) == (True, date(2025, 5, 31))
    assert flag.reason == "国家税务总局重庆市税务局，企业所得税（渝税公告〔2025〕9号）"


def _judgment(case: str, decided_on: str, **data: Any) -> Rec:
    base = {"case_number": case, "court": "重庆市第一中级人民法院", "decided_on": decided_on}
    return Rec("judgment", date.fromisoformat(decided_on), {**base, **data})


def test_dishonest_judgment_debtor_is_listed_until_the_case_is_performed() -> None:
    plain = _judgment("(2024)渝01民初1号", "2024-05-01", kind="判决", role="被告")
    assert dishonest_judgment_debtor([plain]).listed is False
    listed = _judgment("(2025)渝01执5号", "2025-02-10", kind="失信被执行人")
    flag = dishonest_judgment_debtor([plain, listed])
    assert (flag.listed, flag.since) == (True, date(2025, 2, 10))
    assert flag.reason == "重庆市第一中级人民法院，(2025)渝01执5号"
    # Marked through the flag on another kind of record as well.
    marked = _judgment("(2025)渝01执9号", "2025-01-05", kind="裁定", dishonest_debtor=True)
    assert dishonest_judgment_debtor([listed, marked]).since == date(2025, 1, 5)
    performed = _judgment(
        "(2025)渝01执5号", "2025-08-01", kind="失信被执行人", performance="全部履行"
    )
    assert dishonest_judgment_debtor([listed, performed]).listed is False
    # A revoked listing is not passed to the fold at all (only active records are).
    revoked = fold_master_data([Rec("registration", date(2020, 1, 1), {"name": "甲"})], {})
    assert revoked is not None and revoked.dishonest_judgment_debtor.listed is False


def test_penalties_are_counted_by_the_year_they_were_decided() -> None:
    penalties = [
        Rec("administrative_penalty", date(2024, 12, 31), {"decided_on": "2024-12-31"}),
        Rec("administrative_penalty", date(2025, 1, 1), {"decided_on": "2025-01-01"}),
        Rec("administrative_penalty", date(2025, 6, 1), {}),
        Rec("administrative_license", date(2025, 6, 1), {}),
    ]
    assert penalty_counts_by_year(penalties) == (("2024", 1), ("2025", 2))
    folded = fold_master_data(
        [Rec("registration", date(2020, 1, 1), {"name": "重庆甲有限公司"}), *penalties], {}
    )
    assert folded is not None
    assert dict(folded.penalty_counts_by_year) == {"2024": 1, "2025": 2}
