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
    # How often the withdrawal job marks items whose publication has ended.
    withdrawal_interval_seconds: float = Field(default=60.0, gt=0)
    # How often department names and field titles are read again from ingest.
    directory_refresh_seconds: float = Field(default=600.0, gt=0)
    directory_retry_seconds: float = Field(default=30.0, gt=0)
    # A name search ranks and counts up to this many matches; beyond it the
    # total is "more than" and pages reach at most `search_broad_depth` deep.
    search_result_cap: int = Field(default=1000, ge=10, le=100_000)
    search_broad_depth: int = Field(default=200, ge=10, le=10_000)
