"""Every category in the contract: its realistic example is accepted from its
department, and its typical mistake is rejected naming the field and a stable
code. The catalogue itself is checked when loaded: a broken file stops the
service with a message naming the entry."""

from __future__ import annotations

import io
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from ingest_support import read_csv, settings, unique
from openpyxl import load_workbook

from ecips.testkit import SigningKeys, new_signing_keys, running_app
from ecips_ingest.catalogue import CatalogueError, load_catalogue
from ecips_ingest.main import create_app
from ecips_ingest.settings import CATALOGUE_DIR

CATALOGUE = load_catalogue(CATALOGUE_DIR)
CONTRACT_KEYS = [
    "registration",
    "registration_change",
    "deregistration",
    "annual_report",
    "administrative_license",
    "administrative_penalty",
    "administrative_payment",
    "administrative_inspection",
    "administrative_coercion",
    "administrative_confirmation",
    "administrative_levy",
    "commendation",
    "judgment",
    "tax_arrears",
    "judicial_assistance",
    "abnormal_operation_listing",
    "abnormal_operation_removal",
    "serious_illegal_listing",
    "serious_illegal_removal",
    "chattel_mortgage",
    "equity_pledge",
    "equity_contribution",
    "consumer_complaint",
    "trademark_registration",
    "small_micro_support",
]


@pytest.fixture(scope="module")
def keys() -> SigningKeys:
    return new_signing_keys()


@pytest.fixture(scope="module")
async def client(database_url: str, kafka_bootstrap: str, keys: SigningKeys) -> AsyncIterator[Any]:
    app_settings = settings(database_url, kafka_bootstrap, keys, batch_workers=0)
    async with running_app(lambda: create_app(app_settings)) as http:
        yield http


# Categories beyond the contract's list (the contract may be extended, never narrowed).
EXTENSION_KEYS = ["credit_repair"]


def test_the_catalogue_has_the_contract_categories_and_its_extensions() -> None:
    assert sorted(CATALOGUE.categories) == sorted(CONTRACT_KEYS + EXTENSION_KEYS)
    assert sorted(CATALOGUE.examples) == sorted(CATALOGUE.categories)


@pytest.mark.parametrize("key", CONTRACT_KEYS + EXTENSION_KEYS)
async def test_example_is_accepted_and_typical_mistake_rejected(
    client: Any, keys: SigningKeys, key: str
) -> None:
    example = CATALOGUE.examples[key]
    headers = keys.headers(example.department, "records:write")
    record = dict(example.record, source_id=unique(example.record["source_id"]))
    accepted = await client.post("/v1/records", json=record, headers=headers)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["revision"] == 1

    mistaken = dict(example.mistaken_record(), source_id=unique(example.record["source_id"]))
    if "source_id" in example.mistake.remove:
        del mistaken["source_id"]
    rejected = await client.post("/v1/records", json=mistaken, headers=headers)
    assert rejected.status_code == 422, rejected.text
    assert rejected.headers["content-type"].startswith("application/problem+json")
    problem = rejected.json()
    found = {(e["field"], e["code"]) for e in problem["errors"]}
    expected = {(e["field"], e["code"]) for e in example.mistake.errors}
    assert found == expected, problem
    assert all(e["message"] for e in problem["errors"])


async def test_category_detail_and_templates(client: Any) -> None:
    detail = (await client.get("/v1/categories/administrative_penalty")).json()
    assert detail["name"] == "行政处罚"
    assert detail["example"]["mistake"]["errors"] == [{"field": "data.fine", "code": "required"}]
    assert "fine" not in detail["example"]["mistake"]["record"]["data"]
    columns = {c["key"]: c for c in detail["columns"]}
    assert columns["fine.value"]["title"] == "罚款金额（金额）"
    assert columns["decision_number"]["required"] is True
    assert columns["penalty_kinds"]["kind"] == "list"
    # The envelope's occurred_on comes from the decision date when a file leaves it out.
    assert columns["occurred_on"]["required"] is False
    assert (await client.get("/v1/categories/no_such_thing")).status_code == 404

    csv_template = await client.get("/v1/categories/administrative_penalty/template.csv")
    assert csv_template.status_code == 200
    assert csv_template.headers["content-type"].startswith("text/csv")
    assert csv_template.content.startswith(b"\xef\xbb\xbf")
    header = read_csv(csv_template.content)[0]
    assert header[:4] == ["业务编号", "统一社会信用代码", "工商注册号", "行政相对人名称"]
    assert "行政处罚决定书文号" in header and "罚款金额（币种）" in header

    xlsx_template = await client.get("/v1/categories/chattel_mortgage/template.xlsx")
    assert xlsx_template.status_code == 200
    workbook = load_workbook(io.BytesIO(xlsx_template.content), read_only=True)
    assert workbook.sheetnames == ["数据", "字段说明", "示例"]
    first = next(workbook["数据"].iter_rows(values_only=True))
    assert "抵押登记编号" in first and "被担保债权数额（金额）" in first
    sample = list(workbook["示例"].iter_rows(values_only=True))
    assert sample[1][first.index("抵押权人")] == "重庆农村商业银行股份有限公司九龙坡支行"


def test_every_field_has_a_chinese_title() -> None:
    for category in CATALOGUE.categories.values():
        for name, schema in category.properties.items():
            assert schema.get("title"), (category.key, name)
            assert any("\u4e00" <= ch <= "\u9fff" for ch in schema["title"]), (category.key, name)


def _broken_copy(tmp_path: Path, edit: Any) -> Path:
    target = tmp_path / "catalogue"
    shutil.copytree(CATALOGUE_DIR, target)
    path = target / "categories.yaml"
    raw = yaml.safe_load(path.read_text("utf-8"))
    edit(raw)
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), "utf-8")
    return target


def test_a_broken_catalogue_stops_startup_naming_the_entry(tmp_path: Path) -> None:
    def drop_title(raw: dict[str, Any]) -> None:
        penalty = next(c for c in raw["categories"] if c["key"] == "administrative_penalty")
        del penalty["json_schema"]["properties"]["facts"]["title"]

    with pytest.raises(CatalogueError, match=r"administrative_penalty.*data\.facts has no title"):
        load_catalogue(_broken_copy(tmp_path / "a", drop_title))

    def bad_rule(raw: dict[str, Any]) -> None:
        licence = next(c for c in raw["categories"] if c["key"] == "administrative_license")
        licence["quality"]["date_order"] = [["valid_from", "content"]]

    with pytest.raises(CatalogueError, match="'content' is not a date field"):
        load_catalogue(_broken_copy(tmp_path / "b", bad_rule))

    def court_only(raw: dict[str, Any]) -> None:
        penalty = next(c for c in raw["categories"] if c["key"] == "administrative_penalty")
        penalty["submitters"] = ["kind:court"]

    # CQ-SAMR is expected to submit penalties monthly, and the example's department too.
    with pytest.raises(CatalogueError, match="administrative_penalty"):
        load_catalogue(_broken_copy(tmp_path / "c", court_only))
