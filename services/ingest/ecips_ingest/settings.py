from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from ecips_common.settings import ServiceSettings

CATALOGUE_DIR = Path(__file__).parent / "catalogue"


class IngestSettings(ServiceSettings):
    """Environment variables start with ``ECIPS_INGEST_``."""

    service_name: ClassVar[str] = "ingest"
    model_config = SettingsConfigDict(env_prefix="ECIPS_INGEST_", extra="ignore", frozen=True)

    catalogue_dir: Path = CATALOGUE_DIR
    max_record_bytes: int = 256 * 1024

    # Batches: uploads above this size are refused with 413.
    max_batch_bytes: int = Field(default=200 * 1024 * 1024, ge=1024)
    # Background workers in this process (0: this process only accepts uploads).
    batch_workers: int = Field(default=1, ge=0, le=16)
    batch_chunk_rows: int = Field(default=500, ge=1, le=10_000)
    batch_lease_seconds: float = Field(default=60.0, gt=0)
    batch_max_attempts: int = Field(default=5, ge=1)
    batch_poll_seconds: float = Field(default=1.0, gt=0)

    # Lookups in the ledger (enterprise name, old registration numbers, unmatched records).
    ledger_cache_seconds: float = Field(default=60.0, ge=0)
    ledger_timeout_seconds: float = Field(default=2.0, gt=0)
    ledger_pause_after_failure_seconds: float = Field(default=5.0, ge=0)

    # The workbench (/workbench) runs in department staff's browsers and calls the
    # coordination API (tasks, notices) directly: its URL as a browser reaches it, which
    # in a cluster is the public host, not the in-cluster service name.
    workbench_coordination_url: str = "http://127.0.0.1:8004"

    def request_body_limit(self) -> int | None:
        # Uploads have their own limit, answered with its own 413 as they stream;
        # the general one sits above it (plus room for the multipart framing).
        return max(self.max_request_bytes, self.max_batch_bytes + 1024 * 1024)
