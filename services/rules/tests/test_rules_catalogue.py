"""The rule catalogue is validated when it loads: every problem names the rule
and the field. Also the calendar arithmetic and the variables rules see."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from ecips_rules.catalogue import CatalogueError, Duration, Period, load_catalogue, parse_catalogue
from ecips_rules.settings import CATALOGUE_FILE
from ecips_rules.variables import (
    enterprise_variables,
    penalty_figures,
    project,
    sample_enterprises,
    time_derived_change_on,
)


def _document(**rule_overrides: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": "sample_rule",
        "version": 1,
        "title": "示例规则",
        "kind": "punishment",
        "condition": "enterprise.flags.serious_illegal",
        "duration": {"type": "while_condition"},
        "legal_basis": "《企业信息公示暂行条例》第十八条",
        "measures": [
            {
                "key": "restrict_government_procurement",
                "title": "限制参与政府采购活动",
                "scenarios": ["government_procurement"],
                "department": "CQ-FIN",
                "legal_basis": "《中华人民共和国政府采购法》第二十二条",
            }
        ],
    }
    rule.update(rule_overrides)
    return {
        "version": 1,
        "scenarios": [{"key": "government_procurement", "title": "政府采购"}],
        "departments": [{"code": "CQ-FIN", "name": "重庆市财政局"}],
        "rules": [rule],
    }


def _write(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


def test_shipped_catalogue_holds_the_required_rules() -> None:
    catalogue = load_catalogue(CATALOGUE_FILE)
    assert catalogue.version == "1"
    assert list(catalogue.rules) == [
        "serious_illegal_dishonest",
        "abnormal_operation_list",
        "abnormal_operation_three_years",
        "major_tax_violation",
        "dishonest_judgment_debtor",
        "repeated_penalties_in_one_year",
        "trustworthy_enterprise_incentives",
    ]
    serious = catalogue.rules["serious_illegal_dishonest"].rule
    blocked = {(s, m.department) for m in serious.measures for s in m.scenarios}
    assert {
        ("government_procurement", "CQ-FIN"),
        ("public_bidding", "CQ-PRT"),
        ("public_bidding", "CQ-HURD"),
        ("fiscal_subsidy", "CQ-FIN"),
        ("honorary_title", "CQ-NDRC"),
        ("land_supply", "CQ-LAND"),
        ("bond_issuance", "CQ-NDRC"),
        ("bond_issuance", "CQ-CSRC"),
        ("legal_representative_post", "CQ-SAMR"),
    } <= blocked
    assert "国发〔2016〕33号" in serious.legal_basis
    three_years = catalogue.rules["abnormal_operation_three_years"].rule
    assert three_years.delay == Period(years=3)
    assert three_years.since_from == "flags.abnormal_operation_since"
    assert catalogue.rules["major_tax_violation"].rule.duration == Duration(type="fixed", years=3)
    incentive = catalogue.rules["trustworthy_enterprise_incentives"].rule
    assert incentive.kind == "incentive"
    assert {s for m in incentive.measures for s in m.scenarios} == {
        "green_channel",
        "fewer_inspections",
        "fiscal_support_priority",
    }
    assert {k for k, s in catalogue.scenarios.items() if s.kind == "incentive"} == {
        "green_channel",
        "fewer_inspections",
        "fiscal_support_priority",
    }
    # Every measure names a department of the catalogue and a legal basis.
    for compiled in catalogue.rules.values():
        for measure in compiled.rule.measures:
            assert measure.department in catalogue.departments
            assert measure.legal_basis


def test_shipped_rules_decide_on_the_samples() -> None:
    catalogue = load_catalogue(CATALOGUE_FILE)
    (_, bare), (_, flagged) = sample_enterprises()
    for rule_id in (
        "serious_illegal_dishonest",
        "major_tax_violation",
        "dishonest_judgment_debtor",
    ):
        assert catalogue.rules[rule_id].holds(flagged, date(2025, 1, 1)) is True
        assert catalogue.rules[rule_id].holds(bare, date(2025, 1, 1)) is False
    # Listed on both lists: the serious-illegal rule, not the three-year move, applies.
    three_years = catalogue.rules["abnormal_operation_three_years"]
    assert three_years.holds(flagged, date(2025, 1, 1)) is False


def test_a_valid_file_loads(tmp_path: Path) -> None:
    catalogue = load_catalogue(_write(tmp_path, _document()), number=7)
    assert list(catalogue.rules) == ["sample_rule"]
    assert catalogue.version == "7"


def test_bad_expression_is_rejected_naming_the_rule_and_field() -> None:
    with pytest.raises(CatalogueError, match=r"rule 'sample_rule'.*does not compile") as caught:
        parse_catalogue(_document(condition="enterprise.flags.serious_illegal &&"))
    (problem,) = caught.value.problems
    assert (problem.field, problem.code) == ("rules[0].condition", "invalid_condition")


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("enterprise.flags.serious_ilegal", r"unknown field enterprise\.flags\.serious_ilegal"),
        # Never evaluated (short circuit), still rejected.
        ("false && enterprise.capital > 0", r"unknown field enterprise\.capital"),
        ("enterprise.record_counts.penalties > 0", r"enterprise\.record_counts\.penalties"),
        ("enterprise.status.code == 'x'", r"enterprise\.status is a string"),
        ("company.flags.serious_illegal", r"unknown variable 'company'"),
        ("blacklisted(enterprise.uscc)", r"unknown function 'blacklisted'"),
        ("today > enterprise.established_on", r"unknown variable 'today': conditions do not"),
        ("enterprise.penalties.next_year > 1", r"enterprise\.penalties\.next_year"),
    ],
)
def test_unknown_fields_and_names_are_rejected(condition: str, message: str) -> None:
    with pytest.raises(CatalogueError, match=rf"rule 'sample_rule'.*{message}"):
        parse_catalogue(_document(condition=condition))


def test_a_field_name_inside_a_string_literal_is_not_a_reference() -> None:
    document = _document(condition='enterprise.status == "enterprise.nope"')
    assert "sample_rule" in parse_catalogue(document).rules


def test_condition_must_be_boolean() -> None:
    with pytest.raises(CatalogueError, match="must be true or false"):
        parse_catalogue(_document(condition="enterprise.status"))


def test_unguarded_optional_field_is_rejected() -> None:
    unguarded = 'enterprise.established_on < timestamp("2014-10-01T00:00:00Z")'
    with pytest.raises(CatalogueError, match="optional fields are null"):
        parse_catalogue(_document(condition=unguarded))
    guarded = f"enterprise.established_on != null && {unguarded}"
    rule = parse_catalogue(_document(condition=guarded)).rules["sample_rule"]
    (_, bare), (_, full) = sample_enterprises()
    assert rule.holds(full, date(2024, 1, 1)) is True
    assert rule.holds(bare, date(2024, 1, 1)) is False


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"kind": "reward"}, "rules[0].kind", r"rule 'sample_rule' is invalid: kind"),
        ({"colour": "red"}, "rules[0].colour", r"rule 'sample_rule' is invalid: colour"),
        ({"duration": {"type": "fixed"}}, "rules[0].duration", "needs days, months or years"),
        (
            {"duration": {"type": "while_condition", "days": 3}},
            "rules[0].duration",
            "only for a fixed duration",
        ),
        ({"since_from": "flags.whenever"}, "rules[0].since_from", "since_from 'flags.whenever'"),
        ({"delay": {}}, "rules[0].delay", "a period needs years, months or days"),
    ],
)
def test_invalid_rule_fields_are_rejected(
    overrides: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(CatalogueError, match=message) as caught:
        parse_catalogue(_document(**overrides))
    assert caught.value.problems[0].field == field


def test_unknown_scenario_or_department_in_a_measure_is_rejected() -> None:
    document = _document()
    document["rules"][0]["measures"][0]["scenarios"] = ["casino_licence"]
    with pytest.raises(CatalogueError, match=r"unknown scenarios \['casino_licence'\]") as caught:
        parse_catalogue(document)
    assert caught.value.problems[0].field == "rules[0].measures[0].scenarios"
    document = _document()
    document["rules"][0]["measures"][0]["department"] = "CQ-NOPE"
    with pytest.raises(CatalogueError, match="unknown department 'CQ-NOPE'"):
        parse_catalogue(document)


def test_duplicate_rule_ids_are_rejected() -> None:
    document = _document()
    document["rules"].append(document["rules"][0])
    with pytest.raises(CatalogueError, match="defined twice"):
        parse_catalogue(document)


def test_every_problem_is_reported_at_once() -> None:
    document = _document(condition="enterprise.nope")
    document["rules"].append({**document["rules"][0], "id": "second", "kind": "reward"})
    with pytest.raises(CatalogueError) as caught:
        parse_catalogue(document)
    assert [p.field for p in caught.value.problems] == ["rules[0].condition", "rules[1].kind"]


def test_record_counts_default_to_zero() -> None:
    rule = parse_catalogue(_document(condition="enterprise.record_counts.tax_arrears > 0")).rules[
        "sample_rule"
    ]
    (_, bare), _ = sample_enterprises()
    assert rule.holds(bare, date(2024, 1, 1)) is False
    assert rule.holds({**bare, "record_counts": {"tax_arrears": 1}}, date(2024, 1, 1)) is True


@pytest.mark.parametrize(
    ("start", "period", "expected"),
    [
        (date(2021, 3, 15), Period(years=3), date(2024, 3, 15)),
        (date(2024, 2, 29), Period(years=1), date(2025, 2, 28)),  # no 29th: the month's last day
        (date(2025, 1, 31), Period(months=1), date(2025, 2, 28)),
        (date(2025, 11, 30), Period(months=3, days=1), date(2026, 3, 1)),
    ],
)
def test_periods_count_to_the_corresponding_day(
    start: date, period: Period, expected: date
) -> None:
    assert period.after(start) == expected


def test_a_fixed_duration_ends_the_day_before_the_corresponding_day() -> None:
    assert Duration(type="fixed", years=3).last_day(date(2024, 5, 10)) == date(2027, 5, 9)
    assert Duration(type="fixed", days=30).last_day(date(2026, 3, 2)) == date(2026, 3, 31)
    assert Duration(type="while_condition").last_day(date(2026, 3, 2)) is None


def test_status_code_comes_from_the_label_when_the_ledger_does_not_send_it() -> None:
    (_, bare), _ = sample_enterprises()
    assert enterprise_variables(bare, date(2025, 1, 1))["status_code"] == "active"
    revoked = {**bare, "status": "吊销"}
    assert enterprise_variables(revoked, date(2025, 1, 1))["status_code"] == "revoked"
    sent = {**bare, "status": "吊销", "status_code": "deregistered"}
    assert enterprise_variables(sent, date(2025, 1, 1))["status_code"] == "deregistered"


def test_penalty_figures_by_year_and_without_them() -> None:
    state = {
        "record_counts": {"administrative_penalty": 6},
        "penalty_counts_by_year": {"2023": 1, "2025": 3, "2026": 2},
    }
    assert penalty_figures(state, date(2026, 7, 1)) == {
        "total": 6,
        "this_year": 2,
        "last_year": 3,
        "last_three_years": 5,
    }
    # The year changes the figures by itself: the next change is New Year's Day.
    assert time_derived_change_on(state, date(2026, 7, 1)) == date(2027, 1, 1)
    assert time_derived_change_on({"penalty_counts_by_year": {"2020": 4}}, date(2026, 7, 1)) is None
    # Unknown years: no punishment and no reward on a guess.
    unknown = {"record_counts": {"administrative_penalty": 4}}
    assert penalty_figures(unknown, date(2026, 7, 1)) == {
        "total": 4,
        "this_year": 0,
        "last_year": 0,
        "last_three_years": 4,
    }


def test_only_the_fields_the_conditions_read_go_to_the_engine() -> None:
    catalogue = load_catalogue(CATALOGUE_FILE)
    _, (_, full) = sample_enterprises()
    projected = project(enterprise_variables(full, date(2025, 1, 1)), catalogue.shape)
    assert "business_scope" not in projected
    assert "name" not in projected
    assert set(projected["record_counts"]) == {"tax_arrears", "commendation"}
    assert projected["flags"]["serious_illegal"] is True
