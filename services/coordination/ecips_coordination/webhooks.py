"""Pushing task changes to department systems: signing, the delivery worker,
and the check a receiver runs.

Deliveries are rows (``deliveries``) written in the same transaction as the
task change, so nothing is lost when the process stops; the worker below
takes due rows, POSTs them, and settles them as delivered, to be retried
(exponential backoff with jitter) or dead.

Signature (HMAC-SHA256 over the timestamp and the exact body)::

    X-ECIPS-Timestamp: 1764145200
    X-ECIPS-Signature: v1=<hex(hmac_sha256(secret, f"{timestamp}.".encode() + body))>
    X-ECIPS-Delivery:  <delivery id: the same on every retry, use it to drop duplicates>

A receiver recomputes the HMAC with its secret, compares in constant time,
and refuses a timestamp more than five minutes from its clock; together with
remembering delivery ids seen within that window this makes a replayed
request useless (see :func:`verify_signature`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging
import random
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from prometheus_client import Counter

from ecips_common.app import ServiceState
from ecips_common.db import Database
from ecips_coordination.models import Delivery, Subscription
from ecips_coordination.repository import (
    DeliveryRepository,
    Settlement,
    SubscriptionRepository,
)

logger = logging.getLogger("ecips.coordination.webhooks")

SIGNATURE_HEADER = "X-ECIPS-Signature"
TIMESTAMP_HEADER = "X-ECIPS-Timestamp"
DELIVERY_HEADER = "X-ECIPS-Delivery"
EVENT_HEADER = "X-ECIPS-Event"
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_SECONDS = 300

WEBHOOK_ATTEMPTS = Counter("ecips_webhook_attempts_total", "Webhook delivery attempts", ["outcome"])


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def encode_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={digest.hexdigest()}"


def verify_signature(
    secret: str,
    *,
    timestamp: str,
    signature: str,
    body: bytes,
    now: float | None = None,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """What a receiver runs: the body is ours, unchanged, and recent.

    ``signature`` may hold several comma-separated ``v1=…`` values (secret
    rotation); any match passes. Also drop delivery ids already seen in the
    last ``tolerance_seconds``, so a captured request cannot be replayed.
    """
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - sent) > tolerance_seconds:
        return False
    expected = sign(secret, sent, body)
    return any(
        hmac.compare_digest(expected, candidate.strip()) for candidate in signature.split(",")
    )


class UnsafeTarget(ValueError):
    """The webhook URL is not one we will call."""


def check_target(url: str, *, allow_private: bool) -> str:
    """http(s) only, no credentials in the URL, and — unless the operator
    allows it — no loopback, private or link-local address, so a department
    cannot make the service call the cluster's own endpoints."""
    if any(ord(c) <= 32 or ord(c) == 127 for c in url):
        raise UnsafeTarget("the URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise UnsafeTarget(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeTarget("the URL must start with https:// (or http://)")
    if not host:
        raise UnsafeTarget("the URL has no host")
    if parts.username or parts.password:
        raise UnsafeTarget("credentials in the URL are not accepted; verify the signature")
    if allow_private:
        return url
    host = host.lower()
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal", ".svc")):
        raise UnsafeTarget("the URL points at an internal host")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return url  # a name: resolved by the department's DNS, checked by egress policy
    if not address.is_global:
        raise UnsafeTarget("the URL points at a private, loopback or reserved address")
    return url


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_seconds: float = 2.0
    max_seconds: float = 3600.0
    max_attempts: int = 10

    def delay(self, attempts: int) -> float:
        """Exponential backoff with "equal jitter": half fixed, half random, so
        retries spread out but still grow with every failure."""
        ceiling = min(self.max_seconds, self.base_seconds * 2.0 ** max(0, attempts - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    status_code: int | None
    error: str | None


class DeliveryWorker:
    """Works the delivery table until cancelled; several replicas may run it."""

    def __init__(
        self,
        database: Database,
        http: httpx.AsyncClient,
        *,
        policy: RetryPolicy,
        poll_interval: float = 0.5,
        batch_size: int = 50,
        lease_seconds: float = 60.0,
    ) -> None:
        self._db = database
        self._http = http
        self._policy = policy
        self._poll_interval = poll_interval
        self._batch_size = batch_size
        self._lease = timedelta(seconds=lease_seconds)

    async def run(self) -> None:
        while True:
            try:
                worked = await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("webhook delivery pass failed", extra={"error": repr(exc)})
                worked = 0
            if worked == 0:
                await asyncio.sleep(self._poll_interval)

    async def tick(self) -> int:
        """One pass: lease the due heads of every stream and send them concurrently."""
        now = datetime.now(UTC)
        async with self._db.unit_of_work() as uow:
            leased = list(
                await DeliveryRepository(uow.session).lease_due(
                    now=now, lease_until=now + self._lease, limit=self._batch_size
                )
            )
            subscriptions = await SubscriptionRepository(uow.session).active_by_id(
                list({d.subscription_id for d in leased})
            )
        if not leased:
            return 0
        settlements = await asyncio.gather(
            *(self._attempt(d, subscriptions.get(d.subscription_id)) for d in leased)
        )
        try:
            async with self._db.unit_of_work() as uow:
                await DeliveryRepository(uow.session).settle(settlements)
        except Exception as exc:
            # The leases run out and the deliveries are tried again: at least once.
            logger.warning("could not record webhook attempts", extra={"error": repr(exc)})
        return len(leased)

    async def _attempt(self, delivery: Delivery, subscription: Subscription | None) -> Settlement:
        if subscription is None:
            WEBHOOK_ATTEMPTS.labels("cancelled").inc()
            return Settlement(
                delivery.delivery_id,
                "cancelled",
                delivery.next_attempt_at,
                dead_at=datetime.now(UTC),
            )
        return self._settlement(delivery, await self._post(delivery, subscription))

    async def _post(self, delivery: Delivery, subscription: Subscription) -> Outcome:
        body = encode_body(delivery.payload)
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "ecips-coordination-webhooks/1",
            DELIVERY_HEADER: str(delivery.delivery_id),
            EVENT_HEADER: delivery.event_type,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(subscription.secret, timestamp, body),
        }
        try:
            response = await self._http.post(
                subscription.url, content=body, headers=headers, follow_redirects=False
            )
        except httpx.HTTPError as exc:
            return Outcome(False, None, f"{exc.__class__.__name__}: {exc}"[:500])
        if 200 <= response.status_code < 300:
            return Outcome(True, response.status_code, None)
        return Outcome(False, response.status_code, response.text[:500] or None)

    def _settlement(self, delivery: Delivery, outcome: Outcome) -> Settlement:
        now = datetime.now(UTC)
        code, error = outcome.status_code, outcome.error
        if outcome.ok:
            WEBHOOK_ATTEMPTS.labels("delivered").inc()
            return Settlement(
                delivery.delivery_id, "delivered", delivery.next_attempt_at,
                status_code=code, error=error, delivered_at=now,
            )  # fmt: skip
        if delivery.attempts >= self._policy.max_attempts:
            WEBHOOK_ATTEMPTS.labels("dead").inc()
            logger.warning(
                "webhook delivery dead-lettered",
                extra={"delivery_id": str(delivery.delivery_id), "attempts": delivery.attempts},
            )
            return Settlement(
                delivery.delivery_id, "dead", delivery.next_attempt_at,
                status_code=code, error=error, dead_at=now,
            )  # fmt: skip
        WEBHOOK_ATTEMPTS.labels("retry").inc()
        delay = timedelta(seconds=self._policy.delay(delivery.attempts))
        return Settlement(delivery.delivery_id, "pending", now + delay, code, error)


def delivery_job(policy: RetryPolicy, *, poll_interval: float, batch_size: int) -> Any:
    """The background job the app runs (one worker per process)."""

    async def deliver_webhooks(state: ServiceState) -> None:
        worker = DeliveryWorker(
            state.database,
            state.http,
            policy=policy,
            poll_interval=poll_interval,
            batch_size=batch_size,
        )
        await worker.run()

    return deliver_webhooks


def delivery_row(
    *,
    subscription: Subscription,
    uscc: str,
    task_id: uuid.UUID,
    event_type: str,
    payload: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    delivery_id = uuid.uuid4()
    return {
        "delivery_id": delivery_id,
        "subscription_id": subscription.subscription_id,
        "department": subscription.department,
        "uscc": uscc,
        "task_id": task_id,
        "event_type": event_type,
        # The id is the delivery's, the same on every retry: receivers dedupe on it.
        "payload": {"id": str(delivery_id), **payload},
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
    }
