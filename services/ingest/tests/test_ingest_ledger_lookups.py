"""What ingest asks the ledger, over HTTP, before accepting a record: the name
must be the enterprise's name (a former name is accepted with a warning), an
old registration number is resolved to the USCC; a ledger that is down or does
not know the enterprise never blocks a submission."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from ingest_support import (
    StubLedger,
    csv_bytes,
    finished_batch,
    private_database,
    random_registration_number,
    random_uscc,
    settings,
    unique,
)

from ecips.testkit import SigningKeys, new_signing_keys, running_app
from ecips_ingest.catalogue import load_catalogue
from ecips_ingest.main import create_app
from ecips_ingest.settings import CATALOGUE_DIR

SAMR = "CQ-SAMR"
EXAMPLES = load_catalogue(CATALOGUE_DIR).examples
NAME = "重庆两江云帆科技有限公司"
OLD_NAME = "重庆云帆软件开发有限公司"


@pytest.fixture(scope="module")
def keys() -> SigningKeys:
    return new_signing_keys()


@pytest.fixture(scope="module")
async def ledger() -> AsyncIterator[StubLedger]:
    stub = StubLedger()
    await stub.start()
    yield stub
    await stub.stop()


@pytest.fixture(scope="module")
async def client(
    database_url: str, kafka_bootstrap: str, keys: SigningKeys, ledger: StubLedger
) -> AsyncIterator[Any]:
    async with private_database(database_url) as own_url:
        app_settings = settings(
            own_url,
            kafka_bootstrap,
            keys,
            ledger_url=ledger.url,
            ledger_pause_after_failure_seconds=30,
        )
        async with running_app(lambda: create_app(app_settings)) as http:
            yield http


def penalty(uscc: str | None, name: str, **envelope: Any) -> dict[str, Any]:
    record = dict(EXAMPLES["administrative_penalty"].record)
    record.update(source_id=unique("渝罚"), uscc=uscc, enterprise_name=name, **envelope)
    return record


async def test_name_checked_against_the_ledger(
    client: Any, keys: SigningKeys, ledger: StubLedger
) -> None:
    headers = keys.headers(SAMR, "records:write")
    uscc = random_uscc()
    ledger.know(uscc, NAME, former=[(OLD_NAME, "2024-05-20")])

    same = await client.post("/v1/records", json=penalty(uscc, NAME), headers=headers)
    assert same.status_code == 202, same.text
    assert same.json()["warnings"] == []
    # Width and spaces do not matter: （） and () are the same bracket.
    spaced = await client.post(
        "/v1/records", json=penalty(uscc, " 重庆两江云帆科技有限公司"), headers=headers
    )
    assert spaced.status_code == 202

    former = await client.post("/v1/records", json=penalty(uscc, OLD_NAME), headers=headers)
    assert former.status_code == 202, former.text
    (warning,) = former.json()["warnings"]
    assert (warning["field"], warning["code"]) == ("enterprise_name", "former_name")
    assert NAME in warning["message"] and "2024-05-20" in warning["message"]

    other = await client.post(
        "/v1/records", json=penalty(uscc, "重庆别家贸易有限公司"), headers=headers
    )
    assert other.status_code == 422
    problem = other.json()
    assert problem["code"] == "name_mismatch"
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [
        ("enterprise_name", "name_mismatch")
    ]
    # Answers are cached: four submissions, one question.
    assert ledger.calls.count(f"enterprise {uscc}") == 1

    # A registration change may carry the new name: it is not checked.
    change = dict(EXAMPLES["registration_change"].record)
    change.update(source_id=unique("变更"), uscc=uscc, enterprise_name="重庆云帆新名称有限公司")
    assert (await client.post("/v1/records", json=change, headers=headers)).status_code == 202


async def test_unknown_enterprise_is_accepted_without_warning(
    client: Any, keys: SigningKeys
) -> None:
    response = await client.post(
        "/v1/records",
        json=penalty(random_uscc(), "重庆尚未登记的企业有限公司"),
        headers=keys.headers(SAMR, "records:write"),
    )
    assert response.status_code == 202
    assert response.json()["warnings"] == []


async def test_old_registration_number_is_resolved_and_passed_on(
    client: Any, keys: SigningKeys, ledger: StubLedger
) -> None:
    court = keys.headers("CQ-COURT", "records:write")
    uscc, number = random_uscc("500105"), random_registration_number("500105")
    ledger.know(uscc, "重庆江北港城商贸有限公司")
    ledger.numbers[number] = uscc
    judgment = dict(
        EXAMPLES["judgment"].record, source_id=unique("判决"), registration_number=number
    )
    response = await client.post("/v1/records", json=judgment, headers=court)
    assert response.status_code == 202, response.text
    assert response.json()["uscc"] == uscc
    record = (await client.get(f"/v1/records/{response.json()['record_id']}", headers=court)).json()
    revision = record["revisions"][0]
    assert (revision["uscc"], revision["registration_number"]) == (uscc, number)
    feed = await client.get(
        "/v1/changes", params={"limit": 1000}, headers=keys.headers("SYSTEM", "changes:read")
    )
    event = next(
        e for e in feed.json()["items"] if e["data"]["record_id"] == response.json()["record_id"]
    )
    assert (event["subject"], event["data"]["uscc"]) == (uscc, uscc)
    assert event["data"]["registration_number"] == number

    # Unknown to the ledger: accepted under the number alone, passed on as it is.
    unknown = dict(
        judgment, source_id=unique("判决"), registration_number=random_registration_number()
    )
    response = await client.post("/v1/records", json=unknown, headers=court)
    assert response.status_code == 202
    assert response.json()["uscc"] is None


async def test_batch_rows_are_checked_too(
    client: Any, keys: SigningKeys, ledger: StubLedger
) -> None:
    headers = keys.headers(SAMR, "records:write")
    uscc = random_uscc()
    ledger.know(uscc, NAME, former=[(OLD_NAME, "2024-05-20")])
    header = ["业务编号", "统一社会信用代码", "行政相对人名称", "检查编号", "检查机关", "检查日期",
              "检查类型", "检查结果"]  # fmt: skip
    rows = [
        [
            unique("查"),
            uscc,
            name,
            f"CQ2025-{n}",
            "重庆市渝北区市场监督管理局",
            "2025-04-12",
            "不定向抽查",
            "未发现问题",
        ]
        for n, name in enumerate((NAME, OLD_NAME, "重庆别家贸易有限公司"))
    ]
    response = await client.post(
        "/v1/batches",
        headers=headers,
        files={"file": ("抽查.csv", csv_bytes([header, *rows]))},
        data={"category": "administrative_inspection"},
    )
    ledger.calls.clear()
    batch = await finished_batch(client, response.json()["batch_id"], headers)
    assert (batch["accepted"], batch["rejected"], batch["warnings"]) == (2, 1, 1)
    assert [(e["row"], e["code"]) for e in batch["errors"]] == [(4, "name_mismatch")]
    assert [(w["row"], w["code"]) for w in batch["row_warnings"]] == [(3, "former_name")]
    # The rows' enterprises were asked about in one lookup, not one request each.
    assert ledger.calls == ["lookup 1 usccs, 0 numbers"]


async def test_batch_rows_are_checked_one_by_one_by_a_ledger_without_lookup(
    client: Any, keys: SigningKeys, ledger: StubLedger
) -> None:
    headers = keys.headers(SAMR, "records:write")
    known, number_only = random_uscc(), random_uscc()
    number = random_registration_number()
    ledger.know(known, NAME)
    ledger.know(number_only, OLD_NAME)
    ledger.numbers[number] = number_only
    ledger.offer_lookup = False
    try:
        lines = [
            penalty(known, NAME),
            penalty(known, "重庆别家贸易有限公司"),
            penalty(None, OLD_NAME, registration_number=number),
        ]
        response = await client.post(
            "/v1/batches",
            headers=headers,
            files={"file": ("罚.ndjson", "\n".join(json.dumps(r) for r in lines).encode())},
            data={"format": "ndjson"},
        )
        ledger.calls.clear()
        batch = await finished_batch(client, response.json()["batch_id"], headers)
    finally:
        ledger.offer_lookup = True
    assert (batch["accepted"], batch["rejected"]) == (2, 1)
    assert [(e["row"], e["code"]) for e in batch["errors"]] == [(2, "name_mismatch")]
    assert ledger.calls[0] == "lookup 1 usccs, 1 numbers"
    # Rows of one enterprise may ask at the same moment, so count what was asked.
    assert set(ledger.calls[1:]) == {
        f"enterprise {known}",
        f"enterprise {number_only}",
        f"number {number}",
    }


async def test_a_ledger_that_is_down_never_blocks_a_submission(
    client: Any, keys: SigningKeys, ledger: StubLedger
) -> None:
    uscc = random_uscc()
    ledger.know(uscc, NAME)
    await ledger.stop()
    response = await client.post(
        "/v1/records",
        json=penalty(uscc, "重庆别家贸易有限公司"),
        headers=keys.headers(SAMR, "records:write"),
    )
    assert response.status_code == 202, response.text
    assert response.json()["warnings"] == []
