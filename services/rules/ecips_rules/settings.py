from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from ecips_common.settings import ServiceSettings

CATALOGUE_FILE = Path(__file__).parent / "catalogue" / "rules.yaml"


class RulesSettings(ServiceSettings):
    """Environment variables start with ``ECIPS_RULES_``."""

    service_name: ClassVar[str] = "rules"
    model_config = SettingsConfigDict(env_prefix="ECIPS_RULES_", extra="ignore", frozen=True)

    # The seed: stored as catalogue version 1 on first start; later versions
    # are written through the API and kept in the database.
    catalogue_file: Path = CATALOGUE_FILE
    # How often the scheduler looks for enterprises whose day has come.
    scheduler_interval_seconds: float = Field(default=60.0, gt=0)
    # Known enterprises whose active measures the checks keep in memory (0: none).
    check_cache_size: int = Field(default=200_000, ge=0)
    # Connections of the credit checks' own pool.
    check_pool_size: int = Field(default=10, ge=1, le=100)
    # The cache follower reads the outbox on every NOTIFY, and at least this often.
    cache_poll_interval_seconds: float = Field(default=1.0, gt=0)
    # Enterprises per transaction in dry runs and enactments.
    reevaluation_chunk_size: int = Field(default=1000, ge=1, le=10_000)
    # Chunks evaluated at once (one evaluates while another waits on the database).
    reevaluation_parallelism: int = Field(default=2, ge=1, le=8)
