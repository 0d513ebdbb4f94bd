"""The rule catalogue is validated when it loads: every problem names the rule."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from ecips_common.contracts import EnterpriseChanged
from ecips_rules.catalogue import CatalogueError, load_catalogue, parse_catalogue
from ecips_rules.settings import CATALOGUE_FILE
from ecips_rules.variables import sample_enterprises


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
        "version": "test.1",
        "scenarios": [{"key": "government_procurement", "title": "政府采购"}],
        "departments": [{"code": "CQ-FIN", "name": "重庆市财政局"}],
        "rules": [rule],
    }


def _write(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


def test_shipped_catalogue_loads_with_the_required_rules() -> None:
    catalogue = load_catalogue(CATALOGUE_FILE)
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
    abnormal = catalogue.rules["abnormal_operation_list"].rule
    assert {s for m in abnormal.measures for s in m.scenarios} == {
        "honorary_title",
        "fiscal_subsidy",
    }
    assert "国发〔2016〕33号" in serious.legal_basis


def test_shipped_rules_decide_on_flags() -> None:
    catalogue = load_catalogue(CATALOGUE_FILE)
    (_, clean), (_, flagged) = sample_enterprises()
    serious = catalogue.rules["serious_illegal_dishonest"]
    assert serious.holds(flagged, date(2025, 1, 1)) is True
    assert serious.holds(clean, date(2025, 1, 1)) is False


def test_a_valid_file_loads(tmp_path: Path) -> None:
    catalogue = load_catalogue(_write(tmp_path, _document()))
    assert list(catalogue.rules) == ["sample_rule"]
    assert catalogue.version == "test.1"


def test_bad_expression_is_rejected_naming_the_rule(tmp_path: Path) -> None:
    path = _write(tmp_path, _document(condition="enterprise.flags.serious_illegal &&"))
    with pytest.raises(CatalogueError, match=r"rule 'sample_rule'.*does not compile"):
        load_catalogue(path)


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
    ],
)
def test_unknown_fields_and_names_are_rejected(
    tmp_path: Path, condition: str, message: str
) -> None:
    with pytest.raises(CatalogueError, match=rf"rule 'sample_rule'.*{message}"):
        load_catalogue(_write(tmp_path, _document(condition=condition)))


def test_a_field_name_inside_a_string_literal_is_not_a_reference() -> None:
    text = yaml.safe_dump(_document(condition='enterprise.status == "enterprise.nope"'))
    assert "sample_rule" in parse_catalogue(text).rules


def test_condition_must_be_boolean() -> None:
    text = yaml.safe_dump(_document(condition="enterprise.status"))
    with pytest.raises(CatalogueError, match="must be true or false"):
        parse_catalogue(text)


def test_unguarded_optional_field_is_rejected() -> None:
    unguarded = 'today - enterprise.established_on > duration("26280h")'
    with pytest.raises(CatalogueError, match="optional fields are null"):
        parse_catalogue(yaml.safe_dump(_document(condition=unguarded)))
    guarded = f"enterprise.established_on != null && {unguarded}"
    rule = parse_catalogue(yaml.safe_dump(_document(condition=guarded))).rules["sample_rule"]
    (_, clean), (_, full) = sample_enterprises()
    assert rule.holds(full, date(2024, 1, 1)) is True
    assert rule.holds(clean, date(2024, 1, 1)) is False


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"kind": "reward"}, r"rule 'sample_rule' is invalid: kind"),
        ({"colour": "red"}, r"rule 'sample_rule' is invalid: colour"),
        ({"duration": {"type": "fixed"}}, "days is required"),
        ({"since_from": "flags.whenever"}, "since_from 'flags.whenever'"),
    ],
)
def test_invalid_rule_fields_are_rejected(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(CatalogueError, match=message):
        parse_catalogue(yaml.safe_dump(_document(**overrides)))


def test_unknown_scenario_or_department_in_a_measure_is_rejected() -> None:
    document = _document()
    document["rules"][0]["measures"][0]["scenarios"] = ["casino_licence"]
    with pytest.raises(CatalogueError, match=r"unknown scenarios \['casino_licence'\]"):
        parse_catalogue(yaml.safe_dump(document))
    document = _document()
    document["rules"][0]["measures"][0]["department"] = "CQ-NOPE"
    with pytest.raises(CatalogueError, match="unknown department 'CQ-NOPE'"):
        parse_catalogue(yaml.safe_dump(document))


def test_duplicate_rule_ids_are_rejected() -> None:
    document = _document()
    document["rules"].append(document["rules"][0])
    with pytest.raises(CatalogueError, match="defined twice"):
        parse_catalogue(yaml.safe_dump(document))


def test_record_counts_default_to_zero() -> None:
    text = yaml.safe_dump(_document(condition="enterprise.record_counts.tax_arrears > 0"))
    rule = parse_catalogue(text).rules["sample_rule"]
    (_, clean), _ = sample_enterprises()
    with_arrears = EnterpriseChanged.model_validate(
        {**clean.model_dump(), "record_counts": {"tax_arrears": 1}}
    )
    assert rule.holds(clean, date(2024, 1, 1)) is False
    assert rule.holds(with_arrears, date(2024, 1, 1)) is True
