"""Settings shared by every service.

Each service subclasses :class:`ServiceSettings` with its own env prefix
(``ECIPS_INGEST_`` and so on). The connection settings also fall back to the
suite-wide names (``DATABASE_URL``, ``KAFKA_BOOTSTRAP_SERVERS``, ``ECIPS_*``) so
one environment can point all five services at the same servers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Field name -> suite-wide environment variables consulted when the
# service-prefixed one is absent, in order.
_SHARED_FALLBACKS: dict[str, tuple[str, ...]] = {
    "database_url": ("DATABASE_URL", "ECIPS_DATABASE_URL"),
    "kafka_bootstrap_servers": ("KAFKA_BOOTSTRAP_SERVERS", "ECIPS_KAFKA_BOOTSTRAP_SERVERS"),
    "jwt_public_key_file": ("ECIPS_JWT_PUBLIC_KEY_FILE",),
    "jwt_public_key": ("ECIPS_JWT_PUBLIC_KEY",),
    "service_token": ("ECIPS_SERVICE_TOKEN",),
    "log_level": ("ECIPS_LOG_LEVEL",),
    "readiness_requires_broker": ("ECIPS_READINESS_REQUIRES_BROKER",),
    "kafka_create_topics": ("ECIPS_KAFKA_CREATE_TOPICS",),
    "migrate_on_start": ("ECIPS_MIGRATE_ON_START",),
    "ingest_url": ("ECIPS_INGEST_URL",),
    "ledger_url": ("ECIPS_LEDGER_URL",),
    "publicity_url": ("ECIPS_PUBLICITY_URL",),
    "coordination_url": ("ECIPS_COORDINATION_URL",),
    "rules_url": ("ECIPS_RULES_URL",),
}


class ServiceSettings(BaseSettings):
    """Connection, security and runtime settings every service has."""

    service_name: ClassVar[str] = "service"

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/ecips"
    database_pool_size: int = 10
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    jwt_public_key: str | None = Field(default=None, repr=False)
    jwt_public_key_file: Path | None = None
    jwt_issuer: str = "ecips"
    jwt_audience: str = "ecips"
    service_token: str | None = Field(default=None, repr=False)
    log_level: str = "INFO"
    migrate_on_start: bool = True
    # /readyz answers 503 when the broker is unreachable (off in Kubernetes,
    # where the outbox and change feeds carry a broker outage).
    readiness_requires_broker: bool = True
    # Create missing topics at start (the embedded broker forgets them); off
    # where topics are managed resources (Strimzi KafkaTopic).
    kafka_create_topics: bool = True
    outbox_poll_interval_seconds: float = 1.0
    outbox_batch_size: int = 500
    feed_follow_interval_seconds: float = 5.0
    feed_grace_seconds: float = 10.0
    consumer_max_attempts: int = 5

    # Public (token-less) endpoints: a token bucket per client address.
    rate_limit_per_second: float = Field(default=20.0, gt=0)
    rate_limit_burst: int = Field(default=60, ge=1)
    # Behind a trusted reverse proxy the client is the first X-Forwarded-For address.
    trust_forwarded_for: bool = False
    cache_max_age_seconds: int = Field(default=30, ge=0)
    # Comma-separated origins allowed to call the API from a browser ("*" = any).
    cors_allow_origins: str = "*"
    # Request bodies above this are refused with 413 as they stream in, before
    # any parsing (the ingress caps them too; this holds without one).
    max_request_bytes: int = Field(default=4 * 1024 * 1024, ge=0)

    ingest_url: str = "http://127.0.0.1:8001"
    ledger_url: str = "http://127.0.0.1:8002"
    publicity_url: str = "http://127.0.0.1:8003"
    coordination_url: str = "http://127.0.0.1:8004"
    rules_url: str = "http://127.0.0.1:8005"

    @model_validator(mode="before")
    @classmethod
    def _apply_shared_fallbacks(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        for field, names in _SHARED_FALLBACKS.items():
            if field in values:
                continue
            for name in names:
                if name in os.environ:
                    values[field] = os.environ[name]
                    break
        return values

    def request_body_limit(self) -> int | None:
        """The largest request body the service reads (None: no limit)."""
        return self.max_request_bytes

    @property
    def db_schema(self) -> str:
        """The Postgres schema this service owns (its name)."""
        return self.service_name

    def public_key_pem(self) -> str | None:
        if self.jwt_public_key:
            return self.jwt_public_key
        if self.jwt_public_key_file is not None:
            return self.jwt_public_key_file.read_text(encoding="utf-8")
        return None

    @classmethod
    def load(cls) -> Self:
        """Build settings from the environment (call at startup, never at import)."""
        return cls()
