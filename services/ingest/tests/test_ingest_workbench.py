"""What the department workbench needs from ingest: who a token speaks for
(`/v1/me`), the department's own compliance line, the page and its files with
their security headers, and the configuration that points the page at
coordination. (The page itself is driven in Chromium by tests/e2e/test_workbench.py.)"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ingest_support import read_csv, settings

from ecips.testkit import SigningKeys, new_signing_keys, running_app
from ecips_ingest.api.workbench import STATIC_DIR
from ecips_ingest.main import create_app

COORDINATION = "https://coordination.ecips.example"


@pytest.fixture(scope="module")
def keys() -> SigningKeys:
    return new_signing_keys()


@pytest.fixture(scope="module")
async def client(database_url: str, kafka_bootstrap: str, keys: SigningKeys) -> AsyncIterator[Any]:
    app_settings = settings(
        database_url,
        kafka_bootstrap,
        keys,
        batch_workers=0,
        workbench_coordination_url=f"{COORDINATION}/",
    )
    async with running_app(lambda: create_app(app_settings)) as http:
        yield http


def bearer(keys: SigningKeys, department: str, *scopes: str, **kwargs: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {keys.token(department, scopes, **kwargs)}"}


# --- who am I -------------------------------------------------------------------


async def test_me_names_the_department_its_scopes_expiry_and_categories(
    client: Any, keys: SigningKeys
) -> None:
    answer = await client.get(
        "/v1/me", headers=bearer(keys, "CQ-SAMR", "records:write", "tasks:handle")
    )
    assert answer.status_code == 200, answer.text
    me = answer.json()
    assert me["department"] == "CQ-SAMR"
    assert me["department_name"] == "重庆市市场监督管理局"
    assert me["department_kind"] == "registration_authority"
    assert [s["key"] for s in me["scopes"]] == ["records:write", "tasks:handle"]
    assert all(s["description"] for s in me["scopes"])
    expires = datetime.fromisoformat(me["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(hours=1))) < timedelta(minutes=1)
    assert {"registration", "administrative_penalty"} <= set(me["categories"])


async def test_me_needs_a_valid_token_but_no_particular_scope(
    client: Any, keys: SigningKeys
) -> None:
    unscoped = await client.get("/v1/me", headers=bearer(keys, "CQ-FIN"))
    assert unscoped.status_code == 200
    assert unscoped.json()["scopes"] == []
    missing = await client.get("/v1/me")
    assert (missing.status_code, missing.json()["code"]) == (401, "missing_token")
    expired = await client.get(
        "/v1/me",
        headers=bearer(keys, "CQ-SAMR", "records:write", ttl_seconds=60, now=time.time() - 3600),
    )
    assert (expired.status_code, expired.json()["code"]) == (401, "token_expired")
    stranger = new_signing_keys()
    forged = await client.get("/v1/me", headers=bearer(stranger, "CQ-SAMR", "records:write"))
    assert (forged.status_code, forged.json()["code"]) == (401, "invalid_token")


async def test_me_for_a_department_outside_the_catalogue(client: Any, keys: SigningKeys) -> None:
    answer = await client.get("/v1/me", headers=bearer(keys, "XX-NOWHERE", "records:write"))
    assert answer.status_code == 200
    me = answer.json()
    assert (me["department_name"], me["department_kind"], me["categories"]) == (None, None, [])


# --- the department's own compliance ----------------------------------------------


async def test_own_compliance_is_the_report_for_the_callers_department_only(
    client: Any, keys: SigningKeys
) -> None:
    writer = bearer(keys, "CQ-HEALTH", "records:write")
    answer = await client.get("/v1/me/compliance", params={"period": "2025-10"}, headers=writer)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert [item["department"] for item in report["items"]] == ["CQ-HEALTH"]
    assert report["total"] == 1
    assert report["items"][0]["expected_categories"]

    table = await client.get(
        "/v1/me/compliance", params={"period": "2025-10", "format": "csv"}, headers=writer
    )
    assert table.status_code == 200
    assert table.headers["content-type"].startswith("text/csv")
    rows = read_csv(table.content)
    assert rows[0][0] == "department"
    assert [row[0] for row in rows[1:]] == ["CQ-HEALTH"]


async def test_own_compliance_needs_records_write_and_a_known_department(
    client: Any, keys: SigningKeys
) -> None:
    reader = bearer(keys, "CQ-HEALTH", "reports:read")
    refused = await client.get("/v1/me/compliance", params={"period": "2025-10"}, headers=reader)
    assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_scope")
    unknown = await client.get(
        "/v1/me/compliance",
        params={"period": "2025-10"},
        headers=bearer(keys, "XX-NOWHERE", "records:write"),
    )
    assert (unknown.status_code, unknown.json()["code"]) == (403, "unknown_department")
    future = await client.get(
        "/v1/me/compliance",
        params={"period": "2099-01"},
        headers=bearer(keys, "CQ-HEALTH", "records:write"),
    )
    assert future.status_code == 422
    assert future.json()["errors"][0]["field"] == "period"


# --- the page, its files and its configuration -------------------------------------


async def test_the_page_runs_only_its_own_code_and_talks_to_ingest_and_coordination(
    client: Any,
) -> None:
    moved = await client.get("/workbench", follow_redirects=False)
    assert moved.status_code == 308
    assert moved.headers["location"] == "/workbench/"
    page = await client.get("/workbench/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert '<html lang="zh-CN">' in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "default-src 'none'" in policy
    assert f"connect-src 'self' {COORDINATION};" in policy
    assert "unsafe-inline" not in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-cache"


async def test_config_points_the_browser_at_coordination(client: Any) -> None:
    answer = await client.get("/workbench/config.json")
    assert answer.status_code == 200
    assert answer.json() == {"ingest_url": "", "coordination_url": COORDINATION}
    assert answer.headers["cache-control"] == "no-store"


async def test_every_file_the_page_loads_is_served_with_its_type(client: Any) -> None:
    index = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    wanted = set(re.findall(r'(?:src|href)="static/([^"]+)"', index))
    for script in STATIC_DIR.glob("*.js"):
        wanted |= set(re.findall(r'from "\./([^"]+)"', script.read_text(encoding="utf-8")))
    assert {"app.js", "workbench.css", "identifiers.js", "form.js"} <= wanted
    for name in sorted(wanted):
        answer = await client.get(f"/workbench/static/{name}")
        assert answer.status_code == 200, name
        assert answer.headers["x-content-type-options"] == "nosniff"
        expected = "text/css" if name.endswith(".css") else "text/javascript"
        assert answer.headers["content-type"].startswith(expected), name
        assert answer.headers["etag"]


@pytest.mark.parametrize(
    "name", ["nothing.js", "..%2Fsettings.py", "%2E%2E%2Fmain.py", "index.html", "app.js%00.css"]
)
async def test_nothing_but_the_shipped_files_is_served(client: Any, name: str) -> None:
    answer = await client.get(f"/workbench/static/{name}")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"


async def test_the_workbench_routes_stay_out_of_the_api_document(client: Any) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [p for p in paths if p.startswith("/workbench")]
    assert paths["/v1/me"]["get"]["security"]
    assert paths["/v1/me/compliance"]["get"]["security"]
