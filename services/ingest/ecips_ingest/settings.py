from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from ecips_common.settings import ServiceSettings

CATALOGUE_DIR = Path(__file__).parent / "catalogue"


class IngestSettings(ServiceSettings):
    """Environment variables start with ``ECIPS_INGEST_``."""

    service_name: ClassVar[str] = "ingest"
    model_config = SettingsConfigDict(env_prefix="ECIPS_INGEST_", extra="ignore", frozen=True)

    catalogue_dir: Path = CATALOGUE_DIR
    max_record_bytes: int = 256 * 1024
