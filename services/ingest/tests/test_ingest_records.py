"""Ingest against the real Postgres and broker: submission, idempotency,
corrections, revocation, validation problems and authorization."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from ecips.testkit import SigningKeys, new_signing_keys, running_app, service_settings_kwargs
from ecips_common.identifiers import USCC_ALPHABET, make_uscc
from ecips_ingest.main import create_app
from ecips_ingest.settings import IngestSettings

SAMR = "CQ-SAMR"


def random_uscc(division: str = "500103") -> str:
    body = "".join(random.choices(USCC_ALPHABET, k=8))
    return make_uscc(org_body=body, division=division)


def registration(uscc: str, name: str = "重庆山城火锅餐饮有限公司") -> dict[str, Any]:
    return {
        "category": "registration",
        "source_id": f"REG-{uscc}",
        "uscc": uscc,
        "enterprise_name": name,
        "occurred_on": "2024-03-01",
        "data": {
            "name": name,
            "legal_representative": "张三",
            "enterprise_type": "有限责任公司（自然人投资或控股）",
            "registered_capital": {"value": "1000000", "currency": "CNY"},
            "established_on": "2024-03-01",
            "address": "重庆市渝中区解放碑民族路188号",
            "business_scope": "许可项目：餐饮服务。一般项目：食品销售（仅销售预包装食品）",
            "registration_authority": "重庆市渝中区市场监督管理局",
        },
    }


def penalty(uscc: str, source_id: str, fine: str = "50000") -> dict[str, Any]:
    return {
        "category": "administrative_penalty",
        "source_id": source_id,
        "uscc": uscc,
        "enterprise_name": "重庆山城火锅餐饮有限公司",
        "occurred_on": "2025-06-10",
        "data": {
            "decision_number": source_id,
            "authority": "重庆市渝中区市场监督管理局",
            "violation_type": "食品安全",
            "facts": "经营超过保质期的食品原料",
            "penalty_kinds": ["警告", "罚款"],
            "content": "警告，并处罚款",
            "fine": {"value": fine, "currency": "CNY"},
            "decided_on": "2025-06-10",
        },
    }


@pytest.fixture(scope="module")
def keys() -> SigningKeys:
    return new_signing_keys()


@pytest.fixture(scope="module")
async def client(database_url: str, kafka_bootstrap: str, keys: SigningKeys) -> AsyncIterator[Any]:
    settings = IngestSettings(
        **service_settings_kwargs(
            database_url=database_url, kafka_bootstrap=kafka_bootstrap, keys=keys
        )
    )
    async with running_app(lambda: create_app(settings)) as http:
        yield http


async def test_new_record_is_accepted_then_idempotent(client: Any, keys: SigningKeys) -> None:
    headers = keys.headers(SAMR, "records:write")
    body = registration(random_uscc())
    first = await client.post("/v1/records", json=body, headers=headers)
    assert first.status_code == 202, first.text
    receipt = first.json()
    assert receipt["revision"] == 1 and receipt["status"] == "accepted"
    again = await client.post("/v1/records", json=body, headers=headers)
    assert again.status_code == 200
    assert again.json() == receipt


async def test_changed_content_is_a_new_revision(client: Any, keys: SigningKeys) -> None:
    headers = keys.headers(SAMR, "records:write")
    uscc = random_uscc()
    first = (
        await client.post("/v1/records", json=penalty(uscc, f"P-{uscc}"), headers=headers)
    ).json()
    corrected = await client.post(
        "/v1/records", json=penalty(uscc, f"P-{uscc}", fine="40000"), headers=headers
    )
    assert corrected.status_code == 202
    assert corrected.json()["record_id"] == first["record_id"]
    assert corrected.json()["revision"] == 2
    record = (await client.get(f"/v1/records/{first['record_id']}", headers=headers)).json()
    assert [r["data"]["fine"]["value"] for r in record["revisions"]] == ["50000", "40000"]


async def test_concurrent_identical_submissions_make_one_record(
    client: Any, keys: SigningKeys
) -> None:
    headers = keys.headers(SAMR, "records:write")
    body = penalty(random_uscc(), "P-CONCURRENT-" + random_uscc())
    responses = await asyncio.gather(
        *[client.post("/v1/records", json=body, headers=headers) for _ in range(8)]
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 7 + [202]
    assert len({(r.json()["record_id"], r.json()["revision"]) for r in responses}) == 1


async def test_revocation(client: Any, keys: SigningKeys) -> None:
    headers = keys.headers(SAMR, "records:write")
    uscc = random_uscc()
    receipt = (
        await client.post("/v1/records", json=penalty(uscc, f"R-{uscc}"), headers=headers)
    ).json()
    revoked = await client.post(
        f"/v1/records/{receipt['record_id']}/revocation",
        json={"reason": "行政复议撤销原处罚决定"},
        headers=headers,
    )
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked"
    other = keys.headers("CQ-TAX", "records:write")
    denied = await client.post(
        f"/v1/records/{receipt['record_id']}/revocation",
        json={"reason": "不是我的记录"},
        headers=other,
    )
    assert denied.status_code == 403
    assert denied.json()["code"] == "not_own_record"
    resubmitted = await client.post(
        "/v1/records", json=penalty(uscc, f"R-{uscc}", "1"), headers=headers
    )
    assert resubmitted.status_code == 409


async def test_bad_uscc_is_a_problem_naming_the_field(client: Any, keys: SigningKeys) -> None:
    body = registration(random_uscc())
    body["uscc"] = body["uscc"][:-1] + ("0" if body["uscc"][-1] != "0" else "1")
    response = await client.post(
        "/v1/records", json=body, headers=keys.headers(SAMR, "records:write")
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["errors"][0]["field"] == "uscc"
    assert problem["errors"][0]["code"] == "invalid_check_character"


async def test_schema_errors_name_data_fields(client: Any, keys: SigningKeys) -> None:
    body = penalty(random_uscc(), "P-BAD")
    del body["data"]["facts"]
    body["data"]["fine"] = {"value": "-5", "currency": "CNY"}
    body["data"]["colour"] = "red"
    response = await client.post(
        "/v1/records", json=body, headers=keys.headers(SAMR, "records:write")
    )
    assert response.status_code == 422
    errors = {(e["field"], e["code"]) for e in response.json()["errors"]}
    assert ("data.facts", "required") in errors
    assert ("data.colour", "unknown_field") in errors
    assert ("data.fine.value", "negative_amount") in errors


async def test_unknown_envelope_field_and_future_date(client: Any, keys: SigningKeys) -> None:
    body = registration(random_uscc())
    body["extra"] = 1
    body["occurred_on"] = "2999-01-01"
    response = await client.post(
        "/v1/records", json=body, headers=keys.headers(SAMR, "records:write")
    )
    assert response.status_code == 422
    errors = {(e["field"], e["code"]) for e in response.json()["errors"]}
    assert ("extra", "unknown_field") in errors
    assert ("occurred_on", "date_in_future") in errors


async def test_authorization(client: Any, keys: SigningKeys) -> None:
    body = registration(random_uscc())
    assert (await client.post("/v1/records", json=body)).status_code == 401
    garbage = await client.post("/v1/records", json=body, headers={"Authorization": "Bearer x.y.z"})
    assert garbage.status_code == 401 and garbage.json()["code"] == "invalid_token"
    expired = keys.token(SAMR, ["records:write"], ttl_seconds=60, now=1_000_000)
    response = await client.post(
        "/v1/records", json=body, headers={"Authorization": f"Bearer {expired}"}
    )
    assert response.status_code == 401 and response.json()["code"] == "token_expired"
    no_scope = await client.post(
        "/v1/records", json=body, headers=keys.headers(SAMR, "ledger:read")
    )
    assert no_scope.status_code == 403 and no_scope.json()["code"] == "insufficient_scope"
    foreign_key = new_signing_keys().headers(SAMR, "records:write")
    assert (await client.post("/v1/records", json=body, headers=foreign_key)).status_code == 401
    # Only the registration authority may submit registrations.
    court = await client.post(
        "/v1/records", json=body, headers=keys.headers("CQ-COURT", "records:write")
    )
    assert court.status_code == 403 and court.json()["code"] == "category_not_permitted"


async def test_catalogues(client: Any) -> None:
    categories = (await client.get("/v1/categories")).json()
    by_key = {c["key"]: c for c in categories["items"]}
    assert len(by_key) == 26  # the contract's 25 and credit_repair
    assert by_key["registration"]["submitters"] == [SAMR]
    assert by_key["administrative_penalty"]["disclosure"] == "public"
    assert "CQ-COURT" in by_key["judgment"]["submitters"]
    departments = {d["code"]: d for d in (await client.get("/v1/departments")).json()["items"]}
    samr = departments[SAMR]
    assert (samr["name"], samr["kind"], samr["notice_name"]) == (
        "重庆市市场监督管理局",
        "registration_authority",
        "市工商局",
    )
    assert "administrative_penalty" in samr["expected_monthly"]
    # Every district and county government the notice addresses is a department.
    assert len([d for d in departments.values() if d["kind"] == "district_government"]) == 38
    # Only courts submit judgments and judicial assistance; only SAMR registrations.
    for key in ("judgment", "judicial_assistance"):
        assert {departments[c]["kind"] for c in by_key[key]["submitters"]} == {"court"}
    for key in ("registration", "registration_change", "deregistration"):
        assert by_key[key]["submitters"] == [SAMR]


async def test_accepted_records_reach_the_topic_as_cloudevents(
    client: Any, keys: SigningKeys, kafka_bootstrap: str
) -> None:
    uscc = random_uscc()
    receipt = (
        await client.post(
            "/v1/records", json=registration(uscc), headers=keys.headers(SAMR, "records:write")
        )
    ).json()
    consumer = AIOKafkaConsumer(
        "records", bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        found = None
        async with asyncio.timeout(20):
            while found is None:
                batch = await consumer.getmany(timeout_ms=500)
                for messages in batch.values():
                    for message in messages:
                        event = json.loads(message.value)
                        if event["data"]["record_id"] == receipt["record_id"]:
                            found = (message.key, event)
        key, event = found
        assert key == uscc.encode()
        assert event["specversion"] == "1.0"
        assert event["type"] == "ecips.record.accepted"
        assert event["subject"] == uscc
        assert event["source"] == "/ecips/ingest"
        assert isinstance(event["sequence"], int)
    finally:
        await consumer.stop()
    feed = await client.get(
        "/v1/changes",
        params={"after": event["sequence"] - 1, "limit": 1},
        headers=keys.headers("SYSTEM", "changes:read"),
    )
    assert feed.status_code == 200, feed.text
    assert feed.json()["items"][0]["id"] == event["id"]
    assert (
        await client.get("/v1/changes", headers=keys.headers(SAMR, "records:write"))
    ).status_code == 403


async def test_health_and_metrics(client: Any) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    metrics = await client.get("/metrics")
    assert "ecips_http_requests_total" in metrics.text
    openapi = (await client.get("/openapi.json")).json()
    assert "/v1/records" in openapi["paths"]


async def test_a_record_over_the_size_limit_is_413(client: Any, keys: SigningKeys) -> None:
    body = penalty(random_uscc(), "P-BIG")
    body["data"]["note"] = "备注" * 200_000
    response = await client.post(
        "/v1/records", json=body, headers=keys.headers(SAMR, "records:write")
    )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
