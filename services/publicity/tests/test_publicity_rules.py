"""Pure rules: masking personal data, the rate limiter, the publication
catalogue, how records read on the portal, conditional GETs, search SQL."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from ecips_common.public_http import TokenBucketLimiter
from ecips_publicity.catalogue import CATALOGUE_FILE, CatalogueError, load_catalogue
from ecips_publicity.conditional import etag_matches, weak_etag
from ecips_publicity.directory import Directory, parse_directory, schema_titles
from ecips_publicity.masking import mask_personal_data, mask_text
from ecips_publicity.presentation import Labels, pair_list_entries, render_fields
from ecips_publicity.repository import NameSearch, SearchCriteria, escape_like
from ecips_publicity.settings import CATALOGUE_DIR

CATALOGUE = load_catalogue(CATALOGUE_DIR)
INGEST_CATEGORIES = (
    Path(__file__).resolve().parents[2]
    / "ingest"
    / "ecips_ingest"
    / "catalogue"
    / "categories.yaml"
)


def test_identity_number_keys_are_dropped_at_any_depth() -> None:
    data = {
        "legal_representative": "王小明",
        "id_number": "110101199003071234",
        "legal_representative_id_number": "110101199003071234",
        "shareholders": [{"name": "李四", "shareholder_id_number": "x", "ID_NUMBER": "y"}],
        "id_number_type": "身份证",  # a type, not a number: kept
    }
    assert mask_personal_data(data) == {
        "legal_representative": "王小明",
        "shareholders": [{"name": "李四"}],
        "id_number_type": "身份证",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("110101199003071234", "110*************34"),
        ("证件 50010320001231002x 有效", "证件 500*************2x 有效"),
        ("13812345678", "138****5678"),
        ("电话：138-1234-5678。", "电话：138****5678。"),
        ("+8615912345678", "+86159****5678"),
        # Not personal: a USCC, a fine in yuan, a landline, a longer number.
        ("91500103MA5U7A1B2C", "91500103MA5U7A1B2C"),
        ("罚款 12000000 元", "罚款 12000000 元"),
        ("023-63891234", "023-63891234"),
        ("1101011990030712345", "1101011990030712345"),
    ],
)
def test_numbers_in_text_are_masked(text: str, expected: str) -> None:
    assert mask_text(text) == expected


def test_non_text_values_pass_unchanged() -> None:
    assert mask_personal_data({"amount": 3.5, "ok": True, "none": None}) == {
        "amount": 3.5,
        "ok": True,
        "none": None,
    }


def test_like_wildcards_are_escaped() -> None:
    assert escape_like(r"50%_a\b") == r"50\%\_a\\b"


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_the_burst_then_refills_at_the_rate() -> None:
    clock = FakeClock()
    limiter = TokenBucketLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a") == pytest.approx(0.5)
    assert limiter.acquire("b") == 0.0  # clients are independent
    clock.now += 0.5
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") > 0


def test_token_bucket_forgets_idle_clients_when_full() -> None:
    clock = FakeClock()
    limiter = TokenBucketLimiter(rate=1.0, burst=2, max_clients=2, clock=clock)
    limiter.acquire("a")
    limiter.acquire("b")
    clock.now += 10  # both refilled: forgetting them changes nothing
    limiter.acquire("c")
    assert limiter.acquire("c") == 0.0
    assert limiter.acquire("c") > 0


def test_shipped_catalogue_is_valid() -> None:
    catalogue = load_catalogue(CATALOGUE_DIR)
    dated = catalogue.dated_publication
    assert str(dated.since) == "2014-10-01"
    assert set(dated.categories) == {
        "administrative_license",
        "administrative_penalty",
        "commendation",
    }
    assert catalogue.section_names["administrative_penalty"] == "行政处罚"


def test_catalogue_naming_an_unknown_category_stops_startup(tmp_path: Path) -> None:
    text = (CATALOGUE_DIR / CATALOGUE_FILE).read_text("utf-8")
    (tmp_path / CATALOGUE_FILE).write_text(
        text.replace("    - commendation\n", "    - commendations\n"), "utf-8"
    )
    with pytest.raises(CatalogueError, match="commendations"):
        load_catalogue(tmp_path)


def test_every_ingest_category_has_a_section_and_a_tab() -> None:
    keys = {c["key"] for c in yaml.safe_load(INGEST_CATEGORIES.read_text("utf-8"))["categories"]}
    assert keys <= set(CATALOGUE.section_names)
    in_tabs = {c for t in CATALOGUE.tabs for c in t.categories}
    assert set(CATALOGUE.section_names) == in_tabs


def _rewrite(tmp_path: Path, old: str, new: str) -> Path:
    text = (CATALOGUE_DIR / CATALOGUE_FILE).read_text("utf-8")
    assert old in text
    (tmp_path / CATALOGUE_FILE).write_text(text.replace(old, new), "utf-8")
    return tmp_path


def test_a_section_in_no_tab_stops_startup(tmp_path: Path) -> None:
    directory = _rewrite(tmp_path, "categories: [administrative_license]}", "categories: []}")
    with pytest.raises(CatalogueError, match="unreachable"):
        load_catalogue(directory)


def test_a_repair_rule_naming_an_unknown_category_stops_startup(tmp_path: Path) -> None:
    directory = _rewrite(
        tmp_path, "{category: administrative_penalty, minimum", "{category: penalties, minimum"
    )
    with pytest.raises(CatalogueError, match="penalties"):
        load_catalogue(directory)


@pytest.mark.parametrize(
    ("code", "label", "expected"),
    [
        ("moved_out", "迁出", "moved_out"),
        (None, "吊销", "revoked"),
        (None, "注销", "deregistered"),
        (None, "存续", "active"),
        ("bogus", "在业", "active"),
        (None, "未知状态", "active"),
    ],
)
def test_status_codes_come_from_the_ledger_or_the_label(
    code: str | None, label: str, expected: str
) -> None:
    assert CATALOGUE.status_code(code, label) == expected


def test_schema_titles_walk_nested_objects_and_arrays() -> None:
    schema = {
        "type": "object",
        "properties": {
            "decision_number": {"type": "string", "title": "行政处罚决定书文号"},
            "changes": {
                "type": "array",
                "title": "变更事项",
                "items": {"properties": {"before": {"title": "变更前内容"}}},
            },
        },
        "allOf": [{"properties": {"fine": {"title": "罚款金额"}}}],
    }
    assert schema_titles(schema) == {
        "decision_number": "行政处罚决定书文号",
        "changes": "变更事项",
        "before": "变更前内容",
        "fine": "罚款金额",
    }
    directory = parse_directory(
        {"items": [{"key": "administrative_penalty", "name": "行政处罚", "json_schema": schema}]},
        {"items": [{"code": "CQ-SAMR", "name": "重庆市市场监督管理局", "kind": "x"}]},
    )
    assert directory.departments == {"CQ-SAMR": "重庆市市场监督管理局"}
    assert directory.field_titles["administrative_penalty"]["fine"] == "罚款金额"


def test_fields_read_in_chinese_in_the_schema_order() -> None:
    directory = Directory(
        field_titles={
            "registration_change": {
                "changed_on": "变更日期",
                "changes": "变更事项",
                "item": "变更事项",
                "before": "变更前内容",
                "after": "变更后内容",
            },
            "administrative_penalty": {
                "decision_number": "决定书文号",
                "penalty_kinds": "处罚类别",
                "fine": "罚款金额",
                "urgent": "是否从重",
            },
        }
    )
    penalty = render_fields(
        {
            "urgent": False,
            "fine": {"value": "30000", "currency": "CNY"},
            "penalty_kinds": ["警告", "罚款"],
            "decision_number": "渝市监罚〔2025〕77号",
            "extra_key": "附加",
            "empty": "",
        },
        Labels(CATALOGUE, directory, "administrative_penalty"),
    )
    assert [(f.label, f.value) for f in penalty] == [
        ("决定书文号", "渝市监罚〔2025〕77号"),
        ("处罚类别", "警告、罚款"),
        ("罚款金额", "30,000 元"),
        ("是否从重", "否"),
        ("extra_key", "附加"),
    ]
    change = render_fields(
        {
            "changed_on": "2025-03-01",
            "changes": [{"item": "name", "before": "重庆甲有限公司", "after": "重庆乙有限公司"}],
        },
        Labels(CATALOGUE, directory, "registration_change"),
    )
    assert (
        change[1].value == "变更事项：名称，变更前内容：重庆甲有限公司，变更后内容：重庆乙有限公司"
    )
    # Without ingest's titles the catalogue's own labels serve.
    fallback = render_fields(
        {"authority": "重庆市渝中区市场监督管理局"}, Labels(CATALOGUE, Directory(), "x")
    )
    assert fallback[0].label == "决定机关"


@dataclass
class Item:
    occurred_on: date
    data: dict[str, Any] = field(default_factory=dict)
    record_id: uuid.UUID = field(default_factory=uuid.uuid4)


def test_removals_pair_with_their_listing_newest_first() -> None:
    first = Item(date(2022, 1, 1), {"decision_number": "列1"})
    second = Item(date(2023, 1, 1), {"decision_number": "列2"})
    third = Item(date(2024, 1, 1), {"decision_number": "列3"})
    # Names the second listing although the first is older and still open.
    named = Item(date(2023, 6, 1), {"listing_decision_number": "列2"})
    plain = Item(date(2023, 7, 1))
    orphan = Item(date(2021, 1, 1))  # its listing is not public
    entries = pair_list_entries([third, first, second], [plain, orphan, named])
    assert [(e.listing, e.removal) for e in entries] == [
        (third, None),
        (second, named),
        (first, plain),
        (None, orphan),
    ]


def test_weak_etags_compare_weakly() -> None:
    tag = weak_etag(b'{"items": []}')
    assert tag.startswith('W/"') and tag == weak_etag(b'{"items": []}')
    assert tag != weak_etag(b'{"items": [1]}')
    assert etag_matches(tag, tag)
    assert etag_matches(tag.removeprefix("W/"), tag)
    assert etag_matches(f'"x", {tag}', tag)
    assert etag_matches("*", tag)
    assert not etag_matches('W/"other"', tag)


def test_two_characters_use_the_pair_index_and_more_use_trigrams() -> None:
    two = NameSearch(SearchCriteria("渝信"), cap=100).statements(offset=0, limit=10)
    assert "name_bigrams @> " in str(two.count) and "ILIKE" not in str(two.count)
    assert two.params["pair"] == ["渝信"]
    three = NameSearch(SearchCriteria("渝信建", district="500103"), cap=100).statements(
        offset=20, limit=10
    )
    assert "e.name ILIKE :contains" in str(three.ranked)
    assert three.params["contains"] == "%渝信建%" and three.params["depth"] == 30
    assert "e.division_code = :district" in str(three.broad)
    wild = NameSearch(SearchCriteria("50%_折"), cap=100).statements(offset=0, limit=10)
    assert wild.params["contains"] == r"%50\%\_折%"
