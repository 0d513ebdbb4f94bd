"""Batches over HTTP, processed by the service's own background worker: CSV,
XLSX and NDJSON files, bad rows reported with their row numbers in an errors
file that can be fixed and uploaded again (formula cells neutralised),
malformed and oversized files refused, departments kept apart."""

from __future__ import annotations

import io
import json
import os
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Any

import pytest
from ingest_support import (
    csv_bytes,
    finished_batch,
    private_database,
    random_registration_number,
    random_uscc,
    read_csv,
    settings,
    unique,
)
from openpyxl import load_workbook

from ecips.testkit import SigningKeys, new_signing_keys, running_app
from ecips_ingest.catalogue import load_catalogue
from ecips_ingest.main import create_app
from ecips_ingest.settings import CATALOGUE_DIR
from ecips_ingest.tabular import CategoryTable

SAMR = "CQ-SAMR"
LIMIT = 2 * 1024 * 1024
CATALOGUE = load_catalogue(CATALOGUE_DIR)
PENALTY = CategoryTable.build(CATALOGUE.categories["administrative_penalty"])
INJECTION = "=cmd|' /C calc'!A0"


@pytest.fixture(scope="module")
def keys() -> SigningKeys:
    return new_signing_keys()


@pytest.fixture(scope="module")
async def client(database_url: str, kafka_bootstrap: str, keys: SigningKeys) -> AsyncIterator[Any]:
    async with private_database(database_url) as own_url:
        app_settings = settings(
            own_url, kafka_bootstrap, keys, batch_chunk_rows=50, max_batch_bytes=LIMIT
        )
        async with running_app(lambda: create_app(app_settings)) as http:
            yield http


def penalty_row(source_id: str, uscc: str, **overrides: str) -> dict[str, str]:
    row = {
        "source_id": source_id,
        "uscc": uscc,
        "enterprise_name": "重庆渝信建材贸易有限公司",
        "decision_number": source_id,
        "violation_type": "产品质量",
        "facts": "销售不合格的建筑用钢筋",
        "penalty_kinds": "警告、罚款",
        "content": "警告；罚款人民币伍万元",
        "fine.value": "50000",
        "fine.currency": "CNY",
        "decided_on": "2025-06-10",
        "authority": "重庆市渝中区市场监督管理局",
    }
    row.update(overrides)
    return row


def penalty_file(rows: Iterable[dict[str, str]], *, titles: bool = True) -> list[list[str]]:
    keys = list(penalty_row("x", "y"))
    by_key = {c.key: c for c in PENALTY.columns}
    header = [by_key[k].title if titles else k for k in keys]
    return [header, *([row.get(k, "") for k in keys] for row in rows)]


async def upload(
    client: Any,
    headers: dict[str, str],
    content: bytes,
    filename: str,
    category: str | None = "administrative_penalty",
) -> Any:
    data = {"category": category} if category else {}
    return await client.post(
        "/v1/batches", headers=headers, files={"file": (filename, content)}, data=data
    )


async def test_csv_batch_reports_bad_rows_in_a_fixable_errors_file(
    client: Any, keys: SigningKeys
) -> None:
    headers = keys.headers(SAMR, "records:write")
    uscc = random_uscc()
    prefix = unique("渝中市监处罚")
    rows = [penalty_row(f"{prefix}-{n:03d}", uscc) for n in range(120)]
    bad = {
        5: {"uscc": uscc[:-1] + ("0" if uscc[-1] != "0" else "1")},  # wrong check character
        17: {"fine.value": "-5000"},  # negative amount
        42: {"facts": INJECTION, "decision_number": ""},  # formula cell and a missing field
        77: {"penalty_kinds": "警告、罚没"},  # not a penalty kind
        99: {"decided_on": "2999-01-01"},  # in the future
    }
    for index, change in bad.items():
        rows[index].update(change)
    response = await upload(client, headers, csv_bytes(penalty_file(rows)), "处罚.csv")
    assert response.status_code == 202, response.text
    batch_id = response.json()["batch_id"]

    batch = await finished_batch(client, batch_id, headers)
    assert batch["status"] == "done", batch
    assert (batch["total"], batch["processed"], batch["progress"]) == (120, 120, 1.0)
    assert (batch["accepted"], batch["rejected"]) == (115, 5)
    # Row numbers as a spreadsheet shows them: the header is row 1.
    by_row = {(e["row"], e["field"], e["code"]) for e in batch["errors"]}
    assert (7, "uscc", "invalid_check_character") in by_row
    assert (19, "data.fine.value", "negative_amount") in by_row
    assert (44, "data.decision_number", "required") in by_row
    assert (79, "data.penalty_kinds[1]", "not_allowed") in by_row
    assert (101, "data.decided_on", "date_in_future") in by_row

    errors_file = await client.get(f"/v1/batches/{batch_id}/errors.csv", headers=headers)
    assert errors_file.status_code == 200
    assert errors_file.headers["content-type"].startswith("text/csv")
    table = read_csv(errors_file.content)
    assert table[0][:2] == ["原行号", "错误说明"]
    assert table[0][2:] == penalty_file([])[0]
    assert [r[0] for r in table[1:]] == ["7", "19", "44", "79", "101"]
    # No cell may start a formula when the file is opened in a spreadsheet.
    cells = [cell for row in table for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert "'" + INJECTION in cells
    assert b"'-5000" in errors_file.content

    # The department fixes the rows in the errors file and uploads it as it is.
    column = {title: index for index, title in enumerate(table[0])}
    fixed = [table[0]]
    for row in table[1:]:
        row = [c.removeprefix("'") for c in row]
        row[column["统一社会信用代码"]] = uscc
        row[column["行政处罚决定书文号"]] = row[column["业务编号"]]
        row[column["违法事实"]] = "销售不合格的建筑用钢筋"
        row[column["处罚类别"]] = "警告、罚款"
        row[column["罚款金额（金额）"]] = "5000"
        row[column["处罚决定日期"]] = "2025-06-10"
        fixed.append(row)
    again = await upload(client, headers, csv_bytes(fixed), "处罚-已更正.csv")
    assert again.status_code == 202, again.text
    corrected = await finished_batch(client, again.json()["batch_id"], headers)
    assert (corrected["accepted"], corrected["rejected"]) == (5, 0), corrected["errors"]

    # The original file once more: every good row is an exact repeat.
    repeat = await upload(client, headers, csv_bytes(penalty_file(rows)), "处罚.csv")
    repeated = await finished_batch(client, repeat.json()["batch_id"], headers)
    assert (repeated["accepted"], repeated["unchanged"], repeated["rejected"]) == (115, 115, 5)


async def test_keys_as_headers_and_gb18030(client: Any, keys: SigningKeys) -> None:
    headers = keys.headers(SAMR, "records:write")
    uscc = random_uscc()
    rows = [penalty_row(unique("键"), uscc) for _ in range(3)]
    by_keys = await upload(client, headers, csv_bytes(penalty_file(rows, titles=False)), "k.csv")
    assert by_keys.status_code == 202, by_keys.text
    # Excel on Chinese Windows saves CSV as GB18030.
    rows = [penalty_row(unique("国标"), uscc) for _ in range(3)]
    gbk = await upload(client, headers, csv_bytes(penalty_file(rows), "gb18030"), "g.csv")
    assert gbk.status_code == 202, gbk.text
    for response in (by_keys, gbk):
        batch = await finished_batch(client, response.json()["batch_id"], headers)
        assert (batch["accepted"], batch["rejected"]) == (3, 0), batch["errors"]


async def test_xlsx_batch_from_the_template(client: Any, keys: SigningKeys) -> None:
    headers = keys.headers(SAMR, "records:write")
    template = await client.get("/v1/categories/chattel_mortgage/template.xlsx")
    workbook = load_workbook(io.BytesIO(template.content))
    sheet = workbook["数据"]
    titles = [c.value for c in sheet[1]]

    def row(**values: Any) -> list[Any]:
        return [values.get(t) for t in titles]

    uscc = random_uscc()
    for n in range(4):
        sheet.append(
            row(
                **{
                    "业务编号": unique(f"渝动抵{n}"),
                    "统一社会信用代码": uscc,
                    "行政相对人名称": "重庆九龙智造机械有限公司",
                    "抵押登记编号": f"渝九龙动抵〔2025〕{n:04d}号",
                    "登记日期": datetime(2025, 3, 12),  # a date cell, as Excel stores it
                    "抵押权人": "重庆农村商业银行股份有限公司",
                    "被担保债权数额（金额）": 5_000_000 if n != 2 else -1,  # a number cell
                    "被担保债权数额（币种）": "CNY",
                }
            )
        )
    out = io.BytesIO()
    workbook.save(out)
    response = await upload(client, headers, out.getvalue(), "动产抵押.xlsx", "chattel_mortgage")
    assert response.status_code == 202, response.text
    batch = await finished_batch(client, response.json()["batch_id"], headers)
    assert (batch["total"], batch["accepted"], batch["rejected"]) == (4, 3, 1)
    assert [(e["row"], e["field"], e["code"]) for e in batch["errors"]] == [
        (4, "data.secured_amount.value", "negative_amount")
    ]


async def test_ndjson_batch_carries_categories_per_line(client: Any, keys: SigningKeys) -> None:
    headers = keys.headers(SAMR, "records:write")
    lines = []
    for key in ("registration", "administrative_penalty", "abnormal_operation_listing"):
        record = dict(CATALOGUE.examples[key].record, source_id=unique(key))
        lines.append(json.dumps(record, ensure_ascii=False))
    lines.append("{not json")
    lines.append("")  # blank lines are skipped, but still numbered
    judgment = dict(CATALOGUE.examples["judgment"].record, source_id=unique("判决"))
    judgment["registration_number"] = random_registration_number()
    lines.append(json.dumps(judgment, ensure_ascii=False))  # a court's category
    lines.append(json.dumps([1, 2]))
    content = ("\n".join(lines) + "\n").encode()
    response = await upload(client, headers, content, "records.ndjson", category=None)
    assert response.status_code == 202, response.text
    batch = await finished_batch(client, response.json()["batch_id"], headers)
    assert (batch["total"], batch["accepted"], batch["rejected"]) == (6, 3, 3)
    assert {(e["row"], e["code"]) for e in batch["errors"]} == {
        (4, "invalid_json"),
        (6, "category_not_permitted"),
        (7, "not_an_object"),
    }
    errors_file = read_csv(
        (
            await client.get(
                f"/v1/batches/{response.json()['batch_id']}/errors.csv", headers=headers
            )
        ).content
    )
    assert errors_file[0] == ["原行号", "错误说明", "原始内容"]
    assert errors_file[1][2] == "{not json"


async def test_malformed_files_are_refused_with_a_clear_code(
    client: Any, keys: SigningKeys
) -> None:
    headers = keys.headers(SAMR, "records:write")
    header = penalty_file([])[0]

    async def refused(
        content: bytes, filename: str, category: str | None = "administrative_penalty"
    ) -> tuple[int, str, list[tuple[str, str]]]:
        response = await upload(client, headers, content, filename, category)
        body = response.json()
        return (
            response.status_code,
            body["code"],
            [(e["field"], e["code"]) for e in body.get("errors", [])],
        )

    binary = bytes(range(256)) * 40
    assert await refused(binary, "x.csv") == (
        422,
        "validation_failed",
        [("file", "unreadable_encoding")],
    )
    unterminated = csv_bytes([header]) + b'"a,b\r\n'
    assert (await refused(unterminated, "x.csv"))[2] == [("file", "malformed_csv")]
    assert (await refused(b"", "x.csv"))[2] == [("file", "empty_file")]
    assert (await refused(b"PK\x03\x04 not really a zip", "x.xlsx"))[2] == [
        ("file", "malformed_xlsx")
    ]
    assert (await refused(binary, "x.ndjson", None))[2] == [("file", "unreadable_encoding")]
    assert (await refused(b"a,b\r\n", "x.pdf"))[2] == [("file", "unsupported_format")]
    # The header must fit the category: unknown and missing columns are named.
    status, _, errors = await refused(csv_bytes([[*header, "罚金"]]), "x.csv")
    assert status == 422 and ("columns[13]", "unknown_column") in errors
    status, _, errors = await refused(csv_bytes([header[1:]]), "x.csv")
    assert ("source_id", "missing_column") in errors
    assert await refused(csv_bytes([header]), "x.csv", None) == (
        422,
        "validation_failed",
        [("category", "required")],
    )
    assert (await refused(csv_bytes([header]), "x.csv", "judgment"))[:2] == (
        403,
        "category_not_permitted",
    )
    not_multipart = await client.post("/v1/batches", headers=headers, json={"file": "x"})
    assert not_multipart.status_code == 415


async def test_a_file_over_the_limit_is_413(client: Any, keys: SigningKeys) -> None:
    headers = keys.headers(SAMR, "records:write")
    row = penalty_row("大文件", random_uscc())
    big_csv = csv_bytes(penalty_file([row] * (LIMIT // 150)))
    assert len(big_csv) > LIMIT
    for filename, content in (
        ("big.csv", big_csv),
        ("big.ndjson", b'{"category": "registration"}\n' * (LIMIT // 28 + 10)),
        ("big.xlsx", os.urandom(LIMIT + 1000)),
    ):
        assert len(content) > LIMIT, filename
        response = await upload(client, headers, content, filename)
        assert response.status_code == 413, (filename, response.text)
        assert response.json()["code"] == "payload_too_large"

    # Without a Content-Length (chunked), the upload is cut off while it streams in.
    boundary = "ecipsboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="category"\r\n\r\n'
        f"administrative_penalty\r\n--{boundary}\r\nContent-Disposition: form-data; "
        f'name="file"; filename="big.csv"\r\nContent-Type: text/csv\r\n\r\n'
    ).encode()

    async def chunks() -> AsyncIterator[bytes]:
        yield head
        for start in range(0, len(big_csv), 65536):
            yield big_csv[start : start + 65536]
        yield f"\r\n--{boundary}--\r\n".encode()

    streamed = await client.post(
        "/v1/batches",
        headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        content=chunks(),
    )
    assert streamed.status_code == 413
    assert "content-length" not in {k.lower() for k in streamed.request.headers}


async def test_a_department_sees_only_its_own_batches(client: Any, keys: SigningKeys) -> None:
    samr = keys.headers(SAMR, "records:write")
    response = await upload(
        client, samr, csv_bytes(penalty_file([penalty_row(unique("自"), random_uscc())])), "a.csv"
    )
    batch_id = response.json()["batch_id"]
    other = keys.headers("CQ-TAX", "records:write")
    assert (await client.get(f"/v1/batches/{batch_id}", headers=other)).status_code == 403
    errors_csv = await client.get(f"/v1/batches/{batch_id}/errors.csv", headers=other)
    assert errors_csv.status_code == 403
    assert errors_csv.json()["code"] == "not_own_batch"
    assert (await client.get(f"/v1/batches/{batch_id}", headers=samr)).status_code == 200
    listed = (await client.get("/v1/batches", headers=other)).json()["items"]
    assert batch_id not in [b["batch_id"] for b in listed]
    mine = (await client.get("/v1/batches", params={"limit": 100}, headers=samr)).json()
    assert batch_id in [b["batch_id"] for b in mine["items"]]
    unknown = await client.get("/v1/batches/00000000-0000-0000-0000-000000000000", headers=samr)
    assert unknown.status_code == 404
    assert (await client.get(f"/v1/batches/{batch_id}")).status_code == 401
