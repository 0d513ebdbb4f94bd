"""Test helpers shared by the services' test suites: signing keys, tokens,
and a service app running in-process against the real Postgres and broker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from ecips_common.auth import generate_signing_key, issue_token


@dataclass(frozen=True)
class SigningKeys:
    private_pem: bytes
    public_pem: bytes

    def token(
        self,
        department: str,
        scopes: Iterable[str],
        *,
        ttl_seconds: int = 3600,
        now: float | None = None,
    ) -> str:
        return issue_token(
            self.private_pem,
            department=department,
            scopes=scopes,
            ttl_seconds=ttl_seconds,
            now=now,
        )

    def headers(self, department: str, *scopes: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(department, scopes)}"}


def new_signing_keys() -> SigningKeys:
    private, public = generate_signing_key()
    return SigningKeys(private, public)


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def service_settings_kwargs(
    *, database_url: str, kafka_bootstrap: str, keys: SigningKeys, **extra: Any
) -> dict[str, Any]:
    """Keyword arguments for any service's settings class in tests."""
    return {
        "database_url": database_url,
        "kafka_bootstrap_servers": kafka_bootstrap,
        "jwt_public_key": keys.public_pem.decode(),
        "service_token": keys.token("system", ["changes:read", "ledger:read"]),
        "outbox_poll_interval_seconds": 0.2,
        "feed_follow_interval_seconds": 1.0,
        "feed_grace_seconds": 3.0,
        **extra,
    }


@asynccontextmanager
async def running_app(app_factory: Callable[[], FastAPI]) -> AsyncIterator[httpx.AsyncClient]:
    """Start an app with its lifespan (migrations, relay, consumers) and
    yield a client that talks to it in-process."""
    app = app_factory()
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client
