"""Matching business scopes against the post-registration approval catalogue,
and the catalogue's own checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ecips_coordination.catalogue import (
    APPROVALS_FILE,
    LOCAL_DEPARTMENTS_FILE,
    ApprovalCatalogue,
    CatalogueError,
    load_approval_catalogue,
    load_departments,
    shared_departments_file,
)
from ecips_coordination.scope import clauses, licensed_part, normalise, positive_text

TABLE = yaml.safe_load((Path(__file__).parent / "scope_table.yaml").read_text("utf-8"))


@pytest.fixture(scope="module")
def catalogue() -> ApprovalCatalogue:
    return load_approval_catalogue()


def found(catalogue: ApprovalCatalogue, scope: str | None) -> list[str]:
    return [m.item.key for m in catalogue.match(scope)]


@pytest.mark.parametrize("row", TABLE["dev"], ids=lambda row: row["scope"][:24])
def test_scope_table(catalogue: ApprovalCatalogue, row: dict[str, Any]) -> None:
    assert sorted(found(catalogue, row["scope"])) == sorted(row["expected"])


@pytest.mark.parametrize("table", ["holdout", "holdout_blind"])
def test_holdout_precision_and_recall(catalogue: ApprovalCatalogue, table: str) -> None:
    """Rows not used to tune the matcher: measured, with a floor."""
    tp = fp = fn = 0
    for row in TABLE[table]:
        got, expected = set(found(catalogue, row["scope"])), set(row["expected"])
        tp, fp, fn = tp + len(got & expected), fp + len(got - expected), fn + len(expected - got)
    assert tp / (tp + fp) >= 0.9
    assert tp / (tp + fn) >= 0.9


def test_only_the_licensed_section_counts() -> None:
    text = normalise("一般项目：食品销售（仅销售预包装食品）；许可项目：餐饮服务；一般项目：五金")
    assert licensed_part(text) == "餐饮服务;"
    assert licensed_part(normalise("许可经营项目：无。一般经营项目：五金")) == "无。"
    assert licensed_part("五金交电;烟草制品零售") == "五金交电;烟草制品零售"


@pytest.mark.parametrize(
    ("clause", "positive"),
    [
        ("化工产品销售(不含危险化学品)", "化工产品销售"),
        ("化工原料及产品(除危险化学品外)", "化工原料及产品"),
        ("化工产品(危险化学品除外)", "化工产品"),
        ("除危险化学品外的化工产品销售", "的化工产品销售"),
        ("建设工程施工(除核电站建设经营、民用机场建设)", "建设工程施工"),
        ("预包装食品(凭许可证经营)", "预包装食品"),
        ("道路货物运输(网络货运)", "道路货物运输(网络货运)"),
        ("危险化学品除外", ""),
    ],
)
def test_exclusions_are_taken_out_of_a_clause(clause: str, positive: str) -> None:
    assert positive_text(clause) == positive


def test_clauses_keep_brackets_whole_and_carry_a_leading_verb() -> None:
    scope = "销售：五金、化工产品（不含危险化学品、易制毒化学品）；零售：卷烟、雪茄烟。道路货物运输"
    assert [c.text for c in clauses(scope)] == [
        "五金销售",
        "化工产品(不含危险化学品、易制毒化学品)销售",
        "卷烟零售",
        "雪茄烟零售",
        "道路货物运输",
    ]


def test_full_width_and_half_width_text_match_alike(catalogue: ApprovalCatalogue) -> None:
    assert found(catalogue, "许可项目：第Ⅲ类医疗器械经营") == ["medical_device_trade"]
    assert found(catalogue, "許可項目:危险化学品经营　；　ＫＴＶ") == [
        "hazardous_chemicals_trade",
        "entertainment_venue",
    ]
    assert found(catalogue, "") == [] and found(catalogue, None) == []


def test_the_catalogue_has_at_least_thirty_items_with_known_departments(
    catalogue: ApprovalCatalogue,
) -> None:
    assert len(catalogue.items) >= 30
    shared = shared_departments_file()
    assert shared is not None
    known = load_departments(shared, LOCAL_DEPARTMENTS_FILE)
    for item in catalogue.items.values():
        assert set(item.departments) <= set(known), item.key
        assert item.legal_basis and item.keywords


def test_a_department_the_catalogues_do_not_know_stops_startup(tmp_path: Path) -> None:
    raw = yaml.safe_load(APPROVALS_FILE.read_text("utf-8"))
    raw["items"][0]["departments"] = ["CQ-NOWHERE"]
    broken = tmp_path / "approvals.yaml"
    broken.write_text(yaml.safe_dump(raw, allow_unicode=True), "utf-8")
    with pytest.raises(CatalogueError, match="CQ-NOWHERE"):
        load_approval_catalogue(broken)


def test_the_local_stopgap_cannot_rename_a_shared_department(tmp_path: Path) -> None:
    local = tmp_path / "departments.local.yaml"
    local.write_text(
        "version: x\ndepartments:\n  - {code: CQ-SAMR, name: 别的局, kind: administrative}\n",
        "utf-8",
    )
    with pytest.raises(CatalogueError, match="CQ-SAMR"):
        load_departments(shared_departments_file(), local)


def test_a_duplicate_item_or_a_blank_keyword_is_refused(tmp_path: Path) -> None:
    raw = yaml.safe_load(APPROVALS_FILE.read_text("utf-8"))
    raw["items"].append(raw["items"][0])
    twice = tmp_path / "twice.yaml"
    twice.write_text(yaml.safe_dump(raw, allow_unicode=True), "utf-8")
    with pytest.raises(CatalogueError, match="twice"):
        load_approval_catalogue(twice)
    raw["items"].pop()
    raw["items"][0]["keywords"] = ["  "]
    blank = tmp_path / "blank.yaml"
    blank.write_text(yaml.safe_dump(raw, allow_unicode=True), "utf-8")
    with pytest.raises(CatalogueError, match=raw["items"][0]["key"]):
        load_approval_catalogue(blank)
