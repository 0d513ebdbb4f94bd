from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from ecips_common.contracts import LEDGER_TOPIC, PUNISHMENTS_TOPIC
from ecips_common.settings import ServiceSettings

CATALOGUE_DIR = Path(__file__).parent / "catalogue"


class PublicitySettings(ServiceSettings):
    """Environment variables start with ``ECIPS_PUBLICITY_``."""

    service_name: ClassVar[str] = "publicity"
    model_config = SettingsConfigDict(env_prefix="ECIPS_PUBLICITY_", extra="ignore", frozen=True)

    catalogue_dir: Path = CATALOGUE_DIR
    # Topic names are settings so tests (and staging) can isolate themselves.
    ledger_topic: str = LEDGER_TOPIC
    punishments_topic: str = PUNISHMENTS_TOPIC
    # Per-client token bucket for every public endpoint.
    rate_limit_per_second: float = Field(default=20.0, gt=0)
    rate_limit_burst: int = Field(default=60, ge=1)
    # Behind a trusted reverse proxy the client is the first X-Forwarded-For address.
    trust_forwarded_for: bool = False
    cache_max_age_seconds: int = Field(default=30, ge=0)
    # Comma-separated origins allowed to call the API from a browser ("*" = any).
    cors_allow_origins: str = "*"
