"""The public read model and API: events consumed from the broker, search
with ranking and filters, the enterprise page, and the HTTP behaviour of a
public service (problems, rate limit, ETag, gzip, cache headers, CORS)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from publicity_support import (
    Clock,
    Running,
    cloud_event,
    enterprise_changed,
    eventually,
    new_uscc,
    publicity_settings,
    record_filed,
    running_publicity,
    unique_word,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from ecips_common.contracts import (
    EnterpriseFlags,
    FormerName,
    MeasureRef,
    PunishmentLifted,
    PunishmentTriggered,
)
from ecips_common.events import EventPayload
from ecips_common.identifiers import make_registration_number
from ecips_common.outbox import ensure_topics

TODAY = date(2026, 6, 15)


@pytest.fixture(scope="module")
async def service(database_url: str, kafka_bootstrap: str) -> AsyncIterator[Running]:
    settings = publicity_settings(database_url, kafka_bootstrap, search_result_cap=10)
    await ensure_topics(kafka_bootstrap, {settings.ledger_topic: 3, settings.punishments_topic: 2})
    async with running_publicity(settings, Clock(TODAY)) as running:
        yield running


async def publish(kafka_bootstrap: str, topic: str, *payloads: EventPayload) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        for payload in payloads:
            subject = str(getattr(payload, "uscc", ""))
            event = cloud_event(payload, subject)
            await producer.send_and_wait(
                topic,
                json.dumps(event.model_dump(mode="json"), ensure_ascii=False).encode(),
                key=subject.encode(),
            )
    finally:
        await producer.stop()


async def profile_when(client: httpx.AsyncClient, uscc: str, condition: Any) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        response = await client.get(f"/v1/enterprises/{uscc}")
        if response.status_code != 200:
            return None
        body: dict[str, Any] = response.json()
        return body if condition(body) else None

    return await eventually(probe)


def section_counts(profile: dict[str, Any]) -> dict[str, int]:
    return {s["key"]: s["count"] for s in profile["sections"]}


async def test_events_from_the_broker_publish_only_what_is_public(
    service: Running, kafka_bootstrap: str
) -> None:
    uscc = new_uscc()
    license_id = uuid.uuid4()
    revoked_id = uuid.uuid4()
    await publish(
        kafka_bootstrap,
        service.settings.ledger_topic,
        enterprise_changed(uscc, 1, f"重庆{unique_word()}建材有限公司"),
        record_filed(
            uscc,
            "administrative_license",
            record_id=license_id,
            data={
                "decision_number": "渝市监许〔2020〕1号",
                "legal_representative": "王小明",
                "legal_representative_id_number": "110101199003071234",
                "contact": {"mobile": "13812345678", "holder_id_number": "500103198001011234"},
                "note": "经办人身份证 11010119900307123X，电话 +86 139-1234-5678",
            },
        ),
        record_filed(uscc, "judgment", disclosure="authorized", data={"secret": "判决"}),
        # Revoked: the revocation (version 2) arrives before the filing (version 1).
        record_filed(
            uscc, "administrative_penalty", record_id=revoked_id, version=2, status="revoked"
        ),
        record_filed(uscc, "administrative_penalty", record_id=revoked_id),
        record_filed(
            uscc,
            "administrative_penalty",
            occurred_on=TODAY - timedelta(days=10),
            period_days=1095,
            source_id="渝市监罚〔当前〕1号",
        ),
        # Last on the same partition: once it shows, everything before was applied.
        record_filed(uscc, "trademark_registration"),
    )
    async with service.client() as client:
        profile = await profile_when(
            client, uscc, lambda p: "trademark_registration" in section_counts(p)
        )
        assert section_counts(profile) == {
            "administrative_license": 1,
            "administrative_penalty": 1,
            "trademark_registration": 1,
        }
        tabs = {t["key"]: t["count"] for t in profile["tabs"]}
        assert tabs["penalties"] == 1 and tabs["licenses"] == 1 and tabs["other"] == 0
        licences = (
            await client.get(
                f"/v1/enterprises/{uscc}/records", params={"category": "administrative_license"}
            )
        ).json()
        item = licences["items"][0]
        assert item["record_id"] == str(license_id)
        assert item["decision_number"] == "渝市监许〔2020〕1号"
        assert item["category_name"] == "行政许可"
        data = item["data"]
        assert data["legal_representative"] == "王小明"
        assert "legal_representative_id_number" not in data
        assert data["contact"] == {"mobile": "138****5678"}
        assert "110*************3X" in data["note"] and "+86 139****5678" in data["note"]
        labels = {f["key"]: f["label"] for f in item["fields"]}
        assert labels["decision_number"] == "决定文书号"  # fallback: ingest is not running
        assert "11010119900307123X" not in json.dumps(licences, ensure_ascii=False)
        judgments = (
            await client.get(f"/v1/enterprises/{uscc}/records", params={"category": "judgment"})
        ).json()
        assert judgments == {"items": [], "total": 0, "page": 1, "limit": 20}


async def test_search_ranks_exact_prefix_contains_and_former_names(service: Running) -> None:
    word = unique_word(5)
    exact, prefix, contains, renamed, unregistered = (new_uscc() for _ in range(5))
    number = make_registration_number("500103" + str(uuid.uuid4().int)[:8])
    await service.apply(
        enterprise_changed(exact, 1, word),
        enterprise_changed(prefix, 1, f"{word}物流有限公司", registration_number=number),
        enterprise_changed(contains, 1, f"重庆{word}物流有限公司"),
        enterprise_changed(
            renamed,
            2,
            f"重庆{unique_word()}贸易有限公司",
            former_names=[FormerName(name=f"重庆市{word}旧名贸易有限公司", until=date(2021, 1, 1))],
            flags=EnterpriseFlags(serious_illegal=True, serious_illegal_since=date(2023, 2, 1)),
        ),
        enterprise_changed(unregistered, 1, f"{word}未登记", registered=False),
    )
    async with service.client("192.0.2.2") as client:

        async def search(**params: Any) -> dict[str, Any]:
            response = await client.get("/v1/search", params=params)
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            return body

        result = await search(q=word)
        assert result["total"] == 4 and result["total_exact"] is True
        usccs = [item["uscc"] for item in result["items"]]
        assert usccs == [exact, prefix, contains, renamed]
        by_uscc = {item["uscc"]: item for item in result["items"]}
        assert by_uscc[renamed]["matched_name"] == f"重庆市{word}旧名贸易有限公司"
        assert by_uscc[renamed]["match"] == "former_name"
        assert by_uscc[contains]["match"] == "name"
        assert by_uscc[exact]["district"] == "渝中区"
        assert by_uscc[exact]["status_code"] == "active"

        # Two characters (served by the character-pair index), any case of Latin letters.
        pair = word[1:3]
        assert exact in {i["uscc"] for i in (await search(q=pair, limit=50))["items"]}
        assert [i["uscc"] for i in (await search(q=f"{word}物流"))["items"]] == [prefix, contains]
        assert [i["uscc"] for i in (await search(q=f"{word}旧名"))["items"]] == [renamed]
        # USCC in lower case and with spaces; the old registration number.
        for q in (prefix.lower(), f"  {prefix} ", number):
            found = await search(q=q)
            assert [i["uscc"] for i in found["items"]] == [prefix], q
            assert found["items"][0]["matched_name"] is None
        assert (await search(q=number))["items"][0]["match"] == "registration_number"
        # Paging keeps the order.
        second = await search(q=word, page=2, limit=2)
        assert [i["uscc"] for i in second["items"]] == [contains, renamed]
        # Filters.
        listed = await search(q=word, listed="serious_illegal")
        assert [i["uscc"] for i in listed["items"]] == [renamed]
        assert (await search(q=word, district="500101"))["total"] == 0
        assert (await search(q=word, status="revoked"))["total"] == 0
        assert (await search(q=word, status=["active", "revoked"]))["total"] == 4
        # LIKE wildcards are literal characters; unregistered enterprises never show.
        assert (await search(q="%%重庆"))["total"] == 0
        assert unregistered not in {i["uscc"] for i in (await search(q=word))["items"]}
        assert (await client.get(f"/v1/enterprises/{unregistered}")).status_code == 404


async def test_search_by_legal_representative_and_lists_without_a_name(service: Running) -> None:
    person = f"欧阳{unique_word(2)}"
    first, second = new_uscc(), new_uscc("500112")
    await service.apply(
        enterprise_changed(first, 1, f"重庆{unique_word()}甲有限公司", legal_representative=person),
        enterprise_changed(
            second,
            1,
            f"重庆{unique_word()}乙有限公司",
            legal_representative=person,
            flags=EnterpriseFlags(abnormal_operation=True),
        ),
    )
    async with service.client("192.0.2.3") as client:
        found = (await client.get("/v1/search", params={"legal_representative": person})).json()
        assert {i["uscc"] for i in found["items"]} == {first, second}
        assert {i["match"] for i in found["items"]} == {"filter"}
        both = (
            await client.get(
                "/v1/search", params={"legal_representative": person, "district": "500112"}
            )
        ).json()
        assert [i["uscc"] for i in both["items"]] == [second]
        listed = (
            await client.get("/v1/search", params={"listed": "abnormal_operation", "limit": 50})
        ).json()
        assert second in {i["uscc"] for i in listed["items"]}
        assert all(i["flags"]["abnormal_operation"] for i in listed["items"])


async def test_a_broad_fragment_caps_the_total_and_ranks_prefix_matches_first(
    service: Running,
) -> None:
    """The cap is 10 in this module: twelve enterprises share the fragment."""
    word = unique_word(4)
    prefixed = [new_uscc() for _ in range(3)]
    inside = [new_uscc() for _ in range(9)]
    await service.apply(
        *(enterprise_changed(u, 1, f"{word}{n}号有限公司") for n, u in enumerate(prefixed)),
        *(enterprise_changed(u, 1, f"重庆{word}{n}号有限公司") for n, u in enumerate(inside)),
    )
    async with service.client("192.0.2.4") as client:
        first = (await client.get("/v1/search", params={"q": word, "limit": 5})).json()
        assert first["total"] == 10 and first["total_exact"] is False
        assert [i["uscc"] for i in first["items"][:3]] == prefixed  # prefix, in name order
        rest = (await client.get("/v1/search", params={"q": word, "limit": 5, "page": 2})).json()
        assert set(i["uscc"] for i in first["items"][3:] + rest["items"]) <= set(inside)
        too_deep = await client.get("/v1/search", params={"q": word, "page": 50, "limit": 5})
        assert too_deep.status_code == 422
        assert too_deep.json()["code"] == "query_too_broad"


async def test_profile_lists_pair_listing_and_removal(service: Running) -> None:
    uscc = new_uscc()
    listing = record_filed(
        uscc,
        "abnormal_operation_listing",
        occurred_on=date(2024, 7, 1),
        data={"decision_number": "渝市监异列〔2024〕9号", "authority": "重庆市渝中区市场监督管理局",
              "decided_on": "2024-07-01", "reason": "未按规定报送年度报告"},
    )  # fmt: skip
    removal = record_filed(
        uscc,
        "abnormal_operation_removal",
        occurred_on=date(2024, 9, 1),
        data={"decision_number": "渝市监异移〔2024〕3号", "authority": "重庆市渝中区市场监督管理局",
              "decided_on": "2024-09-01", "reason": "已补报年度报告",
              "listing_decision_number": "渝市监异列〔2024〕9号"},
    )  # fmt: skip
    relisted = record_filed(
        uscc,
        "abnormal_operation_listing",
        occurred_on=date(2025, 7, 1),
        data={"decision_number": "渝市监异列〔2025〕2号", "reason": "通过登记的住所无法联系"},
    )
    await service.apply(
        enterprise_changed(uscc, 1, f"重庆{unique_word()}名录有限公司"), removal, listing, relisted
    )
    async with service.client("192.0.2.5") as client:
        lists = (await client.get(f"/v1/enterprises/{uscc}/lists/abnormal_operation")).json()
        assert lists["name"] == "经营异常名录" and lists["total"] == 2
        newest, oldest = lists["items"]
        assert newest["listing"]["record_id"] == str(relisted.record_id)
        assert newest["removal"] is None
        assert oldest["listing"]["decision_number"] == "渝市监异列〔2024〕9号"
        assert oldest["removal"]["decided_on"] == "2024-09-01"
        profile = (await client.get(f"/v1/enterprises/{uscc}")).json()
        assert {t["key"]: t["count"] for t in profile["tabs"]}["abnormal_operation"] == 2
        unknown = await client.get(f"/v1/enterprises/{uscc}/lists/nothing")
        assert unknown.status_code == 404


async def test_out_of_order_enterprise_versions_keep_the_newest(service: Running) -> None:
    uscc = new_uscc()
    newest, older, oldest = (f"重庆{unique_word()}{n}有限公司" for n in ("新", "中", "旧"))
    await service.apply(
        enterprise_changed(uscc, 3, newest, legal_representative="李四", status="吊销"),
        enterprise_changed(uscc, 1, oldest, legal_representative="赵一"),
        enterprise_changed(uscc, 2, older, legal_representative="钱二"),
    )
    async with service.client("192.0.2.6") as client:
        profile = (await client.get(f"/v1/enterprises/{uscc}")).json()
        assert profile["name"] == newest
        assert profile["legal_representative"] == "李四"
        assert profile["status_code"] == "revoked"  # from the label: no status_code sent
        assert (await client.get("/v1/search", params={"q": oldest})).json()["total"] == 0


async def test_the_status_code_sent_by_the_ledger_wins(service: Running) -> None:
    uscc = new_uscc()
    event = cloud_event(enterprise_changed(uscc, 1, f"重庆{unique_word()}迁出有限公司"), uscc)
    data = dict(event.data, status="迁出", status_code="moved_out")
    processor = service.state.processor
    assert processor is not None
    assert await processor.process(event.model_copy(update={"data": data})) == "applied"
    async with service.client("192.0.2.7") as client:
        found = (await client.get("/v1/search", params={"q": uscc, "status": "moved_out"})).json()
        assert found["items"][0]["status"] == "迁出"
        assert found["items"][0]["status_code"] == "moved_out"


async def test_joint_measures_follow_triggers_and_lifts(service: Running) -> None:
    uscc = new_uscc()
    name = f"重庆{unique_word()}工程有限公司"
    await service.apply(enterprise_changed(uscc, 1, name))
    measure = MeasureRef(
        measure="procurement_ban",
        title="限制参与政府采购",
        scenarios=["government_procurement"],
        department="CQ-FIN",
        legal_basis="国发〔2016〕33号",
    )
    decided = datetime(2024, 1, 1, tzinfo=UTC)

    def triggered(rule_id: str, at: datetime) -> PunishmentTriggered:
        return PunishmentTriggered(
            uscc=uscc, enterprise_name=name, rule_id=rule_id, rule_version=1,
            rule_title="严重违法失信企业联合惩戒", kind="punishment", measures=[measure],
            legal_basis="国发〔2016〕33号", since=date(2024, 1, 1), until=None,
            catalogue_version="test", decided_at=at,
        )  # fmt: skip

    rules = "/ecips/rules"
    await service.apply(triggered("serious-illegal", decided), source=rules)
    async with service.client("192.0.2.8") as client:
        profile = (await client.get(f"/v1/enterprises/{uscc}")).json()
        assert profile["joint_measures"][0]["measures"][0]["title"] == "限制参与政府采购"
        assert {t["key"]: t["count"] for t in profile["tabs"]}["joint_measures"] == 1
        lifted = PunishmentLifted(
            uscc=uscc, enterprise_name=name, rule_id="serious-illegal", rule_version=1,
            kind="punishment", measures=[measure], reason="信用修复",
            lifted_on=date(2024, 6, 1), catalogue_version="test",
            decided_at=decided + timedelta(days=150),
        )  # fmt: skip
        # A stale trigger delivered after the lift must not bring the rule back.
        await service.apply(lifted, triggered("serious-illegal", decided), source=rules)
        profile = (await client.get(f"/v1/enterprises/{uscc}")).json()
        assert profile["joint_measures"] == []


async def test_invalid_input_is_a_clear_problem(service: Running) -> None:
    async with service.client("192.0.2.9") as client:
        cases: list[tuple[dict[str, Any], str, str]] = [
            ({}, "q", "required"),
            ({"q": "   "}, "q", "required"),
            ({"q": "企"}, "q", "too_short"),
            ({"q": "企" * 101}, "q", "too_long"),
            ({"q": "%%%%"}, "q", "not_searchable"),
            ({"q": "重庆", "status": "closed"}, "status", "not_allowed"),
            ({"q": "重庆", "listed": "blacklist"}, "listed", "not_allowed"),
            ({"q": "重庆", "district": "渝中"}, "district", "invalid_district"),
            ({"q": "重庆", "limit": 0}, "limit", "greater_than_equal"),
            ({"q": "重庆", "limit": 51}, "limit", "less_than_equal"),
        ]
        for params, field, code in cases:
            response = await client.get("/v1/search", params=params)
            assert response.status_code == 422, params
            assert response.headers["content-type"] == "application/problem+json"
            error = response.json()["errors"][0]
            assert (error["field"], error["code"]) == (field, code), params
        malformed = await client.get("/v1/enterprises/91500103ABC")
        assert malformed.status_code == 422
        assert malformed.json()["errors"][0]["field"] == "uscc"
        unknown = await client.get(f"/v1/enterprises/{new_uscc()}")
        assert unknown.status_code == 404
        assert unknown.json()["code"] == "enterprise_not_found"
        category = await client.get(
            f"/v1/enterprises/{new_uscc()}/records", params={"category": "no_such_thing"}
        )
        assert category.status_code == 422
        assert category.json()["errors"][0]["field"] == "category"


async def test_rate_limit_answers_429_after_the_burst(service: Running) -> None:
    async with service.client("198.51.100.7") as client:
        responses = await asyncio.gather(
            *(client.get("/v1/search", params={"q": ""}) for _ in range(150))
        )
        statuses = [r.status_code for r in responses]
        assert statuses.count(422) >= 60
        limited = [r for r in responses if r.status_code == 429]
        assert limited, "the burst of 60 was not enforced"
        assert int(limited[0].headers["Retry-After"]) >= 1
        assert limited[0].json()["code"] == "rate_limited"
    async with service.client("198.51.100.8") as other:
        assert (await other.get("/v1/search", params={"q": ""})).status_code == 422
    async with service.client("198.51.100.7") as same:
        assert (await same.get("/healthz")).status_code == 200


async def test_etag_gzip_cache_headers_and_cors(service: Running) -> None:
    uscc = new_uscc()
    await service.apply(
        enterprise_changed(uscc, 1, f"重庆{unique_word()}缓存有限公司"),
        *(record_filed(uscc, "trademark_registration") for _ in range(5)),
    )
    async with service.client("192.0.2.10") as client:
        path = f"/v1/enterprises/{uscc}/records?category=trademark_registration"
        first = await client.get(path, headers={"Accept-Encoding": "identity"})
        assert first.status_code == 200
        etag = first.headers["etag"]
        assert etag.startswith('W/"')
        assert first.headers["cache-control"] == "public, max-age=30"
        again = await client.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag
        assert again.headers["cache-control"] == "public, max-age=30"
        other = await client.get(path, headers={"If-None-Match": 'W/"something-else"'})
        assert other.status_code == 200
        # A new item changes the body, hence the tag.
        await service.apply(record_filed(uscc, "trademark_registration"))
        changed = await client.get(path, headers={"If-None-Match": etag})
        assert changed.status_code == 200 and changed.headers["etag"] != etag

        zipped = await client.get(path, headers={"Accept-Encoding": "gzip"})
        assert zipped.headers["content-encoding"] == "gzip"
        assert "Accept-Encoding" in zipped.headers["vary"]
        assert zipped.json()["total"] == 6  # decoded by the client
        assert zipped.headers["etag"] == changed.headers["etag"]  # weak: same meaning

        page = await client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "企业信用信息公示" in page.text
        assert page.headers["cache-control"] == "public, no-cache"
        page_tag = page.headers["etag"]
        assert (await client.get("/", headers={"If-None-Match": page_tag})).status_code == 304
        script = await client.get("/static/portal.js")
        assert script.status_code == 200 and "innerHTML" not in script.text

        search = await client.get(
            "/v1/search", params={"q": "重庆"}, headers={"Origin": "https://portal.example"}
        )
        assert search.headers["access-control-allow-origin"] == "*"
        assert "ETag" in search.headers["access-control-expose-headers"]
        problem = await client.get("/v1/search")
        assert problem.status_code == 422 and "etag" not in problem.headers
        preflight = await client.options(
            "/v1/search",
            headers={"Origin": "https://portal.example", "Access-Control-Request-Method": "GET"},
        )
        assert preflight.status_code == 200


async def test_openapi_documents_examples_and_the_catalogue_endpoint(service: Running) -> None:
    async with service.client("192.0.2.11") as client:
        spec = (await client.get("/openapi.json")).json()
        search = spec["paths"]["/v1/search"]["get"]
        q = next(p for p in search["parameters"] if p["name"] == "q")
        assert q["examples"]["part of a name"]["value"] == "渝信建材"
        assert "example" in spec["components"]["schemas"]["SearchHit"]
        assert "429" in search["responses"]
        catalogue = (await client.get("/v1/catalogue")).json()
        assert {"abnormal_operation", "serious_illegal"} == {x["key"] for x in catalogue["lists"]}
        assert catalogue["search"]["result_cap"] == 10
        assert any(d["code"] == "500103" and d["name"] == "渝中区" for d in catalogue["districts"])
        statistics = (await client.get("/v1/statistics")).json()
        assert statistics["enterprises"] >= 1


async def test_stored_bigrams_follow_the_name(service: Running) -> None:
    uscc = new_uscc()
    await service.apply(enterprise_changed(uscc, 1, "重庆AB建材有限公司"))
    engine = create_async_engine(service.settings.database_url)
    try:
        async with engine.connect() as connection:
            pairs = (
                await connection.execute(
                    text("SELECT name_bigrams FROM publicity.enterprises WHERE uscc = :u"),
                    {"u": uscc},
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    assert pairs[:4] == ["重庆", "庆a", "ab", "b建"]
    async with service.client("192.0.2.12") as client:
        found = (await client.get("/v1/search", params={"q": "Ab"})).json()
        assert uscc in {i["uscc"] for i in found["items"]}
