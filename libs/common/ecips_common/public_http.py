"""HTTP concerns of a public, token-less API: per-client rate limiting and
cache headers (pure ASGI middleware, so streaming and errors pass untouched)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ecips_common.problems import ProblemError, problem_response
from ecips_common.settings import ServiceSettings

# Operational endpoints are for probes and scrapers, not the public.
UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class TokenBucketLimiter:
    """``rate`` requests per second per client, bursts up to ``burst``."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_clients: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._max_clients = max_clients
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def acquire(self, client: str) -> float:
        """Take one token; 0 when allowed, else the seconds until one is free."""
        now = self._clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            self._make_room(now)
            bucket = self._buckets[client] = _Bucket(self.burst, now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def _make_room(self, now: float) -> None:
        if len(self._buckets) < self._max_clients:
            return
        # A bucket that has refilled completely is the same as no bucket.
        refill_time = self.burst / self.rate
        self._buckets = {
            key: b for key, b in self._buckets.items() if now - b.updated < refill_time
        }
        if len(self._buckets) >= self._max_clients:
            self._buckets.clear()  # under a flood, forget rather than grow without bound


def client_address(scope: Scope, *, trust_forwarded_for: bool) -> str:
    if trust_forwarded_for:
        forwarded = Headers(scope=scope).get("x-forwarded-for")
        if forwarded:
            # The last entry is the one our trusted proxy appended; earlier ones
            # come from the client and could be forged to dodge the limit.
            return forwarded.split(",")[-1].strip()
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class RateLimitMiddleware:
    def __init__(
        self, app: ASGIApp, limiter: TokenBucketLimiter, trust_forwarded_for: bool
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.trust_forwarded_for = trust_forwarded_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] in UNLIMITED_PATHS
            or scope["method"] == "OPTIONS"
        ):
            await self.app(scope, receive, send)
            return
        client = client_address(scope, trust_forwarded_for=self.trust_forwarded_for)
        wait = self.limiter.acquire(client)
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        retry_after = max(1, math.ceil(wait))
        response = problem_response(
            ProblemError(
                429,
                "rate_limited",
                "Too many requests",
                f"at most {self.limiter.rate:g} requests per second "
                f"(bursts of {self.limiter.burst:g}); retry in {retry_after} s",
                headers={"Retry-After": str(retry_after), "Cache-Control": "no-store"},
            )
        )
        await response(scope, receive, send)


class CacheControlMiddleware:
    """Successful public GETs may be cached briefly by browsers and proxies."""

    def __init__(self, app: ASGIApp, max_age: int) -> None:
        self.app = app
        self.value = f"public, max-age={max_age}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in ("GET", "HEAD")
            or scope["path"] in UNLIMITED_PATHS
        ):
            await self.app(scope, receive, send)
            return

        async def send_with_cache_header(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 200:
                headers = MutableHeaders(scope=message)
                if "cache-control" not in headers:
                    headers["Cache-Control"] = self.value
            await send(message)

        await self.app(scope, receive, send_with_cache_header)


def install_public_http(
    app: FastAPI,
    settings: ServiceSettings,
    *,
    cors_methods: Sequence[str] = ("GET",),
    cache: bool = True,
) -> None:
    """Protect and open up a token-less API: per-client rate limiting (429 with
    Retry-After), short public caching of GETs, and CORS for browsers."""
    # Added last = outermost: CORS headers also go on 429 answers.
    if cache:
        app.add_middleware(CacheControlMiddleware, max_age=settings.cache_max_age_seconds)
    app.add_middleware(
        RateLimitMiddleware,
        limiter=TokenBucketLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
        trust_forwarded_for=settings.trust_forwarded_for,
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=[o.strip() for o in settings.cors_allow_origins.split(",") if o.strip()],
        allow_methods=list(cors_methods),
        allow_headers=["Accept", "Content-Type", "Authorization"],
        expose_headers=["Retry-After", "ETag"],
        max_age=600,
    )
