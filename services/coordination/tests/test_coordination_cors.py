"""CORS for the department workbench: the origins in `WORKBENCH_ORIGINS` may call the
authenticated API from a browser (bearer token, POST for claim and feedback); every
other origin keeps the public policy (GET only, any origin), and with no workbench
origin configured nothing changes. Middleware only: the app runs without its lifespan,
so protected endpoints answer 401 — which a browser must still be allowed to read.
(The whole path, the workbench claiming and reporting on tasks, is in
tests/e2e/test_workbench.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from coordination_support import NOWHERE, settings_kwargs

from ecips.testkit import new_signing_keys
from ecips_coordination.main import create_app
from ecips_coordination.settings import CoordinationSettings

WORKBENCH = "http://127.0.0.1:8001"
OTHER = "https://portal.example.org"
TASK = "/v1/tasks/7d3c1a52-4f1e-4f57-9a43-0c6e7f1b2a10/feedback"


def settings(**extra: Any) -> CoordinationSettings:
    return CoordinationSettings(
        **settings_kwargs(
            "postgresql+asyncpg://postgres@127.0.0.1:9/unused", NOWHERE, new_signing_keys(), **extra
        )
    )


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings(workbench_origins=f" {WORKBENCH}/ , http://localhost:8001"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


def preflight(origin: str, method: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization,content-type",
    }


def test_origins_are_read_comma_separated_without_trailing_slashes() -> None:
    configured = settings(workbench_origins=f"{WORKBENCH}/, http://localhost:8001,,")
    assert configured.workbench_origin_list() == [WORKBENCH, "http://localhost:8001"]
    assert settings().workbench_origin_list() == []


async def test_the_workbench_may_post_with_a_bearer_token(client: httpx.AsyncClient) -> None:
    answer = await client.options(TASK, headers=preflight(WORKBENCH, "POST"))
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == WORKBENCH
    assert "POST" in answer.headers["access-control-allow-methods"]
    allowed = answer.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed
    assert "content-type" in allowed
    assert "origin" in answer.headers["vary"].lower()
    # A bearer token, not cookies: credentials are never allowed.
    assert "access-control-allow-credentials" not in answer.headers


async def test_the_workbench_can_read_the_answers_errors_included(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get("/v1/tasks", headers={"Origin": "http://localhost:8001"})
    assert answer.status_code == 401
    assert answer.headers["access-control-allow-origin"] == "http://localhost:8001"
    assert "Retry-After" in answer.headers["access-control-expose-headers"]
    posted = await client.post(TASK, json={}, headers={"Origin": WORKBENCH})
    assert posted.status_code == 401
    assert posted.headers["access-control-allow-origin"] == WORKBENCH


async def test_other_origins_keep_the_public_policy(client: httpx.AsyncClient) -> None:
    refused = await client.options(TASK, headers=preflight(OTHER, "POST"))
    assert refused.status_code == 400
    assert "POST" not in refused.headers.get("access-control-allow-methods", "")
    reading = await client.options("/v1/tasks", headers=preflight(OTHER, "GET"))
    assert reading.status_code == 200
    assert reading.headers["access-control-allow-origin"] == "*"
    answer = await client.get("/v1/tasks", headers={"Origin": OTHER})
    assert answer.headers["access-control-allow-origin"] == "*"


async def test_without_workbench_origins_nobody_may_post() -> None:
    app = create_app(settings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        answer = await http.options(TASK, headers=preflight(WORKBENCH, "POST"))
    assert answer.status_code == 400
