from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from ecips_common.settings import ServiceSettings


class LedgerSettings(ServiceSettings):
    """Environment variables start with ``ECIPS_LEDGER_``."""

    service_name: ClassVar[str] = "ledger"
    model_config = SettingsConfigDict(env_prefix="ECIPS_LEDGER_", extra="ignore", frozen=True)

    audit_page_max: int = 500
    # The streaming change feed: events per read, the safety poll behind the
    # outbox's LISTEN/NOTIFY wake-up, and how often an idle stream says it is alive.
    stream_batch_size: int = Field(default=500, ge=1, le=5000)
    stream_poll_interval_seconds: float = Field(default=1.0, gt=0)
    stream_heartbeat_seconds: float = Field(default=15.0, gt=0)
    # Rows per fetch while streaming a snapshot.
    snapshot_fetch_size: int = Field(default=1000, ge=1)
    # A record waiting this long for its enterprise is a data-quality finding.
    unmatched_alert_days: int = Field(default=7, ge=0)
