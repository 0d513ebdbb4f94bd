"""Prometheus metrics, request logging, and the health endpoints."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("ecips.http")

HTTP_REQUESTS = Counter(
    "ecips_http_requests_total", "HTTP requests", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "ecips_http_request_duration_seconds",
    "HTTP request latency",
    ["service", "method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

ReadinessCheck = Callable[[], Awaitable[None]]


class RequestMetricsMiddleware:
    """Counts, times and logs every HTTP request and tags the response with
    ``x-request-id``. Plain ASGI (not ``BaseHTTPMiddleware``): no extra task
    and no response re-streaming on every request."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _header(scope, b"x-request-id") or uuid.uuid4().hex
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["x-request-id"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._observe(scope, status, request_id, time.perf_counter() - started)

    def _observe(self, scope: Scope, status: int, request_id: str, elapsed: float) -> None:
        # The router writes the matched route into the scope it was given.
        template = getattr(scope.get("route"), "path", "unmatched")
        method = scope["method"]
        HTTP_REQUESTS.labels(self.service, method, template, status).inc()
        HTTP_LATENCY.labels(self.service, method, template).observe(elapsed)
        if template in ("/healthz", "/readyz", "/metrics") or not logger.isEnabledFor(logging.INFO):
            return
        principal = scope.get("state", {}).get("principal")
        logger.info(
            "request",
            extra={
                "method": method,
                "path": scope["path"],
                "route": template,
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
                "request_id": request_id,
                "department": getattr(principal, "department", None),
            },
        )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            text: str = value.decode("latin-1")
            return text[:200]
    return None


def install_request_metrics(app: FastAPI, service: str) -> None:
    app.add_middleware(RequestMetricsMiddleware, service=service)


def health_router(
    checks: dict[str, ReadinessCheck], *, advisory: frozenset[str] = frozenset()
) -> APIRouter:
    """``checks`` decide readiness, except those named in ``advisory``, which
    are reported in the body only."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness: the process is serving")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness: the database and the broker are reachable")
    async def readyz() -> JSONResponse:
        results: dict[str, Any] = {}
        ready = True
        for name, check in checks.items():
            try:
                await asyncio.wait_for(check(), timeout=3.0)
                results[name] = "ok"
            except Exception as exc:
                if name not in advisory:
                    ready = False
                results[name] = f"unavailable: {exc.__class__.__name__}"
        return JSONResponse(
            {"status": "ready" if ready else "not_ready", "checks": results},
            status_code=200 if ready else 503,
        )

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}}},
    )
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router
