"""Every request is counted under its route template, timed, logged with its
department, and answered with an ``x-request-id``."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI, Request
from prometheus_client import REGISTRY

from ecips_common.observability import install_request_metrics


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/v1/things/{thing_id}")
    async def thing(thing_id: str, request: Request) -> dict[str, str]:
        request.state.principal = SimpleNamespace(department="CQ-TEST")
        return {"id": thing_id}

    @app.get("/v1/broken")
    async def broken() -> None:
        raise RuntimeError("boom")

    install_request_metrics(app, "metrics-test")
    return app


def _count(route: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "ecips_http_requests_total",
        {"service": "metrics-test", "method": "GET", "route": route, "status": status},
    )
    return value or 0.0


async def test_requests_are_counted_timed_logged_and_tagged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    before = _count("/v1/things/{thing_id}", "200")
    with caplog.at_level(logging.INFO, logger="ecips.http"):
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            given = await client.get("/v1/things/a", headers={"x-request-id": "trace-1"})
            fresh = await client.get("/v1/things/b")
            missing = await client.get("/nowhere")
            failed = await client.get("/v1/broken")
    assert given.headers["x-request-id"] == "trace-1"
    assert len(fresh.headers["x-request-id"]) == 32
    assert missing.status_code == 404 and missing.headers["x-request-id"]
    assert failed.status_code == 500
    assert _count("/v1/things/{thing_id}", "200") == before + 2
    assert _count("unmatched", "404") >= 1
    assert _count("/v1/broken", "500") >= 1
    latency = REGISTRY.get_sample_value(
        "ecips_http_request_duration_seconds_count",
        {"service": "metrics-test", "method": "GET", "route": "/v1/things/{thing_id}"},
    )
    assert latency is not None and latency >= 2
    logged = [r for r in caplog.records if r.getMessage() == "request"]
    first = next(r for r in logged if getattr(r, "request_id", None) == "trace-1")
    assert (first.route, first.status, first.department) == (  # type: ignore[attr-defined]
        "/v1/things/{thing_id}",
        200,
        "CQ-TEST",
    )
